#include "node/explain/declaration_explainer.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/data/declarations_csv.h"
#include "common/training/table_tensors.h"

namespace fedcustoms::node {
namespace {

// Rows explained per batch: integrated gradients hold rows x steps x width.
constexpr size_t kExplainBatch = 64;
// Distinct values of a numeric column tried as counterfactual candidates.
constexpr size_t kNumericCandidates = 256;
// Points scanned between the declaration's value and the nearest crossing
// candidate, and bisection steps after the scan.
constexpr int kScanPoints = 32;
constexpr int kBisections = 30;

const v1::ColumnSpec* FindColumn(const v1::DeclarationSchema& schema, const std::string& name) {
  for (const v1::ColumnSpec& c : schema.columns()) {
    if (c.name() == name && (c.role() == v1::NUMERIC || c.role() == v1::CATEGORICAL)) return &c;
  }
  return nullptr;
}

std::string FormatNumber(double x) { return absl::StrFormat("%.6g", x); }

}  // namespace

absl::StatusOr<DeclarationExplainer> DeclarationExplainer::Create(const PulledModel& model) {
  auto scorer = DeclarationScorer::Create(model);
  if (!scorer.ok()) return scorer.status();
  DeclarationExplainer explainer(*std::move(scorer));
  explainer.schema_ = model.spec.schema;
  for (v1::ColumnRole role : {v1::NUMERIC, v1::CATEGORICAL}) {
    for (const v1::ColumnSpec& c : model.spec.schema.columns()) {
      if (c.role() == role) explainer.feature_names_.push_back(c.name());
    }
  }
  if (models::RiskMlp* risk = explainer.scorer_.risk_model()) {
    // The model-only baseline: mean numerics (0 after standardization) and
    // each column's mean embedding.
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> parts;
    parts.push_back(torch::zeros({(*risk)->numeric_width()}));
    const auto params = (*risk)->named_parameters();
    for (size_t j = 0; j < (*risk)->buckets().size(); ++j) {
      parts.push_back(params[absl::StrCat("embeddings.", j, ".weight")].mean(0));
    }
    explainer.baseline_ = torch::cat(parts).contiguous();
  }
  return explainer;
}

const char* DeclarationExplainer::method() const {
  return kind() == v1::TASK_RISK ? "integrated_gradients" : "reconstruction_error";
}

absl::Status DeclarationExplainer::SetReference(const data::DeclarationTable& table,
                                                std::span<const int64_t> rows) {
  models::RiskMlp* risk = scorer_.risk_model();
  if (risk == nullptr) return absl::OkStatus();
  if (rows.empty()) return absl::InvalidArgumentError("explanation reference: no rows");
  if (absl::Status s = training::CheckRows(table, (*risk)->numeric_width(), (*risk)->buckets(),
                                           rows, /*need_labels=*/false);
      !s.ok()) {
    return s;
  }
  torch::NoGradGuard no_grad;
  (*risk)->eval();
  torch::Tensor sum = torch::zeros({(*risk)->encoded_width()}, torch::kFloat64);
  for (size_t start = 0; start < rows.size(); start += 4096) {
    const auto batch = rows.subspan(start, std::min<size_t>(4096, rows.size() - start));
    sum += (*risk)
               ->Encode(training::NumericTensor(table, batch),
                        training::CategoricalTensor(table, batch))
               .to(torch::kFloat64)
               .sum(0);
  }
  baseline_ = (sum / static_cast<double>(rows.size())).to(torch::kFloat32).contiguous();
  return absl::OkStatus();
}

double DeclarationExplainer::baseline_score() {
  models::RiskMlp* risk = scorer_.risk_model();
  if (risk == nullptr) return 0;
  torch::NoGradGuard no_grad;
  (*risk)->eval();
  return torch::sigmoid((*risk)->LogitsOfEncoded(baseline_.unsqueeze(0))).item<double>();
}

absl::StatusOr<std::vector<Explanation>> DeclarationExplainer::Explain(
    const data::DeclarationTable& table, std::span<const int64_t> rows) {
  models::RiskMlp* risk = scorer_.risk_model();
  models::AnomalyAutoencoder* anomaly = scorer_.anomaly_model();
  const int64_t numeric_width = risk ? (*risk)->numeric_width() : (*anomaly)->numeric_width();
  const std::vector<uint32_t>& buckets = risk ? (*risk)->buckets() : (*anomaly)->buckets();
  if (absl::Status s =
          training::CheckRows(table, numeric_width, buckets, rows, /*need_labels=*/false);
      !s.ok()) {
    return s;
  }
  const size_t features = feature_names_.size();
  std::vector<Explanation> out;
  out.reserve(rows.size());
  try {
    for (size_t start = 0; start < rows.size(); start += kExplainBatch) {
      const auto batch = rows.subspan(start, std::min(kExplainBatch, rows.size() - start));
      const torch::Tensor numeric = training::NumericTensor(table, batch);
      const torch::Tensor categorical = training::CategoricalTensor(table, batch);
      torch::Tensor per_feature, scores, gaps;
      double baseline = 0;
      if (risk) {
        torch::Tensor encoded;
        {
          torch::NoGradGuard no_grad;
          (*risk)->eval();
          encoded = (*risk)->Encode(numeric, categorical);
        }
        IntegratedGradientsResult ig = ComputeIntegratedGradients(*risk, encoded, baseline_);
        // Fold each categorical feature's embedding dimensions into its column.
        std::vector<torch::Tensor> columns;
        if (numeric_width > 0) columns.push_back(ig.attributions.narrow(1, 0, numeric_width));
        const int64_t dim = (*risk)->config().embedding_dim();
        for (size_t j = 0; j < buckets.size(); ++j) {
          columns.push_back(
              ig.attributions.narrow(1, numeric_width + static_cast<int64_t>(j) * dim, dim)
                  .sum(1, /*keepdim=*/true));
        }
        per_feature = torch::cat(columns, 1);
        scores = ig.scores;
        gaps = ig.completeness_gap;
        baseline = ig.baseline_score;
      } else {
        torch::NoGradGuard no_grad;
        (*anomaly)->eval();
        per_feature = (*anomaly)->FeatureErrors(numeric, categorical);
        scores = per_feature.sum(1);
        gaps = (per_feature.sum(1) - scores).abs();
      }
      per_feature = per_feature.contiguous();
      scores = scores.contiguous();
      gaps = gaps.contiguous();
      for (size_t i = 0; i < batch.size(); ++i) {
        Explanation e;
        e.score = scores[static_cast<int64_t>(i)].item<float>();
        e.baseline_score = static_cast<float>(baseline);
        e.completeness_gap = gaps[static_cast<int64_t>(i)].item<float>();
        const float* p = per_feature.data_ptr<float>() + i * features;
        e.contributions.assign(p, p + features);
        out.push_back(std::move(e));
      }
    }
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat("explanation failed in LibTorch: ", e.what_without_backtrace()));
  }
  return out;
}

std::vector<float> DeclarationExplainer::ScoreVariants(const data::DeclarationTable& table,
                                                       int64_t row, bool numeric, size_t slot,
                                                       std::span<const double> values) {
  const std::array<int64_t, 1> one = {row};
  const auto n = static_cast<int64_t>(values.size());
  torch::Tensor numerics = training::NumericTensor(table, one).repeat({n, 1});
  torch::Tensor categoricals = training::CategoricalTensor(table, one).repeat({n, 1});
  const torch::Tensor column =
      torch::from_blob(const_cast<double*>(values.data()), {n}, torch::kFloat64);
  const auto s = static_cast<int64_t>(slot);
  if (numeric) {
    numerics.select(1, s).copy_(column);
  } else {
    categoricals.select(1, s).copy_(column);
  }
  torch::NoGradGuard no_grad;
  torch::Tensor scores;
  if (models::RiskMlp* risk = scorer_.risk_model()) {
    (*risk)->eval();
    scores = torch::sigmoid((*risk)->forward(numerics, categoricals));
  } else {
    models::AnomalyAutoencoder* anomaly = scorer_.anomaly_model();
    (*anomaly)->eval();
    scores = (*anomaly)->forward(numerics, categoricals);
  }
  scores = scores.contiguous();
  return {scores.data_ptr<float>(), scores.data_ptr<float>() + n};
}

absl::StatusOr<Counterfactual> DeclarationExplainer::FindCounterfactual(
    const data::DeclarationTable& table, int64_t row, const std::string& feature, double threshold,
    const std::vector<std::pair<std::string, uint64_t>>& values) {
  const v1::ColumnSpec* spec = FindColumn(schema_, feature);
  if (spec == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "counterfactual: \"", feature,
        "\" is not a feature of the model (features: ", absl::StrJoin(feature_names_, ", "), ")"));
  }
  if (row < 0 || static_cast<size_t>(row) >= table.rows) {
    return absl::InvalidArgumentError(
        absl::StrCat("counterfactual: row ", row, " is not in the table (", table.rows, " rows)"));
  }
  const std::array<int64_t, 1> one = {row};
  auto current = scorer_.Score(table, one);
  if (!current.ok()) return current.status();
  Counterfactual cf;
  cf.feature = feature;
  const bool numeric = spec->role() == v1::NUMERIC;
  const auto& names = numeric ? table.numeric_names : table.categorical_names;
  const size_t slot =
      static_cast<size_t>(std::find(names.begin(), names.end(), feature) - names.begin());
  auto raw = [&](double model_value) {
    return spec->log1p() ? std::expm1(model_value) : model_value;
  };
  try {
    if (numeric) {
      const double v0 = table.numeric[row * table.numeric_width() + slot];
      cf.from = FormatNumber(raw(v0));
      if ((*current)[0] < threshold) {
        cf.note = "already below the threshold";
        return cf;
      }
      std::vector<double> column(table.rows);
      for (size_t r = 0; r < table.rows; ++r)
        column[r] = table.numeric[r * table.numeric_width() + slot];
      std::sort(column.begin(), column.end());
      column.erase(std::unique(column.begin(), column.end()), column.end());
      std::vector<double> candidates;
      if (column.size() <= kNumericCandidates) {
        candidates = column;
      } else {
        for (size_t k = 0; k < kNumericCandidates; ++k) {
          candidates.push_back(column[k * (column.size() - 1) / (kNumericCandidates - 1)]);
        }
      }
      const std::vector<float> scores = ScoreVariants(table, row, true, slot, candidates);
      std::optional<double> nearest;
      for (size_t k = 0; k < candidates.size(); ++k) {
        if (scores[k] >= threshold) continue;
        if (!nearest || std::abs(candidates[k] - v0) < std::abs(*nearest - v0)) {
          nearest = candidates[k];
        }
      }
      if (!nearest) {
        cf.note = absl::StrCat("no value of ", feature, " seen in the data (", column.size(),
                               " distinct) brings the score below ", FormatNumber(threshold));
        return cf;
      }
      // The first point from v0 towards the candidate that is below, then
      // bisection between it and the point before.
      std::vector<double> scan(kScanPoints);
      for (int k = 0; k < kScanPoints; ++k) scan[k] = v0 + (*nearest - v0) * (k + 1) / kScanPoints;
      const std::vector<float> scanned = ScoreVariants(table, row, true, slot, scan);
      double above = v0, below = *nearest;
      for (int k = 0; k < kScanPoints; ++k) {
        if (scanned[k] < threshold) {
          below = scan[k];
          above = k == 0 ? v0 : scan[k - 1];
          break;
        }
      }
      for (int k = 0; k < kBisections; ++k) {
        const std::array<double, 1> mid = {(above + below) / 2};
        if (ScoreVariants(table, row, true, slot, mid)[0] < threshold) {
          below = mid[0];
        } else {
          above = mid[0];
        }
      }
      const std::array<double, 1> final_value = {below};
      cf.found = true;
      cf.to = FormatNumber(raw(below));
      cf.score = ScoreVariants(table, row, true, slot, final_value)[0];
      cf.note = "nearest value below the threshold";
      return cf;
    }
    const int64_t bucket0 = table.categorical[row * table.categorical_width() + slot];
    const data::DeclarationTable::RawColumn* raw_column = table.raw_column(feature);
    cf.from = raw_column ? raw_column->values[row] : absl::StrCat("bucket ", bucket0);
    if ((*current)[0] < threshold) {
      cf.note = "already below the threshold";
      return cf;
    }
    std::vector<size_t> tried;
    std::vector<double> buckets;
    for (size_t k = 0; k < values.size(); ++k) {
      const uint32_t b = data::CategoricalBucket(feature, values[k].first, spec->prefix_length(),
                                                 spec->hash_buckets());
      if (b == bucket0) continue;
      tried.push_back(k);
      buckets.push_back(b);
    }
    if (tried.empty()) {
      cf.note = absl::StrCat("no other value of ", feature, " to try");
      return cf;
    }
    const std::vector<float> scores = ScoreVariants(table, row, false, slot, buckets);
    std::optional<size_t> best;
    for (size_t k = 0; k < tried.size(); ++k) {
      if (scores[k] >= threshold) continue;
      ++cf.crossing_values;
      const auto& candidate = values[tried[k]];
      if (!best || candidate.second > values[tried[*best]].second ||
          (candidate.second == values[tried[*best]].second &&
           candidate.first < values[tried[*best]].first)) {
        best = k;
      }
    }
    if (!best) {
      cf.note = absl::StrCat("none of the ", tried.size(), " other values of ", feature,
                             " brings the score below ", FormatNumber(threshold));
      return cf;
    }
    cf.found = true;
    cf.to = values[tried[*best]].first;
    cf.score = scores[*best];
    cf.note = absl::StrCat("most frequent of ", cf.crossing_values, " values below the threshold");
    return cf;
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat("counterfactual failed in LibTorch: ", e.what_without_backtrace()));
  }
}

}  // namespace fedcustoms::node
