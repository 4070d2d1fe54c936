#pragma once

#include <torch/types.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/models/xray_cnn.h"

namespace fedcustoms::analyst {

// Where on an X-ray the model looked for a threat class.
struct GradCam {
  // The class explained.
  int target_class = 0;
  // size x size, row-major, in [0, 1] (1 at the peak; all 0 when no location
  // raised the class).
  std::vector<float> heatmap;
  int size = 0;
  // The hottest pixel (first in row-major order on ties); -1 when the
  // heatmap is all 0 (no location raised the class).
  int peak_x = -1;
  int peak_y = -1;
};

// Grad-CAM (Selvaraju et al., ICCV 2017) of `images` [B, C, S, S] float32 in
// [0, 1] for one target class per image: the last convolution block's
// activations A_k (XrayCnnImpl::LastConvActivation), weighted by the mean
// gradient of the class logit over each channel, alpha_k = mean_xy
// d logit / d A_k(x, y); heatmap = ReLU(sum_k alpha_k A_k), bilinearly
// upsampled to S x S and divided by its maximum. Eval mode, left so. Throws
// c10::Error on a wrong input or a class out of range. Memory O(B x model).
std::vector<GradCam> ComputeGradCam(models::XrayCnn& model, const torch::Tensor& images,
                                    std::span<const int> target_classes);

// Writes a PNG (8-bit colour, atomically) of plane `pixels` (size x size
// 16-bit, e.g. the high-energy image) with the heatmap overlaid in a
// blue-to-red colour map and the peak marked with a cross. The error names the
// path.
absl::Status WriteGradCamOverlay(const uint16_t* pixels, const GradCam& cam,
                                 const std::string& path);

}  // namespace fedcustoms::analyst
