#include "analyst/model/declarations_scoring.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "analyst/explain/declaration_explainer.h"
#include "analyst/model/csv_field.h"
#include "analyst/model/declaration_scorer.h"
#include "analyst/model/pulled_model.h"
#include "analyst/report/group_report.h"
#include "common/crypto/atomic_file.h"
#include "common/data/declaration_schema.h"
#include "common/data/declarations_csv.h"

namespace fedcustoms::analyst {
namespace {

std::string Number(double x) { return absl::StrFormat("%.6g", x); }

std::string ModelName(const PulledModel& model) {
  return absl::StrCat(model.manifest.task, " v", model.manifest.version);
}

}  // namespace

absl::StatusOr<ScoreFileSummary> ScoreDeclarationsFile(const ScoreFileOptions& options) {
  if (!(options.budget > 0 && options.budget <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--budget: expected a share in (0, 1], got ", options.budget));
  }
  if (options.explain < 0 || options.explain > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("--explain: expected 0..64 features, got ", options.explain));
  }
  auto schema = data::LoadDeclarationSchema(options.schema_json);
  if (!schema.ok()) return schema.status();
  auto model = LoadPulledModel(options.model_dir, options.public_key, *schema);
  if (!model.ok()) return model.status();
  if (options.expected_kind && model->spec.kind != *options.expected_kind) {
    return absl::InvalidArgumentError(
        absl::StrCat("--task ", options.expected_kind == v1::TASK_RISK ? "risk" : "anomaly", ": ",
                     options.model_dir, " holds ", ModelName(*model)));
  }
  std::optional<PulledModel> anomaly_model;
  if (!options.anomaly_model_dir.empty() && model->spec.kind != v1::TASK_RISK) {
    return absl::InvalidArgumentError(absl::StrCat("--anomaly-model goes beside a risk model; ",
                                                   options.model_dir, " holds ",
                                                   ModelName(*model)));
  }
  if (!options.anomaly_model_dir.empty()) {
    auto loaded = LoadPulledModel(options.anomaly_model_dir, options.public_key, *schema);
    if (!loaded.ok()) return loaded.status();
    if (loaded->spec.kind != v1::TASK_ANOMALY) {
      return absl::InvalidArgumentError(absl::StrCat("--anomaly-model: ", options.anomaly_model_dir,
                                                     " holds ", ModelName(*loaded),
                                                     ", not an anomaly model"));
    }
    anomaly_model = *std::move(loaded);
  }
  auto explainer = DeclarationExplainer::Create(*model);
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
  auto table = data::ReadDeclarationsCsv(options.data_csv, *schema, read);
  if (!table.ok()) return table.status();
  std::vector<int64_t> rows(table->rows);
  std::iota(rows.begin(), rows.end(), 0);

  ScoreFileSummary summary;
  summary.rows = table->rows;
  summary.model = ModelName(*model);
  auto scores = explainer->scorer().Score(*table, rows);
  if (!scores.ok()) return scores.status();
  std::vector<float> anomaly_scores;
  if (anomaly_model) {
    auto scorer = DeclarationScorer::Create(*anomaly_model);
    if (!scorer.ok()) return scorer.status();
    auto s = scorer->Score(*table, rows);
    if (!s.ok()) return s.status();
    anomaly_scores = *std::move(s);
  }

  std::vector<bool> flagged;
  if (options.threshold) {
    summary.threshold = *options.threshold;
    for (float s : *scores) flagged.push_back(s >= *options.threshold);
  } else {
    flagged = report::FlagTopShare(*scores, options.budget);
    summary.threshold = std::numeric_limits<double>::infinity();
    for (size_t r = 0; r < rows.size(); ++r) {
      if (flagged[r]) summary.threshold = std::min<double>(summary.threshold, (*scores)[r]);
    }
  }
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

  const bool risk = model->spec.kind == v1::TASK_RISK;
  std::string out = "declaration_id";
  if (risk) out += ",risk_probability";
  if (!risk || anomaly_model) out += ",anomaly_score";
  out += ",flagged";
  for (int k = 1; k <= options.explain; ++k) {
    absl::StrAppend(&out, ",reason_", k, "_feature,reason_", k, "_contribution");
  }
  if (options.explain > 0) out += ",explanation_baseline,completeness_gap";
  if (!options.counterfactual.empty()) {
    out += ",counterfactual_from,counterfactual_to,counterfactual_score,counterfactual_note";
  }
  out += '\n';
  const std::vector<std::string>& names = explainer->feature_names();
  std::vector<size_t> order(names.size());
  for (size_t r = 0; r < rows.size(); ++r) {
    out += CsvField(table->ids.empty() ? absl::StrCat(r + 1) : table->ids[r]);
    absl::StrAppend(&out, ",", Number((*scores)[r]));
    if (risk && anomaly_model) absl::StrAppend(&out, ",", Number(anomaly_scores[r]));
    absl::StrAppend(&out, ",", flagged[r] ? 1 : 0);
    if (options.explain > 0) {
      const Explanation& e = explanations[r];
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        return std::abs(e.contributions[a]) > std::abs(e.contributions[b]);
      });
      for (int k = 0; k < options.explain; ++k) {
        if (static_cast<size_t>(k) < order.size()) {
          absl::StrAppend(&out, ",", CsvField(names[order[k]]), ",",
                          Number(e.contributions[order[k]]));
        } else {
          out += ",,";
        }
      }
      absl::StrAppend(&out, ",", Number(e.baseline_score), ",", Number(e.completeness_gap));
      summary.max_completeness_gap =
          std::max<double>(summary.max_completeness_gap, e.completeness_gap);
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
  if (absl::Status s = crypto::WriteFileAtomically(options.out_csv, out); !s.ok()) return s;
  return summary;
}

}  // namespace fedcustoms::analyst
