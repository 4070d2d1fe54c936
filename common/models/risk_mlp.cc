#include "common/models/risk_mlp.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "common/models/declaration_features.h"

namespace fedcustoms::models {
namespace {

constexpr uint32_t kDefaultCrossBuckets = 16384;
constexpr uint32_t kMaxCrossBuckets = 1u << 24;
constexpr int kMaxCrosses = 64;
// As declaration_features' cap on embedding weights (1 GiB of float32).
constexpr uint64_t kMaxTableWeights = uint64_t{1} << 28;

}  // namespace

v1::RiskModelConfig WithDefaults(const v1::RiskModelConfig& config) {
  v1::RiskModelConfig c = config;
  if (c.kind() == v1::RiskModelConfig::LOGISTIC) {
    // One weight per bucket, no hidden layer (CheckRiskMlpArgs refuses the
    // MLP's settings rather than ignore them).
    if (c.embedding_dim() == 0) c.set_embedding_dim(1);
  } else if (c.hidden_units().empty()) {
    c.add_hidden_units(64);
    c.add_hidden_units(32);
  }
  if (c.embedding_dim() == 0) c.set_embedding_dim(8);
  if (c.kind() != v1::RiskModelConfig::LOGISTIC && c.dropout() == 0) c.set_dropout(0.1);
  for (v1::CategoricalCross& cross : *c.mutable_crosses()) {
    if (cross.hash_buckets() == 0) cross.set_hash_buckets(kDefaultCrossBuckets);
  }
  return c;
}

absl::Status CheckRiskMlpArgs(int64_t numeric_width, const std::vector<uint32_t>& buckets,
                              const v1::RiskModelConfig& config,
                              const std::vector<CrossColumns>& crosses) {
  const v1::RiskModelConfig c = WithDefaults(config);
  auto bad = [](auto&&... parts) { return absl::InvalidArgumentError(absl::StrCat(parts...)); };
  if (c.kind() != v1::RiskModelConfig::MLP && c.kind() != v1::RiskModelConfig::LOGISTIC) {
    return bad("kind ", static_cast<int>(c.kind()), " is not MLP or LOGISTIC");
  }
  if (c.kind() == v1::RiskModelConfig::LOGISTIC &&
      (!c.hidden_units().empty() || c.embedding_dim() != 1 || c.dropout() != 0)) {
    return bad("kind LOGISTIC has no hidden_units, embedding_dim or dropout to set (found ",
               c.hidden_units_size(), " hidden layers, embedding_dim ", c.embedding_dim(),
               ", dropout ", c.dropout(), ")");
  }
  if (absl::Status s = c.kind() == v1::RiskModelConfig::LOGISTIC
                           ? CheckDeclarationFeatures(numeric_width, buckets, c.embedding_dim())
                           : CheckDeclarationModel(numeric_width, buckets, c.embedding_dim(),
                                                   {c.hidden_units().data(),
                                                    static_cast<size_t>(c.hidden_units_size())});
      !s.ok()) {
    return s;
  }
  if (!std::isfinite(c.dropout()) || c.dropout() < 0 || c.dropout() >= 1) {
    return bad("dropout ", c.dropout(), " is not in [0, 1)");
  }
  if (c.crosses_size() > kMaxCrosses) {
    return bad("crosses has ", c.crosses_size(), " entries, at most ", kMaxCrosses);
  }
  if (crosses.size() != static_cast<size_t>(c.crosses_size())) {
    return bad("crosses: ", c.crosses_size(), " in the config but ", crosses.size(),
               " resolved to features");
  }
  const auto features = static_cast<int64_t>(buckets.size());
  // The crosses count against the embeddings' cap on weights.
  uint64_t weights = 0;
  for (uint32_t b : buckets) weights += uint64_t{b} * c.embedding_dim();
  for (const v1::CategoricalCross& cross : c.crosses()) weights += cross.hash_buckets();
  if (weights > kMaxTableWeights) {
    return bad("embeddings and crosses would hold ", weights, " weights, at most ",
               kMaxTableWeights);
  }
  for (size_t k = 0; k < crosses.size(); ++k) {
    const uint32_t n = c.crosses(static_cast<int>(k)).hash_buckets();
    if (n == 0 || n > kMaxCrossBuckets) {
      return bad("crosses[", k, "].hash_buckets ", n, " is not in 1..", kMaxCrossBuckets);
    }
    const CrossColumns& x = crosses[k];
    if (x.first < 0 || x.first >= features || x.second < 0 || x.second >= features ||
        x.first == x.second) {
      return bad("crosses[", k, "] must name two distinct categorical features of ", features,
                 ", got ", x.first, " and ", x.second);
    }
  }
  return absl::OkStatus();
}

RiskMlpImpl::RiskMlpImpl(int64_t numeric_width, std::vector<uint32_t> buckets,
                         const v1::RiskModelConfig& config, uint64_t seed,
                         std::vector<CrossColumns> crosses)
    : numeric_width_(numeric_width),
      buckets_(std::move(buckets)),
      config_(WithDefaults(config)),
      crosses_(std::move(crosses)),
      dropout_generator_(at::make_generator<at::CPUGeneratorImpl>(seed)) {
  const absl::Status valid = CheckRiskMlpArgs(numeric_width_, buckets_, config_, crosses_);
  TORCH_CHECK(valid.ok(), "RiskMlp: ", std::string(valid.message()));
  int64_t width = RegisterDeclarationInputs(*this, numeric_width_, buckets_,
                                            config_.embedding_dim(), &standardize_, &embeddings_);
  hidden_ = register_module("hidden", torch::nn::ModuleList());
  for (uint32_t units : config_.hidden_units()) {
    hidden_->push_back(torch::nn::Linear(width, units));
    width = units;
  }
  // LOGISTIC: the output layer weighs the numerics only; the one-wide
  // embeddings are added to the logit as they are.
  output_ = register_module("output", torch::nn::Linear(logistic() ? numeric_width_ : width, 1));
  cross_weights_ = register_module("crosses", torch::nn::ModuleList());
  for (const v1::CategoricalCross& cross : config_.crosses()) {
    cross_weights_->push_back(torch::nn::Embedding(cross.hash_buckets(), 1));
  }
  ResetParameters(seed);
}

void RiskMlpImpl::ResetParameters(uint64_t seed) {
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  torch::NoGradGuard no_grad;
  // The order of the draws is part of the model's definition: embeddings,
  // hidden layers, output.
  if (logistic()) {
    // A logistic regression starts at 0: no draw.
    for (const auto& embedding : *embeddings_) {
      embedding->as<torch::nn::EmbeddingImpl>()->weight.zero_();
    }
    output_->weight.zero_();
    output_->bias.zero_();
  } else {
    InitEmbeddings(embeddings_, generator);
    InitLinears(hidden_, generator);
    InitLinear(*output_, generator);
  }
  // Zero: no draw, so the MLP's initialization is the same with crosses.
  for (const auto& cross : *cross_weights_) {
    cross->as<torch::nn::EmbeddingImpl>()->weight.zero_();
  }
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
  torch::Tensor deep = EncodeDeclarationInputs(standardize_, embeddings_, numeric, categorical,
                                               /*standardized=*/nullptr, tape_);
  if (crosses_.empty()) return deep;
  std::vector<torch::Tensor> parts = {deep};
  for (size_t k = 0; k < crosses_.size(); ++k) {
    torch::nn::EmbeddingImpl& layer = cross_weights_->at<torch::nn::EmbeddingImpl>(k);
    const torch::Tensor ids = CrossIds(categorical, k);
    parts.push_back(tape_ ? tape_->Embedding(layer, ids) : layer.forward(ids));
  }
  return torch::cat(parts, 1);
}

// The bucket of a pair of ids (a, b), a < 2^24 and b < 2^24:
//   h = a * 0x9E3779B1 + b * 0x85EBCA77   (< 2^57: no int64 overflow)
//   h = h xor (h >> 29)
//   bucket = h mod hash_buckets
// Fixed: it is part of the model's definition, as the schema's hashing is.
torch::Tensor RiskMlpImpl::CrossIds(const torch::Tensor& categorical, size_t k) const {
  const CrossColumns& x = crosses_.at(k);
  const torch::Tensor a = categorical.select(1, x.first);
  const torch::Tensor b = categorical.select(1, x.second);
  torch::Tensor h = a * int64_t{0x9E3779B1} + b * int64_t{0x85EBCA77};
  h = torch::bitwise_xor(h, torch::bitwise_right_shift(h, 29));
  return torch::remainder(
      h, static_cast<int64_t>(config_.crosses(static_cast<int>(k)).hash_buckets()));
}

torch::Tensor RiskMlpImpl::LogitsOfEncoded(const torch::Tensor& encoded) {
  const int64_t network = logistic() ? numeric_width_ : deep_width();
  torch::Tensor x = encoded.size(1) == network ? encoded : encoded.narrow(1, 0, network);
  const double p = config_.dropout();
  for (size_t i = 0; i < hidden_->size(); ++i) {
    x = torch::relu(ApplyLinear(hidden_, i, x, tape_));
    if (is_training() && p > 0) {
      torch::Tensor keep = torch::empty_like(x).bernoulli_(1.0 - p, dropout_generator_);
      x = x * keep * (1.0 / (1.0 - p));
    }
  }
  torch::Tensor logits = ApplyLinear(*output_, x, tape_).squeeze(1);
  if (encoded.size(1) > network) {
    logits = logits + encoded.narrow(1, network, encoded.size(1) - network).sum(1);
  }
  return logits;
}

}  // namespace fedcustoms::models
