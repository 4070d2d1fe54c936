#include "common/xray/xray_image_reader.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <optional>
#include <string_view>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "common/io/atomic_file.h"

namespace fedcustoms::xray {
namespace {

enum class Format { kPng, kTiff, kPgm };

std::optional<Format> Sniff(std::string_view bytes) {
  if (bytes.substr(0, 8) == std::string_view("\x89PNG\r\n\x1a\n", 8)) return Format::kPng;
  if (bytes.substr(0, 4) == std::string_view("II*\0", 4) ||
      bytes.substr(0, 4) == std::string_view("MM\0*", 4)) {
    return Format::kTiff;
  }
  if (bytes.size() >= 3 && bytes[0] == 'P' && (bytes[1] == '5' || bytes[1] == '2') &&
      (bytes[2] == ' ' || bytes[2] == '\t' || bytes[2] == '\n' || bytes[2] == '\r' ||
       bytes[2] == '#')) {
    return Format::kPgm;
  }
  return std::nullopt;
}

const char* FormatName(Format f) {
  switch (f) {
    case Format::kPng:
      return "PNG";
    case Format::kTiff:
      return "TIFF";
    case Format::kPgm:
      return "PGM";
  }
  return "?";
}

const char* DepthName(int depth) {
  switch (depth) {
    case CV_8S:
      return "8-bit signed";
    case CV_16S:
      return "16-bit signed";
    case CV_32S:
      return "32-bit integer";
    case CV_32F:
      return "32-bit float";
    case CV_64F:
      return "64-bit float";
    default:
      return "unknown";
  }
}

// The PGM header's maxval (the value meaning white), or nullopt when the
// header cannot be parsed (the decoder then reports the file as corrupt).
std::optional<int> PgmMaxval(std::string_view bytes) {
  size_t i = 2;
  int numbers[3];
  for (int& n : numbers) {
    while (i < bytes.size()) {
      if (bytes[i] == '#') {
        while (i < bytes.size() && bytes[i] != '\n' && bytes[i] != '\r') ++i;
      } else if (bytes[i] == ' ' || bytes[i] == '\t' || bytes[i] == '\n' || bytes[i] == '\r') {
        ++i;
      } else {
        break;
      }
    }
    if (i >= bytes.size() || bytes[i] < '0' || bytes[i] > '9') return std::nullopt;
    long v = 0;
    while (i < bytes.size() && bytes[i] >= '0' && bytes[i] <= '9' && v < 1'000'000) {
      v = v * 10 + (bytes[i++] - '0');
    }
    n = static_cast<int>(v);
  }
  if (numbers[2] < 1 || numbers[2] > 65535) return std::nullopt;
  return numbers[2];
}

// True when every pixel of a 3- or 4-channel image has equal B, G and R.
bool IsGrayInColour(const cv::Mat& m) {
  std::vector<cv::Mat> planes;
  cv::split(m, planes);
  return cv::countNonZero(planes[0] != planes[1]) == 0 &&
         cv::countNonZero(planes[0] != planes[2]) == 0;
}

absl::Status Invalid(const std::string& path, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what));
}

// cv::imdecode takes the encoded bytes as a Mat with an int length.
constexpr std::uintmax_t kMaxFileBytes = std::numeric_limits<int>::max();

absl::Status TooLarge(const std::string& path, std::uintmax_t bytes) {
  return Invalid(path, absl::StrCat(bytes,
                                    " bytes, larger than 2 GiB; not an X-ray image this "
                                    "reader can decode"));
}

}  // namespace

void ResizePlane(const uint16_t* pixels, int height, int width, int size, uint16_t* out) {
  const cv::Mat src(height, width, CV_16UC1, const_cast<uint16_t*>(pixels));
  cv::Mat dst(size, size, CV_16UC1, out);
  if (height == size && width == size) {
    src.copyTo(dst);
    return;
  }
  // dst wraps `out` with the exact size and type, so resize writes into it.
  cv::resize(src, dst, cv::Size(size, size), 0, 0, cv::INTER_AREA);
}

absl::StatusOr<XrayImage> ReadXrayImage(const std::string& path, int image_size) {
  if (image_size < 1 || image_size > 65535) {
    return Invalid(path, absl::StrCat("image size ", image_size, " is outside 1..65535"));
  }
  // ReadFile() reserves the whole file up front, so a huge file is refused
  // by its size before reading. When the size cannot be read, ReadFile()
  // reports why (missing, not a regular file...); the check after reading
  // covers a file that grew in between.
  std::error_code size_error;
  const std::uintmax_t file_bytes = std::filesystem::file_size(path, size_error);
  if (!size_error && file_bytes > kMaxFileBytes) return TooLarge(path, file_bytes);
  absl::StatusOr<std::string> bytes = io::ReadFile(path);
  if (!bytes.ok()) return bytes.status();
  if (bytes->size() > kMaxFileBytes) return TooLarge(path, bytes->size());
  const std::optional<Format> format = Sniff(*bytes);
  if (!format) {
    return Invalid(path, bytes->empty() ? "empty file, not an image"
                                        : "not a PNG, TIFF or PGM image (unrecognized first "
                                          "bytes)");
  }
  // libpng decodes a PNG cut after its last image data without complaint;
  // the IEND trailer is what says the file is whole.
  if (*format == Format::kPng &&
      bytes->rfind(std::string_view("IEND\xae\x42\x60\x82", 8)) == std::string::npos) {
    return Invalid(path, "truncated PNG (no IEND chunk at the end)");
  }
  std::optional<int> pgm_maxval;
  if (*format == Format::kPgm) pgm_maxval = PgmMaxval(*bytes);

  cv::Mat decoded;
  try {
    const cv::Mat buffer(1, static_cast<int>(bytes->size()), CV_8UC1, bytes->data());
    decoded = cv::imdecode(buffer, cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& e) {
    return Invalid(path, absl::StrCat("cannot decode ", FormatName(*format), ": ", e.what()));
  }
  if (decoded.empty() || (*format == Format::kPgm && !pgm_maxval)) {
    return Invalid(
        path, absl::StrCat("cannot decode ", FormatName(*format), " (corrupt or truncated file)"));
  }
  if (decoded.depth() != CV_8U && decoded.depth() != CV_16U) {
    return Invalid(path, absl::StrCat("unsupported pixel depth (", DepthName(decoded.depth()),
                                      "); expected 8- or 16-bit unsigned samples"));
  }
  if (decoded.channels() == 3 || decoded.channels() == 4) {
    if (!IsGrayInColour(decoded)) {
      return Invalid(path, absl::StrCat("colour image (", decoded.channels(),
                                        " channels with different values); X-ray inputs must "
                                        "be grayscale, one file per energy"));
    }
    cv::extractChannel(decoded, decoded, 0);
  } else if (decoded.channels() != 1) {
    return Invalid(path, absl::StrCat("unsupported image with ", decoded.channels(),
                                      " channels; expected grayscale"));
  }

  XrayImage image;
  image.source_width = decoded.cols;
  image.source_height = decoded.rows;
  image.source_bits = decoded.depth() == CV_8U ? 8 : 16;
  cv::Mat wide;
  if (pgm_maxval && *pgm_maxval != (decoded.depth() == CV_8U ? 255 : 65535)) {
    // A PGM's white is its maxval (e.g. 1023 for 10-bit data): stretch it to 65535.
    decoded.convertTo(wide, CV_16U, 65535.0 / *pgm_maxval);
  } else if (decoded.depth() == CV_8U) {
    decoded.convertTo(wide, CV_16U, 257.0);
  } else {
    wide = decoded;
  }
  if (!wide.isContinuous()) wide = wide.clone();
  image.pixels.resize(static_cast<size_t>(image_size) * image_size);
  ResizePlane(wide.ptr<uint16_t>(), wide.rows, wide.cols, image_size, image.pixels.data());
  return image;
}

absl::StatusOr<XrayImage> ReadDualEnergyXray(const std::string& high_path,
                                             const std::string& low_path, int image_size) {
  absl::StatusOr<XrayImage> high = ReadXrayImage(high_path, image_size);
  if (!high.ok()) return high.status();
  absl::StatusOr<XrayImage> low = ReadXrayImage(low_path, image_size);
  if (!low.ok()) return low.status();
  if (high->source_width != low->source_width || high->source_height != low->source_height) {
    return absl::InvalidArgumentError(absl::StrCat(
        high_path, " and ", low_path, ": dual-energy images differ in size (", high->source_width,
        "x", high->source_height, " and ", low->source_width, "x", low->source_height, ")"));
  }
  high->source_bits = std::max(high->source_bits, low->source_bits);
  high->pixels.insert(high->pixels.end(), low->pixels.begin(), low->pixels.end());
  return std::move(*high);
}

}  // namespace fedcustoms::xray
