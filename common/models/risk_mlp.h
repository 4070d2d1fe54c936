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
// hidden_units [64, 32], embedding_dim 8, dropout 0.1, each cross's
// hash_buckets 16384. (proto3 cannot tell an explicit 0 from an unset field,
// so dropout 0 also means 0.1.)
v1::RiskModelConfig WithDefaults(const v1::RiskModelConfig& config);

// The two categorical features (indices into `buckets`) of one crossed pair
// (RiskModelConfig.crosses, resolved from column names by
// task::ResolveCrosses).
struct CrossColumns {
  int64_t first = 0;
  int64_t second = 0;
};

// OK when a RiskMlp can be built from these arguments (after WithDefaults):
// 0..4096 numeric features, 0..256 categorical ones, at least one feature in
// all, buckets in 1..2^24, at most 2^28 embedding weights, 1..8 hidden layers
// of 1..8192 units, embedding_dim 1..512, dropout in [0, 1), at most 64
// crosses of 1..2^24 buckets, one `crosses` entry per config cross, each
// naming two distinct features. The error names the argument.
absl::Status CheckRiskMlpArgs(int64_t numeric_width, const std::vector<uint32_t>& buckets,
                              const v1::RiskModelConfig& config,
                              const std::vector<CrossColumns>& crosses = {});

// The risk model: P(non-compliant) of a declaration from its numeric features
// (after log1p) and the hash buckets of its categorical ones.
//
//   numeric [B, Fn] --BatchNorm1d(Fn, affine=false, momentum=None)--+
//   categorical[:, j] --Embedding(buckets[j], E)-- for each j -------+-> concat
//     -> (Linear -> ReLU -> Dropout) per hidden layer -> Linear(1) --+-> logits [B]
//   for each cross k: (categorical[:, a_k], categorical[:, b_k]) -> CrossIds  |
//     -> Embedding(cross buckets, 1) -------------------------------------+ (summed)
//
// kind LOGISTIC has no hidden layer, embeddings of width 1 and an output
// Linear over the standardized numerics only: logit = bias + w . numerics +
// sum_j embeddings[j][id_j] + sum_k crosses[k][cross id_k], a logistic
// regression on one-hot buckets, every weight initialized to 0.
//
// The crosses are the "wide" part: a weight per bucket of a pair of values,
// initialized to 0 (so a model with crosses starts as the same MLP), added to
// the logit without dropout.
//
// Input standardization is the BatchNorm's running_mean / running_var: they
// are buffers of the model state, averaged across nodes like weights, so no
// node's raw feature statistics travel on their own. momentum=None makes them
// the cumulative average over the batches of one local training (see
// training::TrainRiskModel, which resets num_batches_tracked); the int64
// `num_batches_tracked` is not aggregatable (tensor::IsAggregatable) and is
// never part of an update.
//
// State names (tensor::StateOf, canonical order), identical to a PyTorch module
// with the same attributes, so the pickled state dict loads in Python:
//   crosses.<k>.weight, embeddings.<j>.weight, hidden.<i>.weight,
//   hidden.<i>.bias, output.weight, output.bias,
//   standardize.num_batches_tracked, standardize.running_mean,
//   standardize.running_var   (no standardize.* when Fn == 0, no crosses.*
//   without crosses)
//
// Initialization is deterministic from `seed` and does not depend on the
// global torch RNG: PyTorch's default schemes (N(0, 1) embeddings,
// U(±1/sqrt(fan_in)) linear weights and biases) drawn from a generator of our
// own. (The LibTorch submodules still draw their own default init from the
// global RNG while being built; it is overwritten.) Dropout draws from a
// generator owned by the module (SeedDropout), so concurrent models in one
// process stay reproducible.
// Not thread-safe: use one model per thread.
class RiskMlpImpl : public torch::nn::Module {
 public:
  // Builds the model; zero config values take their defaults. `crosses`
  // holds the features of each of config.crosses, in order. Invalid
  // arguments (see CheckRiskMlpArgs) throw c10::Error: call CheckRiskMlpArgs
  // first when they come from outside.
  RiskMlpImpl(int64_t numeric_width, std::vector<uint32_t> buckets,
              const v1::RiskModelConfig& config, uint64_t seed = 1,
              std::vector<CrossColumns> crosses = {});

  // Logits [B] of numeric [B, Fn] float32 and categorical [B, Fc] int64 with
  // ids in [0, buckets[j]). Throws c10::Error on wrong shapes, dtypes or ids.
  // Numerics are standardized with the stored statistics in both modes (see
  // SetStandardization); training mode applies dropout.
  torch::Tensor forward(const torch::Tensor& numeric, const torch::Tensor& categorical);

  // forward() in two steps, for explanations that work in the encoded space
  // (integrated gradients): Encode() gives [B, encoded_width()] = the
  // standardized numerics (columns 0..Fn-1), each categorical feature's
  // embedding (E columns each, in feature order), then each cross's weight
  // (one column each); LogitsOfEncoded() runs the hidden layers on all but
  // the cross columns and adds those. forward(n, c) ==
  // LogitsOfEncoded(Encode(n, c)). Encode() throws c10::Error as forward()
  // does.
  torch::Tensor Encode(const torch::Tensor& numeric, const torch::Tensor& categorical);
  torch::Tensor LogitsOfEncoded(const torch::Tensor& encoded);
  int64_t encoded_width() const { return deep_width() + static_cast<int64_t>(crosses_.size()); }
  // Columns of the encoded input the hidden layers read (all but the
  // crosses'; LOGISTIC reads numeric_width() of them through the output
  // layer and adds the rest).
  int64_t deep_width() const {
    return numeric_width_ + static_cast<int64_t>(buckets_.size()) * config_.embedding_dim();
  }

  // The bucket [B] of cross `k` for categorical ids [B, Fc]: a fixed hash of
  // the pair of ids (documented in risk_mlp.cc; a Python reader computes the
  // same).
  torch::Tensor CrossIds(const torch::Tensor& categorical, size_t k) const;

  // Re-initializes every parameter and resets the standardization buffers
  // (mean 0, variance 1, count 0) deterministically from `seed`.
  void ResetParameters(uint64_t seed);

  // While `tape` is set (not null), forward passes record their Linear and
  // Embedding layers on it, for DP-SGD's per-example gradients
  // (privacy::PerExampleGradients). The tape must outlive its use; pass
  // nullptr to stop recording.
  void RecordPerExample(privacy::PerExampleGradients* tape) { tape_ = tape; }

  // False while the standardization statistics are still the reset values
  // (mean 0, variance 1): no data has ever set them.
  bool HasStandardization() const;
  // Sets the per-column mean and variance of the numeric inputs. They live in
  // the state as "standardize.running_mean" / "standardize.running_var" (a
  // BatchNorm1d without affine parameters) and are averaged across nodes like
  // the weights, so every node standardizes with the federation's statistics
  // and no node reveals more than its column means and variances.
  void SetStandardization(const torch::Tensor& mean, const torch::Tensor& variance);

  // Reseeds the dropout generator.
  void SeedDropout(uint64_t seed);

  int64_t numeric_width() const { return numeric_width_; }
  const std::vector<uint32_t>& buckets() const { return buckets_; }
  const std::vector<CrossColumns>& crosses() const { return crosses_; }
  // The config with defaults applied.
  const v1::RiskModelConfig& config() const { return config_; }
  bool logistic() const { return config_.kind() == v1::RiskModelConfig::LOGISTIC; }

 private:
  // Constant after construction.
  int64_t numeric_width_;
  std::vector<uint32_t> buckets_;
  v1::RiskModelConfig config_;
  std::vector<CrossColumns> crosses_;

  torch::nn::ModuleList cross_weights_{nullptr};
  torch::nn::BatchNorm1d standardize_{nullptr};
  torch::nn::ModuleList embeddings_{nullptr};
  torch::nn::ModuleList hidden_{nullptr};
  torch::nn::Linear output_{nullptr};
  at::Generator dropout_generator_;
  privacy::PerExampleGradients* tape_ = nullptr;  // not owned
};
TORCH_MODULE(RiskMlp);

}  // namespace fedcustoms::models
