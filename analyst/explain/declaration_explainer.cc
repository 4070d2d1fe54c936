#include "analyst/explain/declaration_explainer.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/data/declarations_csv.h"
#include "common/training/table_tensors.h"
#include "common/trees/feature_bins.h"

namespace fedcustoms::analyst {
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

std::string FormatNumber(double x, int digits = 6) { return absl::StrFormat("%.*g", digits, x); }

// `x` to `digits` significant digits, rounded down (direction < 0) or up.
double RoundSignificant(double x, int digits, double direction) {
  if (x == 0 || !std::isfinite(x)) return x;
  const double scale = std::pow(10.0, digits - 1 - std::floor(std::log10(std::abs(x))));
  return (direction < 0 ? std::floor(x * scale) : std::ceil(x * scale)) / scale;
}

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
    try {
      torch::NoGradGuard no_grad;
      std::vector<torch::Tensor> parts;
      parts.push_back(torch::zeros({(*risk)->numeric_width()}));
      const auto params = (*risk)->named_parameters();
      for (size_t j = 0; j < (*risk)->buckets().size(); ++j) {
        parts.push_back(params[absl::StrCat("embeddings.", j, ".weight")].mean(0));
      }
      for (size_t k = 0; k < (*risk)->crosses().size(); ++k) {
        parts.push_back(params[absl::StrCat("crosses.", k, ".weight")].mean(0));
      }
      explainer.baseline_ = torch::cat(parts).contiguous();
    } catch (const c10::Error& e) {
      return absl::InternalError(
          absl::StrCat("explanation baseline: ", e.what_without_backtrace()));
    }
  }
  return explainer;
}

const char* DeclarationExplainer::method() const {
  if (trees() != nullptr) return "tree_path";
  return kind() == v1::TASK_RISK ? "integrated_gradients" : "reconstruction_error";
}

absl::StatusOr<std::vector<Explanation>> DeclarationExplainer::ExplainTrees(
    const data::DeclarationTable& table, std::span<const int64_t> rows) {
  // Scores first: they check the rows against the model.
  absl::StatusOr<std::vector<float>> scores = scorer_.Score(table, rows);
  if (!scores.ok()) return scores.status();
  const trees::TreeEnsemble& model = *trees();
  const std::vector<uint16_t> binned = trees::BinRows(model.bins, table, rows);
  const size_t features = model.bins.features();
  std::vector<Explanation> out;
  out.reserve(rows.size());
  std::vector<double> logit_parts;
  for (size_t i = 0; i < rows.size(); ++i) {
    double bias = 0;
    model.Contributions(&binned[i * features], &logit_parts, &bias);
    double logit = bias;
    for (double c : logit_parts) logit += c;
    const double score = 1 / (1 + std::exp(-logit));
    const double baseline = 1 / (1 + std::exp(-bias));
    // The contributions add up in log-odds; each keeps its share of the
    // change of probability, so they add up to score - baseline exactly.
    const double change = logit - bias;
    const double scale =
        std::abs(change) > 1e-12 ? (score - baseline) / change : baseline * (1 - baseline);
    Explanation e;
    e.score = static_cast<float>(score);
    e.baseline_score = static_cast<float>(baseline);
    double sum = 0;
    for (double c : logit_parts) {
      e.contributions.push_back(static_cast<float>(c * scale));
      sum += e.contributions.back();
    }
    e.completeness_gap = static_cast<float>(std::abs(sum - (score - baseline)));
    out.push_back(std::move(e));
  }
  return out;
}

absl::Status DeclarationExplainer::SetReference(const data::DeclarationTable& table,
                                                std::span<const int64_t> rows) {
  models::RiskMlp* risk = scorer_.risk_model();
  if (risk == nullptr) return absl::OkStatus();  // trees and anomaly: no reference
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
  if (const trees::TreeEnsemble* model = trees()) {
    // What every row starts from on its tree paths: the base score and the
    // roots' values.
    double bias = model->base_score;
    for (const trees::Tree& t : model->trees) bias += t.nodes.empty() ? 0 : t.nodes[0].value;
    return 1 / (1 + std::exp(-bias));
  }
  models::RiskMlp* risk = scorer_.risk_model();
  if (risk == nullptr) return 0;
  torch::NoGradGuard no_grad;
  (*risk)->eval();
  return torch::sigmoid((*risk)->LogitsOfEncoded(baseline_.unsqueeze(0))).item<double>();
}

absl::StatusOr<std::vector<Explanation>> DeclarationExplainer::Explain(
    const data::DeclarationTable& table, std::span<const int64_t> rows) {
  if (trees() != nullptr) return ExplainTrees(table, rows);
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
        // A cross's weight is one column of the encoded input; its
        // attribution is split evenly between its two categorical columns,
        // so the contributions still sum to the score's change.
        const int64_t deep = (*risk)->deep_width();
        for (size_t k = 0; k < (*risk)->crosses().size(); ++k) {
          const torch::Tensor half = ig.attributions.select(1, deep + static_cast<int64_t>(k)) / 2;
          const models::CrossColumns& x = (*risk)->crosses()[k];
          per_feature.select(1, numeric_width + x.first).add_(half);
          per_feature.select(1, numeric_width + x.second).add_(half);
        }
        scores = ig.scores;
        gaps = ig.completeness_gap;
        baseline = ig.baseline_score;
      } else {
        torch::NoGradGuard no_grad;
        (*anomaly)->eval();
        per_feature = (*anomaly)->FeatureErrors(numeric, categorical);
        // forward() is this very sum: the split is exact by construction.
        scores = per_feature.sum(1);
        gaps = torch::zeros_like(scores);
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
  if (const trees::TreeEnsemble* model = trees()) {
    // Copies of the row in a small table of their own, binned as any row.
    data::DeclarationTable copies;
    copies.rows = values.size();
    copies.numeric_names = table.numeric_names;
    copies.categorical_names = table.categorical_names;
    copies.buckets = table.buckets;
    const size_t nw = table.numeric_width(), cw = table.categorical_width();
    const auto r = static_cast<size_t>(row);
    std::vector<int64_t> indexes;
    for (size_t i = 0; i < values.size(); ++i) {
      copies.numeric.insert(copies.numeric.end(), table.numeric.begin() + r * nw,
                            table.numeric.begin() + (r + 1) * nw);
      copies.categorical.insert(copies.categorical.end(), table.categorical.begin() + r * cw,
                                table.categorical.begin() + (r + 1) * cw);
      if (numeric) {
        copies.numeric[i * nw + slot] = static_cast<float>(values[i]);
      } else {
        copies.categorical[i * cw + slot] = static_cast<int64_t>(values[i]);
      }
      indexes.push_back(static_cast<int64_t>(i));
    }
    return trees::PredictProbabilities(*model, copies, indexes);
  }
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

absl::StatusOr<const v1::ColumnSpec*> DeclarationExplainer::FeatureColumn(
    const std::string& feature) const {
  const v1::ColumnSpec* spec = FindColumn(schema_, feature);
  if (spec == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "counterfactual: \"", feature,
        "\" is not a feature of the model (features: ", absl::StrJoin(feature_names_, ", "), ")"));
  }
  return spec;
}

absl::StatusOr<CounterfactualCandidates> DeclarationExplainer::GatherCandidates(
    const data::DeclarationTable& table, const std::string& feature) const {
  auto spec = FeatureColumn(feature);
  if (!spec.ok()) return spec.status();
  CounterfactualCandidates c;
  c.feature = feature;
  c.numeric = (*spec)->role() == v1::NUMERIC;
  if (c.numeric) {
    const auto& names = table.numeric_names;
    const auto slot =
        static_cast<size_t>(std::find(names.begin(), names.end(), feature) - names.begin());
    if (slot == names.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("counterfactual: the table has no numeric column \"", feature, "\""));
    }
    std::vector<double> column(table.rows);
    for (size_t r = 0; r < table.rows; ++r) {
      column[r] = table.numeric[r * table.numeric_width() + slot];
    }
    std::sort(column.begin(), column.end());
    column.erase(std::unique(column.begin(), column.end()), column.end());
    if (column.size() <= kNumericCandidates) {
      c.numeric_values = std::move(column);
    } else {
      for (size_t k = 0; k < kNumericCandidates; ++k) {
        c.numeric_values.push_back(column[k * (column.size() - 1) / (kNumericCandidates - 1)]);
      }
    }
    return c;
  }
  const data::DeclarationTable::RawColumn* raw = table.raw_column(feature);
  if (raw == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("counterfactual: the table was read without the raw values of \"", feature,
                     "\" (data::ReadOptions::raw_columns)"));
  }
  std::map<std::string, uint64_t> counts;
  for (const std::string& v : raw->values) ++counts[v];
  c.categorical_values.assign(counts.begin(), counts.end());
  return c;
}

absl::StatusOr<Counterfactual> DeclarationExplainer::FindCounterfactual(
    const data::DeclarationTable& table, int64_t row, double threshold,
    const CounterfactualCandidates& candidates) {
  const std::string& feature = candidates.feature;
  auto found_spec = FeatureColumn(feature);
  if (!found_spec.ok()) return found_spec.status();
  const v1::ColumnSpec* spec = *found_spec;
  const bool numeric = spec->role() == v1::NUMERIC;
  if (numeric != candidates.numeric) {
    return absl::InvalidArgumentError(
        absl::StrCat("counterfactual: candidates for \"", feature, "\" are ",
                     candidates.numeric ? "numeric" : "categorical", " but the feature is not"));
  }
  if (row < 0 || static_cast<size_t>(row) >= table.rows) {
    return absl::InvalidArgumentError(
        absl::StrCat("counterfactual: row ", row, " is not in the table (", table.rows, " rows)"));
  }
  const auto& names = numeric ? table.numeric_names : table.categorical_names;
  const auto slot =
      static_cast<size_t>(std::find(names.begin(), names.end(), feature) - names.begin());
  if (slot == names.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("counterfactual: the table has no column \"", feature, "\""));
  }
  const std::array<int64_t, 1> one = {row};
  auto current = scorer_.Score(table, one);
  if (!current.ok()) return current.status();
  Counterfactual cf;
  cf.feature = feature;
  // The CSV reader's transform (declarations_csv.h) and its inverse.
  auto to_model = [&](double raw_value) {
    return spec->log1p()
               ? static_cast<double>(static_cast<float>(std::log1p(std::max(raw_value, 0.0))))
               : static_cast<double>(static_cast<float>(raw_value));
  };
  auto to_raw = [&](double model_value) {
    return spec->log1p() ? std::expm1(model_value) : model_value;
  };
  try {
    if (numeric) {
      const double v0 = table.numeric[row * table.numeric_width() + slot];
      cf.from = FormatNumber(to_raw(v0));
      if ((*current)[0] < threshold) {
        cf.note = "already below the threshold";
        return cf;
      }
      const std::vector<double>& tried = candidates.numeric_values;
      const std::vector<float> scores = ScoreVariants(table, row, true, slot, tried);
      std::optional<double> nearest;
      for (size_t k = 0; k < tried.size(); ++k) {
        if (scores[k] >= threshold) continue;
        if (!nearest || std::abs(tried[k] - v0) < std::abs(*nearest - v0)) nearest = tried[k];
      }
      if (!nearest) {
        cf.note = absl::StrCat("no value of ", feature, " seen in the data (", tried.size(),
                               " tried) brings the score below ", FormatNumber(threshold));
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
      // What an officer reads must itself be below: the shortest decimal,
      // rounded away from the declared value, that still crosses once read
      // back the way the CSV reader reads it.
      const double target = to_raw(below);
      const double direction = target < to_raw(v0) ? -1 : 1;
      for (int digits = 3; digits <= 17; ++digits) {
        const double shown = RoundSignificant(target, digits, direction);
        const std::string text = FormatNumber(shown, digits);
        const std::array<double, 1> value = {to_model(std::stod(text))};
        const float score = ScoreVariants(table, row, true, slot, value)[0];
        if (score < threshold) {
          cf.found = true;
          cf.to = text;
          cf.score = score;
          cf.note = "nearest value below the threshold";
          return cf;
        }
      }
      cf.note = "the crossing is closer than a decimal number can show";
      return cf;
    }
    const int64_t bucket0 = table.categorical[row * table.categorical_width() + slot];
    const data::DeclarationTable::RawColumn* raw_column = table.raw_column(feature);
    cf.from = raw_column ? raw_column->values[row] : absl::StrCat("bucket ", bucket0);
    if ((*current)[0] < threshold) {
      cf.note = "already below the threshold";
      return cf;
    }
    // Values the model cannot tell apart (same bucket, e.g. HS codes cut to
    // their prefix) are one candidate: counts add up, the most frequent value
    // speaks for it.
    struct Bucket {
      uint64_t count = 0;
      size_t values = 0;
      size_t best = 0;  // index in candidates.categorical_values
    };
    std::map<uint32_t, Bucket> buckets;
    const auto& values = candidates.categorical_values;
    for (size_t k = 0; k < values.size(); ++k) {
      const uint32_t b = data::CategoricalBucket(feature, values[k].first, spec->prefix_length(),
                                                 spec->hash_buckets());
      if (b == bucket0) continue;
      Bucket& bucket = buckets[b];
      if (bucket.values == 0 || values[k].second > values[bucket.best].second) bucket.best = k;
      bucket.count += values[k].second;
      ++bucket.values;
    }
    if (buckets.empty()) {
      cf.note = absl::StrCat("no other value of ", feature, " to try");
      return cf;
    }
    std::vector<double> ids;
    for (const auto& [b, bucket] : buckets) ids.push_back(b);
    const std::vector<float> scores = ScoreVariants(table, row, false, slot, ids);
    const Bucket* best = nullptr;
    float best_score = 0;
    size_t k = 0;
    for (const auto& [b, bucket] : buckets) {
      const float score = scores[k++];
      if (score >= threshold) continue;
      cf.crossing_values += bucket.values;
      if (best == nullptr || bucket.count > best->count ||
          (bucket.count == best->count && values[bucket.best].first < values[best->best].first)) {
        best = &bucket;
        best_score = score;
      }
    }
    if (best == nullptr) {
      cf.note = absl::StrCat("none of the ", values.size(), " other values of ", feature,
                             " brings the score below ", FormatNumber(threshold));
      return cf;
    }
    cf.found = true;
    cf.to = values[best->best].first;
    cf.score = best_score;
    cf.note = absl::StrCat("most frequent of ", cf.crossing_values, " values below the threshold");
    if (spec->prefix_length() > 0) {
      absl::StrAppend(&cf.note, "; the model reads only the first ", spec->prefix_length(),
                      " characters");
    }
    return cf;
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat("counterfactual failed in LibTorch: ", e.what_without_backtrace()));
  }
}

}  // namespace fedcustoms::analyst
