#include "common/models/risk_mlp.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <mutex>

#include "absl/strings/str_cat.h"

namespace fedcustoms::models {
namespace {

constexpr int64_t kMaxNumeric = 4096;
constexpr size_t kMaxCategorical = 256;
constexpr uint32_t kMaxBuckets = uint32_t{1} << 24;
constexpr uint64_t kMaxEmbeddingWeights = uint64_t{1} << 28;
constexpr int kMaxHiddenLayers = 8;
constexpr uint32_t kMaxHiddenUnits = 8192;
constexpr uint32_t kMaxEmbeddingDim = 512;

}  // namespace

v1::RiskModelConfig WithDefaults(const v1::RiskModelConfig& config) {
  v1::RiskModelConfig c = config;
  if (c.hidden_units().empty()) {
    c.add_hidden_units(64);
    c.add_hidden_units(32);
  }
  if (c.embedding_dim() == 0) c.set_embedding_dim(8);
  if (c.dropout() == 0) c.set_dropout(0.1);
  return c;
}

absl::Status CheckRiskMlpArgs(int64_t numeric_width, const std::vector<uint32_t>& buckets,
                              const v1::RiskModelConfig& config) {
  const v1::RiskModelConfig c = WithDefaults(config);
  auto bad = [](auto&&... parts) { return absl::InvalidArgumentError(absl::StrCat(parts...)); };
  if (numeric_width < 0 || numeric_width > kMaxNumeric) {
    return bad("numeric width ", numeric_width, " is not in 0..", kMaxNumeric);
  }
  if (buckets.size() > kMaxCategorical) {
    return bad(buckets.size(), " categorical features, at most ", kMaxCategorical);
  }
  if (numeric_width == 0 && buckets.empty()) return bad("the model needs at least one feature");
  if (c.embedding_dim() > kMaxEmbeddingDim) {
    return bad("embedding_dim ", c.embedding_dim(), " is not in 1..", kMaxEmbeddingDim);
  }
  uint64_t embedding_weights = 0;
  for (size_t j = 0; j < buckets.size(); ++j) {
    if (buckets[j] == 0 || buckets[j] > kMaxBuckets) {
      return bad("buckets[", j, "] = ", buckets[j], " is not in 1..", kMaxBuckets);
    }
    embedding_weights += uint64_t{buckets[j]} * c.embedding_dim();
  }
  if (embedding_weights > kMaxEmbeddingWeights) {
    return bad("embeddings would hold ", embedding_weights, " weights, at most ",
               kMaxEmbeddingWeights);
  }
  if (c.hidden_units_size() > kMaxHiddenLayers) {
    return bad("hidden_units has ", c.hidden_units_size(), " layers, at most ", kMaxHiddenLayers);
  }
  for (int i = 0; i < c.hidden_units_size(); ++i) {
    if (c.hidden_units(i) == 0 || c.hidden_units(i) > kMaxHiddenUnits) {
      return bad("hidden_units[", i, "] = ", c.hidden_units(i), " is not in 1..", kMaxHiddenUnits);
    }
  }
  if (!std::isfinite(c.dropout()) || c.dropout() < 0 || c.dropout() >= 1) {
    return bad("dropout ", c.dropout(), " is not in [0, 1)");
  }
  return absl::OkStatus();
}

RiskMlpImpl::RiskMlpImpl(int64_t numeric_width, std::vector<uint32_t> buckets,
                         const v1::RiskModelConfig& config, uint64_t seed)
    : numeric_width_(numeric_width),
      buckets_(std::move(buckets)),
      config_(WithDefaults(config)),
      dropout_generator_(at::make_generator<at::CPUGeneratorImpl>(seed)) {
  const absl::Status valid = CheckRiskMlpArgs(numeric_width_, buckets_, config_);
  TORCH_CHECK(valid.ok(), "RiskMlp: ", std::string(valid.message()));
  const int64_t embedding_dim = config_.embedding_dim();
  if (numeric_width_ > 0) {
    standardize_ = register_module(
        "standardize",
        torch::nn::BatchNorm1d(
            torch::nn::BatchNorm1dOptions(numeric_width_).affine(false).momentum(c10::nullopt)));
  }
  embeddings_ = register_module("embeddings", torch::nn::ModuleList());
  for (uint32_t b : buckets_) embeddings_->push_back(torch::nn::Embedding(b, embedding_dim));
  hidden_ = register_module("hidden", torch::nn::ModuleList());
  int64_t width = numeric_width_ + static_cast<int64_t>(buckets_.size()) * embedding_dim;
  for (uint32_t units : config_.hidden_units()) {
    hidden_->push_back(torch::nn::Linear(width, units));
    width = units;
  }
  output_ = register_module("output", torch::nn::Linear(width, 1));
  ResetParameters(seed);
}

void RiskMlpImpl::ResetParameters(uint64_t seed) {
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  torch::NoGradGuard no_grad;
  // The order of the draws is part of the model's definition: embeddings,
  // hidden layers, output.
  for (size_t j = 0; j < embeddings_->size(); ++j) {
    embeddings_->at<torch::nn::EmbeddingImpl>(j).weight.normal_(0.0, 1.0, generator);
  }
  auto init_linear = [&](torch::nn::LinearImpl& linear) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(linear.weight.size(1)));
    linear.weight.uniform_(-bound, bound, generator);
    linear.bias.uniform_(-bound, bound, generator);
  };
  for (size_t i = 0; i < hidden_->size(); ++i) init_linear(hidden_->at<torch::nn::LinearImpl>(i));
  init_linear(*output_);
  if (standardize_) standardize_->reset_running_stats();
}

bool RiskMlpImpl::HasStandardization() const {
  if (!standardize_) return true;
  torch::NoGradGuard no_grad;
  return !(torch::all(standardize_->running_mean == 0).item<bool>() &&
           torch::all(standardize_->running_var == 1).item<bool>());
}

void RiskMlpImpl::SetStandardization(const torch::Tensor& mean, const torch::Tensor& variance) {
  if (!standardize_) return;
  TORCH_CHECK(mean.sizes() == standardize_->running_mean.sizes() &&
                  variance.sizes() == standardize_->running_var.sizes(),
              "RiskMlp: standardization statistics must have ", numeric_width_, " values");
  torch::NoGradGuard no_grad;
  standardize_->running_mean.copy_(mean);
  standardize_->running_var.copy_(variance);
}

void RiskMlpImpl::SeedDropout(uint64_t seed) {
  std::lock_guard<std::mutex> lock(dropout_generator_.mutex());
  dropout_generator_.set_current_seed(seed);
}

torch::Tensor RiskMlpImpl::forward(const torch::Tensor& numeric, const torch::Tensor& categorical) {
  const auto categorical_width = static_cast<int64_t>(buckets_.size());
  TORCH_CHECK(numeric.dim() == 2 && numeric.size(1) == numeric_width_,
              "RiskMlp: numeric input must be [B, ", numeric_width_, "], got ", numeric.sizes());
  TORCH_CHECK(categorical.dim() == 2 && categorical.size(1) == categorical_width,
              "RiskMlp: categorical input must be [B, ", categorical_width, "], got ",
              categorical.sizes());
  TORCH_CHECK(numeric.size(0) == categorical.size(0),
              "RiskMlp: batch sizes differ: ", numeric.size(0), " numeric rows, ",
              categorical.size(0), " categorical rows");
  TORCH_CHECK(numeric.scalar_type() == torch::kFloat32, "RiskMlp: numeric input must be float32");
  TORCH_CHECK(categorical.scalar_type() == torch::kInt64,
              "RiskMlp: categorical input must be int64");

  std::vector<torch::Tensor> parts;
  parts.reserve(1 + buckets_.size());
  if (numeric_width_ > 0) {
    // Always the stored statistics, in training too (unlike BatchNorm's
    // training mode): a node trains with exactly the standardization it is
    // evaluated with, the global one. Equal to BatchNorm1d(affine=False) in
    // eval mode, so PyTorch loads and runs the state as such.
    const double eps = standardize_->options.eps();
    parts.push_back((numeric - standardize_->running_mean) /
                    torch::sqrt(standardize_->running_var + eps));
  }
  for (int64_t j = 0; j < categorical_width; ++j) {
    parts.push_back(embeddings_->at<torch::nn::EmbeddingImpl>(j).forward(categorical.select(1, j)));
  }
  torch::Tensor x = torch::cat(parts, /*dim=*/1);
  const double p = config_.dropout();
  for (size_t i = 0; i < hidden_->size(); ++i) {
    x = torch::relu(hidden_->at<torch::nn::LinearImpl>(i).forward(x));
    if (is_training() && p > 0) {
      torch::Tensor keep = torch::empty_like(x).bernoulli_(1.0 - p, dropout_generator_);
      x = x * keep * (1.0 / (1.0 - p));
    }
  }
  return output_->forward(x).squeeze(1);
}

}  // namespace fedcustoms::models
