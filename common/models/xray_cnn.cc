#include "common/models/xray_cnn.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <mutex>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/xray/xray_model_config.h"

namespace fedcustoms::models {
namespace {

// 1 GiB of float32 weights in the hidden layer: more means a shallow net on
// big images, which a node could not train anyway.
constexpr uint64_t kMaxHiddenWeights = uint64_t{1} << 28;

// Side of the feature map after `depth` 2x2 max-pools (floor, as PyTorch).
int64_t SideAfter(uint32_t image_size, int depth) {
  return depth >= 32 ? 0 : static_cast<int64_t>(image_size >> depth);
}

}  // namespace

absl::Status CheckXrayCnnConfig(const v1::XrayModelConfig& config, std::string_view where) {
  const v1::XrayModelConfig c = xray::WithXrayDefaults(config);
  if (absl::Status s = xray::CheckXrayModelConfig(c, where); !s.ok()) return s;
  const int depth = c.channels_size();
  const int64_t side = SideAfter(c.image_size(), depth);
  if (side < 1) {
    int fits = 0;
    while (SideAfter(c.image_size(), fits + 1) >= 1) ++fits;
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(where), ".channels: ", depth,
                     " convolution blocks leave no pixel of image_size ", c.image_size(),
                     " (each halves it); at most ", fits, " fit"));
  }
  const uint64_t hidden_weights =
      uint64_t{c.channels(depth - 1)} * static_cast<uint64_t>(side * side) * c.hidden_units();
  if (hidden_weights > kMaxHiddenWeights) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(where), ".hidden_units: the hidden layer would hold ",
                     hidden_weights, " weights, at most ", kMaxHiddenWeights,
                     " (add convolution blocks or lower hidden_units)"));
  }
  return absl::OkStatus();
}

XrayCnnImpl::XrayCnnImpl(const v1::XrayModelConfig& config, uint64_t seed)
    : config_(xray::WithXrayDefaults(config)),
      dropout_generator_(at::make_generator<at::CPUGeneratorImpl>(seed)) {
  const absl::Status valid = CheckXrayCnnConfig(config_);
  TORCH_CHECK(valid.ok(), "XrayCnn: ", std::string(valid.message()));
  conv_ = register_module("conv", torch::nn::ModuleList());
  int64_t width = config_.input_channels();
  for (uint32_t out : config_.channels()) {
    conv_->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(width, out, 3).padding(1)));
    width = out;
  }
  const int64_t side = SideAfter(config_.image_size(), config_.channels_size());
  flat_features_ = width * side * side;
  hidden_ = register_module("hidden", torch::nn::Linear(flat_features_, config_.hidden_units()));
  output_ =
      register_module("output", torch::nn::Linear(config_.hidden_units(), config_.classes_size()));
  ResetParameters(seed);
}

void XrayCnnImpl::ResetParameters(uint64_t seed) {
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  torch::NoGradGuard no_grad;
  // PyTorch's reset_parameters(): kaiming_uniform_(a=sqrt(5)) gives the bound
  // sqrt(6 / ((1 + 5) * fan_in)) = 1/sqrt(fan_in), and the bias takes the same.
  auto init = [&](at::Tensor& weight, at::Tensor& bias) {
    const double fan_in = static_cast<double>(weight.numel() / weight.size(0));
    const double bound = 1.0 / std::sqrt(fan_in);
    weight.uniform_(-bound, bound, generator);
    bias.uniform_(-bound, bound, generator);
  };
  for (size_t i = 0; i < conv_->size(); ++i) {
    auto& conv = conv_->at<torch::nn::Conv2dImpl>(i);
    init(conv.weight, conv.bias);
  }
  init(hidden_->weight, hidden_->bias);
  init(output_->weight, output_->bias);
}

void XrayCnnImpl::SeedDropout(uint64_t seed) {
  std::lock_guard<std::mutex> lock(dropout_generator_.mutex());
  dropout_generator_.set_current_seed(seed);
}

torch::Tensor XrayCnnImpl::EncodePixels(const torch::Tensor& images) const {
  if (config_.pixel_encoding() == v1::XrayModelConfig::INTENSITY) return images;
  // clamp_min before the log: a pixel of 0 counts has attenuation 8, not inf.
  return images.clamp_min(std::exp(-xray::kMaxAttenuation))
      .log_()
      .neg_()
      .sub_(config_.attenuation_center())
      .div_(config_.attenuation_scale());
}

torch::Tensor XrayCnnImpl::forward(const torch::Tensor& images) {
  return LogitsOfLastConv(LastConvActivation(images));
}

torch::Tensor XrayCnnImpl::LastConvActivation(const torch::Tensor& images) {
  const int64_t size = config_.image_size();
  TORCH_CHECK(images.dim() == 4 && images.size(1) == config_.input_channels() &&
                  images.size(2) == size && images.size(3) == size,
              "XrayCnn: images must be [B, ", config_.input_channels(), ", ", size, ", ", size,
              "], got ", images.sizes());
  TORCH_CHECK(images.scalar_type() == torch::kFloat32, "XrayCnn: images must be float32, got ",
              images.scalar_type());
  torch::Tensor x = EncodePixels(images);
  const size_t last = conv_->size() - 1;
  auto conv = [&](size_t i, const torch::Tensor& in) {
    torch::nn::Conv2dImpl& layer = conv_->at<torch::nn::Conv2dImpl>(i);
    return tape_ ? tape_->Conv2d(layer, in) : layer.forward(in);
  };
  for (size_t i = 0; i < last; ++i) x = torch::max_pool2d(torch::relu(conv(i, x)), 2);
  return torch::relu(conv(last, x));
}

torch::Tensor XrayCnnImpl::LogitsOfLastConv(const torch::Tensor& activation) {
  const torch::Tensor pooled = torch::max_pool2d(activation, 2).flatten(1);
  torch::Tensor x = torch::relu(tape_ ? tape_->Linear(*hidden_, pooled) : hidden_->forward(pooled));
  const double p = config_.dropout();
  if (is_training() && p > 0) {
    torch::Tensor keep = torch::empty_like(x).bernoulli_(1.0 - p, dropout_generator_);
    x = x * keep * (1.0 / (1.0 - p));
  }
  return tape_ ? tape_->Linear(*output_, x) : output_->forward(x);
}

}  // namespace fedcustoms::models
