#include "common/models/risk_mlp.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "common/models/declaration_features.h"

namespace fedcustoms::models {
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
  if (absl::Status s = CheckDeclarationModel(
          numeric_width, buckets, c.embedding_dim(),
          {c.hidden_units().data(), static_cast<size_t>(c.hidden_units_size())});
      !s.ok()) {
    return s;
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
  int64_t width = RegisterDeclarationInputs(*this, numeric_width_, buckets_,
                                            config_.embedding_dim(), &standardize_, &embeddings_);
  hidden_ = register_module("hidden", torch::nn::ModuleList());
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
  InitEmbeddings(embeddings_, generator);
  InitLinears(hidden_, generator);
  InitLinear(*output_, generator);
  if (standardize_) standardize_->reset_running_stats();
}

bool RiskMlpImpl::HasStandardization() const {
  return !standardize_ || models::HasStandardization(*standardize_);
}

void RiskMlpImpl::SetStandardization(const torch::Tensor& mean, const torch::Tensor& variance) {
  if (standardize_) models::SetStandardization(*standardize_, mean, variance);
}

void RiskMlpImpl::SeedDropout(uint64_t seed) {
  std::lock_guard<std::mutex> lock(dropout_generator_.mutex());
  dropout_generator_.set_current_seed(seed);
}

torch::Tensor RiskMlpImpl::forward(const torch::Tensor& numeric, const torch::Tensor& categorical) {
  return LogitsOfEncoded(Encode(numeric, categorical));
}

torch::Tensor RiskMlpImpl::Encode(const torch::Tensor& numeric, const torch::Tensor& categorical) {
  const auto categorical_width = static_cast<int64_t>(buckets_.size());
  CheckDeclarationInputs("RiskMlp", numeric, categorical, numeric_width_, categorical_width);
  return EncodeDeclarationInputs(standardize_, embeddings_, numeric, categorical,
                                 /*standardized=*/nullptr, tape_);
}

torch::Tensor RiskMlpImpl::LogitsOfEncoded(const torch::Tensor& encoded) {
  torch::Tensor x = encoded;
  const double p = config_.dropout();
  for (size_t i = 0; i < hidden_->size(); ++i) {
    x = torch::relu(ApplyLinear(hidden_, i, x, tape_));
    if (is_training() && p > 0) {
      torch::Tensor keep = torch::empty_like(x).bernoulli_(1.0 - p, dropout_generator_);
      x = x * keep * (1.0 / (1.0 - p));
    }
  }
  return ApplyLinear(*output_, x, tape_).squeeze(1);
}

}  // namespace fedcustoms::models
