#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fedcustoms::xray {

// A threat's bounding box in pixel-edge coordinates of the dataset's images
// (after resizing): the box covers x_min <= x < x_max, y_min <= y < y_max, so
// 0 <= x_min < x_max <= width. Continuous, not rounded: scaling keeps fractions.
struct Box {
  float x_min = 0;
  float y_min = 0;
  float x_max = 0;
  float y_max = 0;
};

// X-ray images in memory, all of one size, torch-free (the training code turns
// them into tensors). Built by LoadXrayLabelsCsv() and LoadIdxDataset().
struct XrayDataset {
  // 1 (single energy) or 2 (dual energy: plane 0 high, plane 1 low).
  int channels = 1;
  int height = 0;
  int width = 0;
  // size() x channels x height x width, row-major. Values use the whole
  // 16-bit range whatever the source depth: 8-bit inputs are multiplied by
  // 257 so that 255 becomes 65535 and a value means the same brightness.
  std::vector<uint16_t> pixels;
  // Class index per item, 0 = no threat; < number of configured classes.
  // All 0 when !labeled.
  std::vector<int32_t> labels;
  // False for images to score whose source gave no labels (a labels CSV with
  // only path columns): such a dataset cannot train or evaluate.
  bool labeled = true;
  // Threat bounding box per item when the source gave one.
  std::vector<std::optional<Box>> boxes;
  // Where each item came from, for error messages and heatmaps: the image path
  // (the high-energy one for pairs), or "<idx file>#<index>".
  std::vector<std::string> sources;

  size_t size() const { return labels.size(); }
  // Values per item: channels x height x width.
  size_t item_values() const {
    return static_cast<size_t>(channels) * static_cast<size_t>(height) * static_cast<size_t>(width);
  }
  // First value of item `i`.
  const uint16_t* item(size_t i) const { return pixels.data() + i * item_values(); }
};

}  // namespace fedcustoms::xray
