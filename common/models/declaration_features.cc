#include "common/models/declaration_features.h"

#include <torch/torch.h>

#include <cmath>

#include "absl/strings/str_cat.h"

namespace fedcustoms::models {
namespace {

constexpr int64_t kMaxNumeric = 4096;
constexpr size_t kMaxCategorical = 256;
constexpr uint32_t kMaxBuckets = uint32_t{1} << 24;
constexpr uint64_t kMaxEmbeddingWeights = uint64_t{1} << 28;
constexpr uint32_t kMaxEmbeddingDim = 512;
constexpr size_t kMaxHiddenLayers = 8;
constexpr uint32_t kMaxHiddenUnits = 8192;

}  // namespace

absl::Status CheckDeclarationFeatures(int64_t numeric_width, const std::vector<uint32_t>& buckets,
                                      uint32_t embedding_dim) {
  auto bad = [](auto&&... parts) { return absl::InvalidArgumentError(absl::StrCat(parts...)); };
  if (numeric_width < 0 || numeric_width > kMaxNumeric) {
    return bad("numeric width ", numeric_width, " is not in 0..", kMaxNumeric);
  }
  if (buckets.size() > kMaxCategorical) {
    return bad(buckets.size(), " categorical features, at most ", kMaxCategorical);
  }
  if (numeric_width == 0 && buckets.empty()) return bad("the model needs at least one feature");
  if (embedding_dim == 0 || embedding_dim > kMaxEmbeddingDim) {
    return bad("embedding_dim ", embedding_dim, " is not in 1..", kMaxEmbeddingDim);
  }
  uint64_t embedding_weights = 0;
  for (size_t j = 0; j < buckets.size(); ++j) {
    if (buckets[j] == 0 || buckets[j] > kMaxBuckets) {
      return bad("buckets[", j, "] = ", buckets[j], " is not in 1..", kMaxBuckets);
    }
    embedding_weights += uint64_t{buckets[j]} * embedding_dim;
  }
  if (embedding_weights > kMaxEmbeddingWeights) {
    return bad("embeddings would hold ", embedding_weights, " weights, at most ",
               kMaxEmbeddingWeights);
  }
  return absl::OkStatus();
}

absl::Status CheckHiddenUnits(std::span<const uint32_t> hidden_units) {
  if (hidden_units.empty() || hidden_units.size() > kMaxHiddenLayers) {
    return absl::InvalidArgumentError(absl::StrCat("hidden_units has ", hidden_units.size(),
                                                   " layers, not 1..", kMaxHiddenLayers));
  }
  for (size_t i = 0; i < hidden_units.size(); ++i) {
    if (hidden_units[i] == 0 || hidden_units[i] > kMaxHiddenUnits) {
      return absl::InvalidArgumentError(absl::StrCat("hidden_units[", i, "] = ", hidden_units[i],
                                                     " is not in 1..", kMaxHiddenUnits));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckDeclarationModel(int64_t numeric_width, const std::vector<uint32_t>& buckets,
                                   uint32_t embedding_dim, std::span<const uint32_t> hidden_units) {
  if (absl::Status s = CheckDeclarationFeatures(numeric_width, buckets, embedding_dim); !s.ok()) {
    return s;
  }
  return CheckHiddenUnits(hidden_units);
}

torch::nn::BatchNorm1d MakeStandardization(int64_t width) {
  return torch::nn::BatchNorm1d(
      torch::nn::BatchNorm1dOptions(width).affine(false).momentum(c10::nullopt));
}

torch::Tensor Standardize(torch::nn::BatchNorm1dImpl& standardize, const torch::Tensor& numeric) {
  return (numeric - standardize.running_mean) /
         torch::sqrt(standardize.running_var + standardize.options.eps());
}

bool HasStandardization(const torch::nn::BatchNorm1dImpl& standardize) {
  torch::NoGradGuard no_grad;
  return !(torch::all(standardize.running_mean == 0).item<bool>() &&
           torch::all(standardize.running_var == 1).item<bool>());
}

void SetStandardization(torch::nn::BatchNorm1dImpl& standardize, const torch::Tensor& mean,
                        const torch::Tensor& variance) {
  TORCH_CHECK(mean.sizes() == standardize.running_mean.sizes() &&
                  variance.sizes() == standardize.running_var.sizes(),
              "standardization statistics must have ", standardize.running_mean.size(0), " values");
  torch::NoGradGuard no_grad;
  standardize.running_mean.copy_(mean);
  standardize.running_var.copy_(variance);
}

void CheckDeclarationInputs(std::string_view model, const torch::Tensor& numeric,
                            const torch::Tensor& categorical, int64_t numeric_width,
                            int64_t categorical_width) {
  TORCH_CHECK(numeric.dim() == 2 && numeric.size(1) == numeric_width, model,
              ": numeric input must be [B, ", numeric_width, "], got ", numeric.sizes());
  TORCH_CHECK(categorical.dim() == 2 && categorical.size(1) == categorical_width, model,
              ": categorical input must be [B, ", categorical_width, "], got ",
              categorical.sizes());
  TORCH_CHECK(numeric.size(0) == categorical.size(0), model,
              ": batch sizes differ: ", numeric.size(0), " numeric rows, ", categorical.size(0),
              " categorical rows");
  TORCH_CHECK(numeric.scalar_type() == torch::kFloat32, model, ": numeric input must be float32");
  TORCH_CHECK(categorical.scalar_type() == torch::kInt64, model,
              ": categorical input must be int64");
}

int64_t RegisterDeclarationInputs(torch::nn::Module& module, int64_t numeric_width,
                                  const std::vector<uint32_t>& buckets, int64_t embedding_dim,
                                  torch::nn::BatchNorm1d* standardize,
                                  torch::nn::ModuleList* embeddings) {
  if (numeric_width > 0) {
    *standardize = module.register_module("standardize", MakeStandardization(numeric_width));
  }
  *embeddings = module.register_module("embeddings", torch::nn::ModuleList());
  for (uint32_t b : buckets) (*embeddings)->push_back(torch::nn::Embedding(b, embedding_dim));
  return numeric_width + static_cast<int64_t>(buckets.size()) * embedding_dim;
}

torch::Tensor EncodeDeclarationInputs(torch::nn::BatchNorm1d& standardize,
                                      torch::nn::ModuleList& embeddings,
                                      const torch::Tensor& numeric,
                                      const torch::Tensor& categorical, torch::Tensor* standardized,
                                      privacy::PerExampleGradients* tape) {
  std::vector<torch::Tensor> parts;
  parts.reserve(1 + embeddings->size());
  if (standardize) {
    parts.push_back(Standardize(*standardize, numeric));
    if (standardized) *standardized = parts.back();
  }
  for (size_t j = 0; j < embeddings->size(); ++j) {
    auto& embedding = embeddings->at<torch::nn::EmbeddingImpl>(j);
    const torch::Tensor ids = categorical.select(1, static_cast<int64_t>(j));
    parts.push_back(tape ? tape->Embedding(embedding, ids) : embedding.forward(ids));
  }
  return torch::cat(parts, /*dim=*/1);
}

torch::Tensor ApplyLinear(torch::nn::ModuleList& layers, size_t i, const torch::Tensor& x,
                          privacy::PerExampleGradients* tape) {
  return ApplyLinear(layers->at<torch::nn::LinearImpl>(i), x, tape);
}

torch::Tensor ApplyLinear(torch::nn::LinearImpl& layer, const torch::Tensor& x,
                          privacy::PerExampleGradients* tape) {
  return tape ? tape->Linear(layer, x) : layer.forward(x);
}

void InitLinear(torch::nn::LinearImpl& linear, at::Generator& generator) {
  torch::NoGradGuard no_grad;
  const double bound = 1.0 / std::sqrt(static_cast<double>(linear.weight.size(1)));
  linear.weight.uniform_(-bound, bound, generator);
  linear.bias.uniform_(-bound, bound, generator);
}

void InitLinears(torch::nn::ModuleList& layers, at::Generator& generator) {
  for (size_t i = 0; i < layers->size(); ++i) {
    InitLinear(layers->at<torch::nn::LinearImpl>(i), generator);
  }
}

void InitEmbeddings(torch::nn::ModuleList& embeddings, at::Generator& generator) {
  torch::NoGradGuard no_grad;
  for (size_t j = 0; j < embeddings->size(); ++j) {
    embeddings->at<torch::nn::EmbeddingImpl>(j).weight.normal_(0.0, 1.0, generator);
  }
}

}  // namespace fedcustoms::models
