#include "common/models/anomaly_autoencoder.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/models/declaration_features.h"

namespace fedcustoms::models {
namespace {

// Output heads predict every bucket of every categorical column.
constexpr uint64_t kMaxHeadWeights = uint64_t{1} << 26;

}  // namespace

v1::AnomalyModelConfig WithDefaults(const v1::AnomalyModelConfig& config) {
  v1::AnomalyModelConfig c = config;
  if (c.hidden_units().empty()) {
    c.add_hidden_units(32);
    c.add_hidden_units(8);
  }
  if (c.embedding_dim() == 0) c.set_embedding_dim(4);
  if (c.flag_quantile() == 0) c.set_flag_quantile(0.99);
  if (c.categorical_weight() == 0) c.set_categorical_weight(1);
  return c;
}

absl::Status CheckAnomalyAutoencoderArgs(int64_t numeric_width,
                                         const std::vector<uint32_t>& buckets,
                                         const v1::AnomalyModelConfig& config) {
  const v1::AnomalyModelConfig c = WithDefaults(config);
  auto bad = [](auto&&... parts) { return absl::InvalidArgumentError(absl::StrCat(parts...)); };
  if (absl::Status s = CheckDeclarationModel(
          numeric_width, buckets, c.embedding_dim(),
          {c.hidden_units().data(), static_cast<size_t>(c.hidden_units_size())});
      !s.ok()) {
    return s;
  }
  uint64_t head_weights = 0;
  // The decoder ends at the width of the first hidden layer.
  for (uint32_t b : buckets) head_weights += uint64_t{b} * (c.hidden_units(0) + 1);
  if (head_weights > kMaxHeadWeights) {
    return bad("categorical output heads would hold ", head_weights, " weights, at most ",
               kMaxHeadWeights, " (fewer hash_buckets or a narrower first hidden layer)");
  }
  if (!std::isfinite(c.flag_quantile()) || c.flag_quantile() <= 0 || c.flag_quantile() >= 1) {
    return bad("flag_quantile ", c.flag_quantile(), " is not in (0, 1)");
  }
  if (!std::isfinite(c.categorical_weight()) || c.categorical_weight() <= 0 ||
      c.categorical_weight() > 100) {
    return bad("categorical_weight ", c.categorical_weight(), " is not in (0, 100]");
  }
  return absl::OkStatus();
}

AnomalyAutoencoderImpl::AnomalyAutoencoderImpl(int64_t numeric_width, std::vector<uint32_t> buckets,
                                               const v1::AnomalyModelConfig& config, uint64_t seed)
    : numeric_width_(numeric_width), buckets_(std::move(buckets)), config_(WithDefaults(config)) {
  const absl::Status valid = CheckAnomalyAutoencoderArgs(numeric_width_, buckets_, config_);
  TORCH_CHECK(valid.ok(), "AnomalyAutoencoder: ", std::string(valid.message()));
  int64_t width = RegisterDeclarationInputs(*this, numeric_width_, buckets_,
                                            config_.embedding_dim(), &standardize_, &embeddings_);
  encoder_ = register_module("encoder", torch::nn::ModuleList());
  for (uint32_t units : config_.hidden_units()) {
    encoder_->push_back(torch::nn::Linear(width, units));
    width = units;
  }
  decoder_ = register_module("decoder", torch::nn::ModuleList());
  for (int i = config_.hidden_units_size() - 2; i >= 0; --i) {
    decoder_->push_back(torch::nn::Linear(width, config_.hidden_units(i)));
    width = config_.hidden_units(i);
  }
  if (numeric_width_ > 0) {
    numeric_head_ = register_module("numeric_head", torch::nn::Linear(width, numeric_width_));
  }
  categorical_heads_ = register_module("categorical_heads", torch::nn::ModuleList());
  for (uint32_t b : buckets_) categorical_heads_->push_back(torch::nn::Linear(width, b));
  ResetParameters(seed);
}

void AnomalyAutoencoderImpl::ResetParameters(uint64_t seed) {
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  torch::NoGradGuard no_grad;
  // The order of the draws is part of the model's definition: embeddings,
  // encoder, decoder, numeric head, categorical heads.
  InitEmbeddings(embeddings_, generator);
  InitLinears(encoder_, generator);
  InitLinears(decoder_, generator);
  if (numeric_head_) InitLinear(*numeric_head_, generator);
  InitLinears(categorical_heads_, generator);
  if (standardize_) standardize_->reset_running_stats();
}

bool AnomalyAutoencoderImpl::HasStandardization() const {
  return !standardize_ || models::HasStandardization(*standardize_);
}

void AnomalyAutoencoderImpl::SetStandardization(const torch::Tensor& mean,
                                                const torch::Tensor& variance) {
  if (standardize_) models::SetStandardization(*standardize_, mean, variance);
}

torch::Tensor AnomalyAutoencoderImpl::forward(const torch::Tensor& numeric,
                                              const torch::Tensor& categorical) {
  return FeatureErrors(numeric, categorical).sum(1);
}

torch::Tensor AnomalyAutoencoderImpl::FeatureErrors(const torch::Tensor& numeric,
                                                    const torch::Tensor& categorical) {
  const auto categorical_width = static_cast<int64_t>(buckets_.size());
  CheckDeclarationInputs("AnomalyAutoencoder", numeric, categorical, numeric_width_,
                         categorical_width);
  torch::Tensor z;  // standardized numerics: the numeric reconstruction target
  torch::Tensor x =
      EncodeDeclarationInputs(standardize_, embeddings_, numeric, categorical, &z, tape_);
  for (size_t i = 0; i < encoder_->size(); ++i) {
    x = ApplyLinear(encoder_, i, x, tape_);
    if (i + 1 < encoder_->size()) x = torch::relu(x);  // the bottleneck stays linear
  }
  for (size_t i = 0; i < decoder_->size(); ++i) {
    x = torch::relu(ApplyLinear(decoder_, i, x, tape_));
  }
  std::vector<torch::Tensor> parts;
  if (numeric_width_ > 0) {
    parts.push_back((ApplyLinear(*numeric_head_, x, tape_) - z).pow(2) /
                    static_cast<double>(numeric_width_));
  }
  namespace F = torch::nn::functional;
  const double categorical_scale =
      categorical_width > 0 ? config_.categorical_weight() / static_cast<double>(categorical_width)
                            : 0;
  for (int64_t j = 0; j < categorical_width; ++j) {
    parts.push_back(
        F::cross_entropy(ApplyLinear(categorical_heads_, static_cast<size_t>(j), x, tape_),
                         categorical.select(1, j),
                         F::CrossEntropyFuncOptions().reduction(torch::kNone))
            .unsqueeze(1) *
        categorical_scale);
  }
  return torch::cat(parts, 1);
}

}  // namespace fedcustoms::models
