#include "analyst/model/declaration_scorer.h"

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "common/models/boosted_trees_state.h"
#include "common/task/declaration_models.h"
#include "common/task/risk_task.h"
#include "common/training/anomaly_trainer.h"
#include "common/training/risk_evaluator.h"
#include "common/training/table_tensors.h"

namespace fedcustoms::analyst {

absl::StatusOr<DeclarationScorer> DeclarationScorer::Create(const PulledModel& model) {
  DeclarationScorer scorer;
  scorer.kind_ = model.spec.kind;
  if (task::IsBoostedTrees(model.spec)) {
    auto ensemble = models::BoostedTreesFromState(model.state);
    if (!ensemble.ok()) return ensemble.status();
    task::FeatureWidths(model.spec.schema, &scorer.numeric_width_, &scorer.buckets_);
    if (ensemble->bins.numeric_width() != static_cast<size_t>(scorer.numeric_width_) ||
        ensemble->bins.categorical_bins.size() != scorer.buckets_.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("model ", model.manifest.task, " v", model.manifest.version,
                       ": its bins have ", ensemble->bins.numeric_width(), " numeric and ",
                       ensemble->bins.categorical_bins.size(), " categorical features, the schema ",
                       scorer.numeric_width_, " and ", scorer.buckets_.size()));
    }
    scorer.trees_ = *std::move(ensemble);
  } else if (model.spec.kind == v1::TASK_RISK) {
    auto risk = task::MakeRiskModel(model.spec);
    if (!risk.ok()) return risk.status();
    if (absl::Status s = tensor::LoadState(**risk, model.state); !s.ok()) return s;
    scorer.risk_ = *std::move(risk);
  } else if (model.spec.kind == v1::TASK_ANOMALY) {
    auto anomaly = task::MakeAnomalyModel(model.spec);
    if (!anomaly.ok()) return anomaly.status();
    if (absl::Status s = tensor::LoadState(**anomaly, model.state); !s.ok()) return s;
    scorer.anomaly_ = *std::move(anomaly);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("model ", model.manifest.task, " v", model.manifest.version,
                     " is an X-ray model; declarations need a risk or anomaly model"));
  }
  return scorer;
}

absl::StatusOr<std::vector<float>> DeclarationScorer::Score(const data::DeclarationTable& table,
                                                            std::span<const int64_t> rows) {
  try {
    if (trees_) {
      if (absl::Status s = training::CheckRows(table, numeric_width_, buckets_, rows,
                                               /*need_labels=*/false);
          !s.ok()) {
        return s;
      }
      return trees::PredictProbabilities(*trees_, table, rows);
    }
    if (risk_) {
      if (absl::Status s = training::CheckRows(table, (*risk_)->numeric_width(),
                                               (*risk_)->buckets(), rows, /*need_labels=*/false);
          !s.ok()) {
        return s;
      }
      return training::PredictRisk(*risk_, table, rows);
    }
    if (absl::Status s = training::CheckRows(table, (*anomaly_)->numeric_width(),
                                             (*anomaly_)->buckets(), rows, /*need_labels=*/false);
        !s.ok()) {
      return s;
    }
    return training::ScoreAnomalies(*anomaly_, table, rows);
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat("scoring failed in LibTorch: ", e.what_without_backtrace()));
  }
}

}  // namespace fedcustoms::analyst
