#pragma once

#include <ATen/core/Generator.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "common/privacy/per_example_gradients.h"

namespace fedcustoms::models {

// The input stage the declaration models (RiskMlp, AnomalyAutoencoder) share:
// numeric features standardized with federation-wide statistics kept in a
// BatchNorm1d's buffers, categorical features as hash-bucket ids.

// OK when the feature widths are usable: 0..4096 numeric features, 0..256
// categorical ones, at least one feature in all, buckets in 1..2^24,
// embedding_dim 1..512 and at most 2^28 embedding weights. The error names
// the argument.
absl::Status CheckDeclarationFeatures(int64_t numeric_width, const std::vector<uint32_t>& buckets,
                                      uint32_t embedding_dim);

// OK when `hidden_units` has 1..8 layers of 1..8192 units (an empty list is
// refused: callers apply their defaults first). The error names the field.
absl::Status CheckHiddenUnits(std::span<const uint32_t> hidden_units);

// Both checks, as each declaration model makes them first.
absl::Status CheckDeclarationModel(int64_t numeric_width, const std::vector<uint32_t>& buckets,
                                   uint32_t embedding_dim, std::span<const uint32_t> hidden_units);

// BatchNorm1d(width, affine=false, momentum=None): only its running_mean and
// running_var are used, as the standardization statistics.
torch::nn::BatchNorm1d MakeStandardization(int64_t width);

// (x - running_mean) / sqrt(running_var + eps): the stored statistics in
// training too, so a node trains with exactly the standardization it is
// evaluated with. Equal to the BatchNorm1d in eval mode, so PyTorch runs the
// state as such.
torch::Tensor Standardize(torch::nn::BatchNorm1dImpl& standardize, const torch::Tensor& numeric);

// False while the statistics are still the reset values (mean 0, variance 1).
bool HasStandardization(const torch::nn::BatchNorm1dImpl& standardize);

// Copies the per-column mean and variance in; throws c10::Error when their
// sizes differ from the module's width.
void SetStandardization(torch::nn::BatchNorm1dImpl& standardize, const torch::Tensor& mean,
                        const torch::Tensor& variance);

// Throws c10::Error, prefixed with `model`, unless numeric is [B, numeric_width]
// float32 and categorical [B, categorical_width] int64 with the same B.
void CheckDeclarationInputs(std::string_view model, const torch::Tensor& numeric,
                            const torch::Tensor& categorical, int64_t numeric_width,
                            int64_t categorical_width);

// Registers on `module` the input stage's submodules under the names the
// states use: "standardize" (only when numeric_width > 0) and "embeddings"
// (one Embedding(buckets[j], embedding_dim) per categorical feature). Returns
// the width of the encoded input.
int64_t RegisterDeclarationInputs(torch::nn::Module& module, int64_t numeric_width,
                                  const std::vector<uint32_t>& buckets, int64_t embedding_dim,
                                  torch::nn::BatchNorm1d* standardize,
                                  torch::nn::ModuleList* embeddings);

// The encoded input [B, width]: standardized numerics (when `standardize` is
// set) then each categorical column's embedding. When `standardized` is given
// it receives the standardized numerics (undefined without numerics). With a
// `tape`, the embedding lookups are recorded on it (DP-SGD).
// Preconditions: CheckDeclarationInputs passed.
torch::Tensor EncodeDeclarationInputs(torch::nn::BatchNorm1d& standardize,
                                      torch::nn::ModuleList& embeddings,
                                      const torch::Tensor& numeric,
                                      const torch::Tensor& categorical,
                                      torch::Tensor* standardized = nullptr,
                                      privacy::PerExampleGradients* tape = nullptr);

// layers[i](x), recorded on `tape` when there is one.
torch::Tensor ApplyLinear(torch::nn::ModuleList& layers, size_t i, const torch::Tensor& x,
                          privacy::PerExampleGradients* tape);
// layer(x), recorded on `tape` when there is one.
torch::Tensor ApplyLinear(torch::nn::LinearImpl& layer, const torch::Tensor& x,
                          privacy::PerExampleGradients* tape);

// PyTorch's default Linear initialization, U(±1/sqrt(fan_in)) for weight and
// bias, drawn from `generator`.
void InitLinear(torch::nn::LinearImpl& linear, at::Generator& generator);
// InitLinear on each Linear of `layers`, in order.
void InitLinears(torch::nn::ModuleList& layers, at::Generator& generator);
// N(0, 1) for each Embedding of `embeddings` (PyTorch's default), in order.
void InitEmbeddings(torch::nn::ModuleList& embeddings, at::Generator& generator);

}  // namespace fedcustoms::models
