#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace fedcustoms::xray {

// One X-ray image (or dual-energy pair) read from disk and resized.
struct XrayImage {
  // Size of the file's image before resizing (boxes are given in it).
  int source_width = 0;
  int source_height = 0;
  // 8 or 16: the file's bits per sample.
  int source_bits = 0;
  // channels x image_size x image_size, row-major, in [0, 65535] (8-bit
  // samples x 257).
  std::vector<uint16_t> pixels;
};

// Reads the grayscale image at `path` and resizes it to image_size x
// image_size (cv::INTER_AREA; a non-square image is stretched, so boxes scale
// by width and height separately).
//
// Accepted: PNG, TIFF and PGM (binary P5 or ASCII P2), told by their first
// bytes and not by the file name; 8- or 16-bit unsigned samples. Lossy formats
// (JPEG...) are refused: their artefacts would be learnt as texture.
// Colour: X-ray scanners' pseudo-colour exports encode material in hue, and
// turning them into gray would silently give wrong intensities, so a colour
// image is an error. A gray image saved as RGB(A) (all colour channels equal
// in every pixel, e.g. by a viewer) is accepted; an alpha channel is ignored.
//
// Errors start with `path`: NotFound (missing), PermissionDenied,
// InvalidArgument for "not a PNG, TIFF or PGM image", "cannot decode
// (corrupt or truncated)", "truncated" (PNG without its IEND chunk), an
// unsupported depth (signed, 32-bit, float), a colour image, or image_size
// outside 1..65535. Thread-safe.
absl::StatusOr<XrayImage> ReadXrayImage(const std::string& path, int image_size);

// Reads a dual-energy pair: both images as ReadXrayImage() does, which must
// have the same size (InvalidArgument naming both files and sizes otherwise).
// `pixels` holds the high-energy plane then the low-energy plane.
absl::StatusOr<XrayImage> ReadDualEnergyXray(const std::string& high_path,
                                             const std::string& low_path, int image_size);

// Resizes a height x width 16-bit plane to size x size (cv::INTER_AREA) into
// `out` (size * size values); copies when the size already matches. Requires
// positive sizes.
void ResizePlane(const uint16_t* pixels, int height, int width, int size, uint16_t* out);

}  // namespace fedcustoms::xray
