#pragma once

#include <ATen/core/Generator.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "common/privacy/per_example_gradients.h"
#include "fedcustoms/v1/config.pb.h"

namespace fedcustoms::models {

// `config` with every zero value replaced by its documented default:
// hidden_units [32, 8], embedding_dim 4, flag_quantile 0.99,
// categorical_weight 1.
v1::AnomalyModelConfig WithDefaults(const v1::AnomalyModelConfig& config);

// OK when an AnomalyAutoencoder can be built from these arguments (after
// WithDefaults): the feature limits of CheckRiskMlpArgs, 1..8 encoder layers
// of 1..8192 units, embedding_dim 1..512, at most 2^26 weights in the
// categorical output heads, flag_quantile in (0, 1), categorical_weight in
// (0, 100]. The error names the argument.
absl::Status CheckAnomalyAutoencoderArgs(int64_t numeric_width,
                                         const std::vector<uint32_t>& buckets,
                                         const v1::AnomalyModelConfig& config);

// The anomaly model: an autoencoder over a declaration's features. Its score
// is the reconstruction error, so declarations unlike those the federation
// has seen score high whether or not anyone ever controlled them.
//
//   numeric [B, Fn] --standardize (as RiskMlp)--> z ----------------+
//   categorical[:, j] --Embedding(buckets[j], E)-- for each j ------+-> concat
//     -> encoder: Linear -> ReLU per hidden unit count, the last one linear
//        (the bottleneck)
//     -> decoder: Linear -> ReLU per hidden unit count in reverse order,
//        bottleneck excluded
//     -> numeric_head: Linear(Fn) reconstructs z
//     -> categorical_heads[j]: Linear(buckets[j]) logits over column j's buckets
//
//   score = mean_k (z_k - ẑ_k)^2 + categorical_weight * mean_j CE_j
//
// where CE_j is the cross-entropy of column j's true bucket: a numeric error
// in standard deviations and a categorical one in nats, each averaged over its
// columns (a part is 0 when the schema has no such column). The training loss
// is the mean score.
//
// Standardization works as in RiskMlp (running_mean / running_var of a
// BatchNorm1d(affine=false) averaged across nodes, stored statistics used in
// training and evaluation).
//
// State names (tensor::StateOf, canonical order), identical to a PyTorch
// module with the same attributes:
//   embeddings.<j>.weight, encoder.<i>.weight, encoder.<i>.bias,
//   decoder.<i>.weight, decoder.<i>.bias, numeric_head.weight,
//   numeric_head.bias, categorical_heads.<j>.weight,
//   categorical_heads.<j>.bias, standardize.num_batches_tracked,
//   standardize.running_mean, standardize.running_var
// (no numeric_head or standardize.* when Fn == 0).
//
// Initialization is deterministic from `seed` (PyTorch's default schemes drawn
// from a generator of our own). Not thread-safe: one model per thread.
class AnomalyAutoencoderImpl : public torch::nn::Module {
 public:
  // Invalid arguments (see CheckAnomalyAutoencoderArgs) throw c10::Error.
  AnomalyAutoencoderImpl(int64_t numeric_width, std::vector<uint32_t> buckets,
                         const v1::AnomalyModelConfig& config, uint64_t seed = 1);

  // Anomaly scores [B] of numeric [B, Fn] float32 and categorical [B, Fc]
  // int64 inputs (differentiable). Throws c10::Error on wrong shapes, dtypes
  // or ids.
  torch::Tensor forward(const torch::Tensor& numeric, const torch::Tensor& categorical);

  // The score split by feature, [B, Fn + Fc]: numeric feature j's squared
  // reconstruction error / Fn, then categorical feature j's cross-entropy x
  // categorical_weight / Fc. The row sums are forward()'s scores, so it is an
  // exact additive explanation of the anomaly score. Throws as forward().
  torch::Tensor FeatureErrors(const torch::Tensor& numeric, const torch::Tensor& categorical);

  void ResetParameters(uint64_t seed);

  // While `tape` is set (not null), forward passes record their Linear and
  // Embedding layers on it, for DP-SGD's per-example gradients
  // (privacy::PerExampleGradients). The tape must outlive its use; pass
  // nullptr to stop recording.
  void RecordPerExample(privacy::PerExampleGradients* tape) { tape_ = tape; }
  // As in RiskMlp.
  bool HasStandardization() const;
  void SetStandardization(const torch::Tensor& mean, const torch::Tensor& variance);

  int64_t numeric_width() const { return numeric_width_; }
  const std::vector<uint32_t>& buckets() const { return buckets_; }
  const v1::AnomalyModelConfig& config() const { return config_; }

 private:
  int64_t numeric_width_;
  std::vector<uint32_t> buckets_;
  v1::AnomalyModelConfig config_;

  torch::nn::BatchNorm1d standardize_{nullptr};
  torch::nn::ModuleList embeddings_{nullptr};
  torch::nn::ModuleList encoder_{nullptr};
  torch::nn::ModuleList decoder_{nullptr};
  torch::nn::Linear numeric_head_{nullptr};
  torch::nn::ModuleList categorical_heads_{nullptr};
  privacy::PerExampleGradients* tape_ = nullptr;  // not owned
};
TORCH_MODULE(AnomalyAutoencoder);

}  // namespace fedcustoms::models
