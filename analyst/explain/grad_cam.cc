#include "analyst/explain/grad_cam.h"

#include <torch/torch.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "absl/strings/str_cat.h"
#include "common/io/atomic_file.h"

namespace fedcustoms::analyst {

std::vector<GradCam> ComputeGradCam(models::XrayCnn& model, const torch::Tensor& images,
                                    std::span<const int> target_classes) {
  const int64_t b = images.size(0), size = model->image_size();
  TORCH_CHECK(static_cast<int64_t>(target_classes.size()) == b,
              "Grad-CAM: one target class per image is needed");
  model->eval();
  torch::Tensor activation;
  {
    torch::NoGradGuard no_grad;
    activation = model->LastConvActivation(images);
  }
  activation.requires_grad_(true);
  const torch::Tensor logits = model->LogitsOfLastConv(activation);
  std::vector<int64_t> targets(target_classes.begin(), target_classes.end());
  const torch::Tensor target = torch::tensor(targets, torch::kInt64);
  TORCH_CHECK(
      target.min().item<int64_t>() >= 0 && target.max().item<int64_t>() < model->num_classes(),
      "Grad-CAM: target class out of range");
  const torch::Tensor selected = logits.gather(1, target.unsqueeze(1)).sum();
  const torch::Tensor gradient = torch::autograd::grad({selected}, {activation})[0];
  torch::Tensor cam;
  {
    torch::NoGradGuard no_grad;
    const torch::Tensor weights = gradient.mean({2, 3}, /*keepdim=*/true);
    cam = torch::relu((weights * activation).sum(1, /*keepdim=*/true));
    namespace F = torch::nn::functional;
    cam = F::interpolate(cam, F::InterpolateFuncOptions()
                                  .size(std::vector<int64_t>{size, size})
                                  .mode(torch::kBilinear)
                                  .align_corners(false))
              .view({b, size * size});
    const torch::Tensor peak = cam.amax(1, /*keepdim=*/true);
    cam = torch::where(peak > 0, cam / peak.clamp_min(1e-30), torch::zeros_like(cam)).contiguous();
  }
  std::vector<GradCam> out(static_cast<size_t>(b));
  for (int64_t i = 0; i < b; ++i) {
    GradCam& g = out[static_cast<size_t>(i)];
    g.target_class = target_classes[static_cast<size_t>(i)];
    g.size = static_cast<int>(size);
    const float* p = cam.data_ptr<float>() + i * size * size;
    g.heatmap.assign(p, p + size * size);
    const auto peak = std::max_element(g.heatmap.begin(), g.heatmap.end());
    if (*peak > 0) {
      g.peak_x = static_cast<int>((peak - g.heatmap.begin()) % size);
      g.peak_y = static_cast<int>((peak - g.heatmap.begin()) / size);
    }
  }
  return out;
}

absl::Status WriteGradCamOverlay(const uint16_t* pixels, const GradCam& cam,
                                 const std::string& path) {
  const int s = cam.size;
  cv::Mat gray16(s, s, CV_16UC1, const_cast<uint16_t*>(pixels));
  cv::Mat gray8, gray_bgr, heat8, heat_bgr, blended;
  gray16.convertTo(gray8, CV_8U, 1.0 / 257.0);
  cv::cvtColor(gray8, gray_bgr, cv::COLOR_GRAY2BGR);
  cv::Mat heat(s, s, CV_32FC1, const_cast<float*>(cam.heatmap.data()));
  heat.convertTo(heat8, CV_8U, 255.0);
  cv::applyColorMap(heat8, heat_bgr, cv::COLORMAP_JET);
  cv::addWeighted(gray_bgr, 0.55, heat_bgr, 0.45, 0, blended);
  if (cam.peak_x >= 0) {
    const int arm = std::max(2, s / 16);
    const cv::Scalar white(255, 255, 255);
    cv::line(blended, {cam.peak_x - arm, cam.peak_y}, {cam.peak_x + arm, cam.peak_y}, white);
    cv::line(blended, {cam.peak_x, cam.peak_y - arm}, {cam.peak_x, cam.peak_y + arm}, white);
  }
  std::vector<uchar> png;
  try {
    if (!cv::imencode(".png", blended, png)) {
      return absl::InternalError(absl::StrCat(path, ": PNG encoding failed"));
    }
  } catch (const cv::Exception& e) {
    return absl::InternalError(absl::StrCat(path, ": PNG encoding failed: ", e.what()));
  }
  return io::WriteFileAtomically(
      path, std::string_view(reinterpret_cast<const char*>(png.data()), png.size()));
}

}  // namespace fedcustoms::analyst
