#pragma once

#include <ATen/core/Generator.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "common/privacy/per_example_gradients.h"
#include "fedcustoms/v1/config.pb.h"

namespace fedcustoms::models {

// OK when an XrayCnn can be built from `config` (after xray::WithXrayDefaults):
// what xray::CheckXrayModelConfig accepts (common/xray/xray_model_config.h,
// shared with the data loader), and in addition what this architecture
// needs: image_size large enough that the conv blocks' halvings leave at
// least one pixel (28 allows 4 blocks, 64 allows 6), and at most 2^28 weights
// in the hidden layer. InvalidArgument naming `where` and the field, e.g.
// "xray_model.channels: 4 convolution blocks leave no pixel of image_size 8
// (each halves it); at most 3 fit".
absl::Status CheckXrayCnnConfig(const v1::XrayModelConfig& config,
                                std::string_view where = "xray_model");

// The X-ray model: threat class logits of an image.
//
//   images [B, C, S, S] float32 in [0, 1]
//     -> EncodePixels (default: standardized attenuation, see below)
//     -> (Conv2d 3x3 pad 1 -> ReLU -> MaxPool 2x2) per entry of `channels`
//     -> flatten (C_last * (S >> depth)^2) -> Linear(hidden_units) -> ReLU
//     -> Dropout -> Linear(classes) -> logits [B, classes]
//
// Pixels come in already scaled to [0, 1] (training::UnitImages divides 8-bit
// values by 255 and 16-bit ones by 65535): a fixed range every node shares, so
// no per-node input statistics are needed. The model itself then encodes
// them (pixel_encoding in config.proto): by default the attenuation
// a = -ln(max(I, e^-8)), in which objects stacked in the beam add up
// (Beer-Lambert), standardized with the config's fixed center and scale. On
// the synthetic cargo images, pooled training with this input reached PR-AUC
// 0.50 after one epoch where raw intensity in [0, 1] stayed at 0.11 (and
// reached 0.54 only after six). Augmentation (gain jitter) works on I, before
// the encoding. There is deliberately no BatchNorm:
// its running statistics and its batch-statistics training mode behave badly
// when nodes hold non-IID data (each node normalizes with statistics that are
// wrong for the others, and averaging them does not give the federation's), a
// known failure of federated CNNs; the first convolution's bias can learn any
// fixed offset. MaxPool floors, like PyTorch's default, so S need not be a
// power of two (28 -> 14 -> 7 -> 3).
//
// State names (tensor::StateOf, canonical order), identical to this PyTorch
// module, so the pickled state dict loads with load_state_dict(strict=True):
//   conv.<i>.bias, conv.<i>.weight (i = 0..depth-1), hidden.bias,
//   hidden.weight, output.bias, output.weight      (no buffers)
//
//   class XrayCnn(nn.Module):
//       def __init__(self, channels, input_channels, image_size, hidden, classes, p,
//                    center, scale):
//           super().__init__()
//           self.center, self.scale = center, scale
//           widths = [input_channels] + channels
//           self.conv = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1)
//                                     for a, b in zip(widths, widths[1:]))
//           side = image_size >> len(channels)
//           self.hidden = nn.Linear(channels[-1] * side * side, hidden)
//           self.dropout = nn.Dropout(p)
//           self.output = nn.Linear(hidden, classes)
//       def forward(self, x):  # encoding ATTENUATION; INTENSITY skips the line
//           x = (-x.clamp_min(math.exp(-8)).log() - self.center) / self.scale
//           for conv in self.conv:
//               x = F.max_pool2d(F.relu(conv(x)), 2)
//           x = F.relu(self.hidden(x.flatten(1)))
//           return self.output(self.dropout(x))
//
// Initialization is deterministic from `seed` and does not depend on the
// global torch RNG: PyTorch's default for Conv2d and Linear (Kaiming-uniform
// with a = sqrt(5), i.e. weights and biases U(±1/sqrt(fan_in))) drawn from a
// generator of our own. (The LibTorch submodules still draw their own default
// init from the global RNG while being built; it is overwritten.) Dropout
// draws from a generator owned by the module (SeedDropout), so concurrent
// models in one process stay reproducible.
// Not thread-safe: use one model per thread.
class XrayCnnImpl : public torch::nn::Module {
 public:
  // Builds the model; unset config fields take their defaults
  // (xray::WithXrayDefaults). An invalid
  // config (see CheckXrayCnnConfig) throws c10::Error: call CheckXrayCnnConfig
  // first when it comes from outside.
  explicit XrayCnnImpl(const v1::XrayModelConfig& config, uint64_t seed = 1);

  // Logits [B, num_classes()] of float32 images [B, input_channels(),
  // image_size(), image_size()] in [0, 1] (values are not checked here; the
  // trainer and evaluator do). Throws c10::Error on a wrong shape or dtype.
  // Training mode applies dropout.
  torch::Tensor forward(const torch::Tensor& images);

  // forward() in two steps, for Grad-CAM: LastConvActivation() is the last
  // convolution block's ReLU output before its max-pool, [B, channels.back(),
  // S >> (depth-1), S >> (depth-1)] (the finest map that still sees whole
  // objects); LogitsOfLastConv() pools it and runs the classifier.
  // forward(x) == LogitsOfLastConv(LastConvActivation(x)); the checks and
  // errors are forward()'s.
  torch::Tensor LastConvActivation(const torch::Tensor& images);
  torch::Tensor LogitsOfLastConv(const torch::Tensor& activation);

  // What the first convolution reads of images in [0, 1]: the images
  // themselves (INTENSITY) or their standardized attenuation (ATTENUATION).
  torch::Tensor EncodePixels(const torch::Tensor& images) const;

  // Re-initializes every parameter deterministically from `seed`; the order
  // of the draws (conv blocks in order, weight then bias; hidden; output) is
  // part of the model's definition.
  void ResetParameters(uint64_t seed);

  // Reseeds the dropout generator.
  void SeedDropout(uint64_t seed);

  // While `tape` is set (not null), forward passes record their Conv2d and
  // Linear layers on it, for DP-SGD's per-example gradients
  // (privacy::PerExampleGradients). The tape must outlive its use; pass
  // nullptr to stop recording.
  void RecordPerExample(privacy::PerExampleGradients* tape) { tape_ = tape; }

  // The config with defaults applied.
  const v1::XrayModelConfig& config() const { return config_; }
  int64_t image_size() const { return config_.image_size(); }
  int64_t input_channels() const { return config_.input_channels(); }
  int64_t num_classes() const { return config_.classes_size(); }
  // Inputs of the hidden layer: channels.back() * (image_size >> depth)^2.
  int64_t flat_features() const { return flat_features_; }

 private:
  // Constant after construction.
  v1::XrayModelConfig config_;
  int64_t flat_features_ = 0;

  torch::nn::ModuleList conv_{nullptr};
  torch::nn::Linear hidden_{nullptr};
  torch::nn::Linear output_{nullptr};
  at::Generator dropout_generator_;
  privacy::PerExampleGradients* tape_ = nullptr;  // not owned
};
TORCH_MODULE(XrayCnn);

}  // namespace fedcustoms::models
