#include "analyst/model/declarations_scoring.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "analyst/explain/declaration_explainer.h"
#include "analyst/model/csv_field.h"
#include "analyst/model/declaration_scorer.h"
#include "analyst/model/pulled_model.h"
#include "common/data/declaration_schema.h"
#include "common/data/declarations_csv.h"
#include "common/io/atomic_file.h"
#include "common/metrics/selection_counts.h"

namespace fedcustoms::analyst {
namespace {

std::string Number(double x) { return absl::StrFormat("%.6g", x); }

std::string ModelName(const PulledModel& model) {
  return absl::StrCat(model.manifest.task, " v", model.manifest.version);
}

// The models a scoring run uses, checked against each other and the options.
struct ScoringModels {
  v1::DeclarationSchema schema;
  PulledModel model;
  std::optional<PulledModel> anomaly;  // beside a risk model, when asked for
};

absl::StatusOr<ScoringModels> LoadScoringModels(const ScoreFileOptions& options) {
  if (!(options.budget > 0 && options.budget <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("budget: expected a share in (0, 1], got ", options.budget));
  }
  if (options.explain < 0 || options.explain > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("explain: expected 0..64 features, got ", options.explain));
  }
  auto schema = data::LoadDeclarationSchema(options.schema_json);
  if (!schema.ok()) return schema.status();
  auto model = LoadPulledModel(options.model_dir, options.public_key, *schema);
  if (!model.ok()) return model.status();
  if (options.expected_kind && model->spec.kind != *options.expected_kind) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected ", options.expected_kind == v1::TASK_RISK ? "a risk" : "an anomaly",
                     " model: ", options.model_dir, " holds ", ModelName(*model)));
  }
  ScoringModels models{*std::move(schema), *std::move(model), std::nullopt};
  if (options.anomaly_model_dir.empty()) return models;
  if (models.model.spec.kind != v1::TASK_RISK) {
    return absl::InvalidArgumentError(absl::StrCat("an anomaly model goes beside a risk model; ",
                                                   options.model_dir, " holds ",
                                                   ModelName(models.model)));
  }
  auto loaded = LoadPulledModel(options.anomaly_model_dir, options.public_key, models.schema);
  if (!loaded.ok()) return loaded.status();
  if (loaded->spec.kind != v1::TASK_ANOMALY) {
    return absl::InvalidArgumentError(absl::StrCat("anomaly model ", options.anomaly_model_dir,
                                                   " holds ", ModelName(*loaded),
                                                   ", not an anomaly model"));
  }
  models.anomaly = *std::move(loaded);
  return models;
}

// Flags at the options' threshold, or the top budget share; sets *threshold
// to the threshold used (the lowest flagged score for a budget).
std::vector<bool> FlagRows(std::span<const float> scores, const ScoreFileOptions& options,
                           double* threshold) {
  std::vector<bool> flagged;
  if (options.threshold) {
    *threshold = *options.threshold;
    for (float s : scores) flagged.push_back(s >= *options.threshold);
    return flagged;
  }
  flagged = metrics::FlagTopShare(scores, options.budget);
  *threshold = std::numeric_limits<double>::infinity();
  for (size_t r = 0; r < scores.size(); ++r) {
    if (flagged[r]) *threshold = std::min<double>(*threshold, scores[r]);
  }
  return flagged;
}

std::string ScoresCsvHeader(bool risk, bool with_anomaly, int explain, bool counterfactual) {
  std::string out = "declaration_id";
  if (risk) out += ",risk_probability";
  if (!risk || with_anomaly) out += ",anomaly_score";
  out += ",flagged";
  for (int k = 1; k <= explain; ++k) {
    absl::StrAppend(&out, ",reason_", k, "_feature,reason_", k, "_contribution");
  }
  if (explain > 0) out += ",explanation_baseline,completeness_gap";
  if (counterfactual) {
    out += ",counterfactual_from,counterfactual_to,counterfactual_score,counterfactual_note";
  }
  out += '\n';
  return out;
}

// The `explain` largest contributions of `e` by magnitude (ties in feature
// order), then its baseline and completeness gap, as CSV fields.
void AppendReasons(const Explanation& e, const std::vector<std::string>& names, int explain,
                   std::string* out) {
  std::vector<size_t> order(names.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return std::abs(e.contributions[a]) > std::abs(e.contributions[b]);
  });
  for (int k = 0; k < explain; ++k) {
    if (static_cast<size_t>(k) < order.size()) {
      absl::StrAppend(out, ",", CsvField(names[order[k]]), ",", Number(e.contributions[order[k]]));
    } else {
      *out += ",,";
    }
  }
  absl::StrAppend(out, ",", Number(e.baseline_score), ",", Number(e.completeness_gap));
}

}  // namespace

absl::StatusOr<ScoreFileSummary> ScoreDeclarationsFile(const ScoreFileOptions& options) {
  absl::StatusOr<ScoringModels> models = LoadScoringModels(options);
  if (!models.ok()) return models.status();
  auto explainer = DeclarationExplainer::Create(models->model);
  if (!explainer.ok()) return explainer.status();

  data::ReadOptions read;
  if (!options.counterfactual.empty()) {
    // An unknown feature is refused before the file is read and scored.
    const auto& names = explainer->feature_names();
    if (std::find(names.begin(), names.end(), options.counterfactual) == names.end()) {
      return explainer->GatherCandidates({}, options.counterfactual).status();
    }
    read.raw_columns.push_back(options.counterfactual);
  }
  auto table = data::ReadDeclarationsCsv(options.data_csv, models->schema, read);
  if (!table.ok()) return table.status();
  std::vector<int64_t> rows(table->rows);
  std::iota(rows.begin(), rows.end(), 0);

  ScoreFileSummary summary;
  summary.rows = table->rows;
  summary.model = ModelName(models->model);
  auto scores = explainer->scorer().Score(*table, rows);
  if (!scores.ok()) return scores.status();
  std::vector<float> anomaly_scores;
  if (models->anomaly) {
    auto scorer = DeclarationScorer::Create(*models->anomaly);
    if (!scorer.ok()) return scorer.status();
    auto s = scorer->Score(*table, rows);
    if (!s.ok()) return s.status();
    anomaly_scores = *std::move(s);
  }
  const std::vector<bool> flagged = FlagRows(*scores, options, &summary.threshold);
  summary.flagged = static_cast<size_t>(std::count(flagged.begin(), flagged.end(), true));

  std::vector<Explanation> explanations;
  if (options.explain > 0) {
    if (absl::Status s = explainer->SetReference(*table, rows); !s.ok()) return s;
    auto e = explainer->Explain(*table, rows);
    if (!e.ok()) return e.status();
    explanations = *std::move(e);
    summary.method = explainer->method();
    summary.baseline_score = explainer->baseline_score();
  }
  std::optional<CounterfactualCandidates> candidates;
  if (!options.counterfactual.empty()) {
    auto gathered = explainer->GatherCandidates(*table, options.counterfactual);
    if (!gathered.ok()) return gathered.status();
    candidates = *std::move(gathered);
  }

  const bool risk = models->model.spec.kind == v1::TASK_RISK;
  std::string out = ScoresCsvHeader(risk, models->anomaly.has_value(), options.explain,
                                    !options.counterfactual.empty());
  for (size_t r = 0; r < rows.size(); ++r) {
    out += CsvField(table->ids.empty() ? absl::StrCat(r + 1) : table->ids[r]);
    absl::StrAppend(&out, ",", Number((*scores)[r]));
    if (risk && models->anomaly) absl::StrAppend(&out, ",", Number(anomaly_scores[r]));
    absl::StrAppend(&out, ",", flagged[r] ? 1 : 0);
    if (options.explain > 0) {
      AppendReasons(explanations[r], explainer->feature_names(), options.explain, &out);
      summary.max_completeness_gap =
          std::max<double>(summary.max_completeness_gap, explanations[r].completeness_gap);
    }
    if (!options.counterfactual.empty()) {
      if (flagged[r]) {
        auto cf = explainer->FindCounterfactual(*table, static_cast<int64_t>(r), summary.threshold,
                                                *candidates);
        if (!cf.ok()) return cf.status();
        if (cf->found) ++summary.counterfactuals_found;
        absl::StrAppend(&out, ",", CsvField(cf->from), ",", CsvField(cf->to), ",",
                        cf->found ? Number(cf->score) : "", ",", CsvField(cf->note));
      } else {
        out += ",,,,";
      }
    }
    out += '\n';
  }
  if (absl::Status s = io::WriteFileAtomically(options.out_csv, out); !s.ok()) return s;
  return summary;
}

}  // namespace fedcustoms::analyst
