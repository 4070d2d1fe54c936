#include "node/learner/declaration_learner.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/metrics/binary_metrics.h"
#include "common/metrics/selection_counts.h"
#include "common/models/anomaly_autoencoder.h"
#include "common/models/boosted_trees_state.h"
#include "common/task/declaration_models.h"
#include "common/task/model_update.h"
#include "common/task/risk_task.h"
#include "common/training/anomaly_trainer.h"
#include "common/training/risk_evaluator.h"
#include "common/training/risk_trainer.h"
#include "common/trees/tree_ensemble.h"

namespace fedcustoms::node {
namespace {

// The risk model's scores on `rows`, their labels, and the metrics of both,
// loss being the unweighted BCE.
struct ScoredRows {
  std::vector<float> scores;
  std::vector<float> labels;
  v1::EvaluationMetrics metrics;
};
// A risk model's probability for each of a list of rows.
using Predictor = std::function<std::vector<float>(const std::vector<int64_t>&)>;

ScoredRows ScoreRows(const LocalData& data, const Predictor& predict,
                     const std::vector<int64_t>& rows) {
  ScoredRows out;
  out.scores = predict(rows);
  out.labels.reserve(rows.size());
  double loss = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const float y = data.table.labels[rows[i]];
    out.labels.push_back(y);
    const double q = std::clamp<double>(out.scores[i], 1e-7, 1 - 1e-7);
    loss -= y > 0.5f ? std::log(q) : std::log(1 - q);
  }
  if (!rows.empty()) loss /= static_cast<double>(rows.size());
  out.metrics = metrics::ComputeBinaryMetrics(out.scores, out.labels, loss);
  return out;
}

// Metrics of the risk model on the hold-out, and on the validation split
// when the node keeps one.
v1::EvaluationMetrics EvaluateRisk(const LocalData& data, const Predictor& predict) {
  const std::vector<int64_t>& rows = data.split.holdout;
  ScoredRows holdout = ScoreRows(data, predict, rows);
  const std::vector<float>& scores = holdout.scores;
  const std::vector<float>& labels = holdout.labels;
  v1::EvaluationMetrics metrics = std::move(holdout.metrics);
  if (!data.selection.empty()) {
    // Random-control evaluation at the 5 % budget, as counts.
    constexpr uint32_t kBudgetPercent = 5;
    std::vector<metrics::SelectionKind> kinds;
    kinds.reserve(rows.size());
    for (int64_t row : rows) kinds.push_back(data.selection[row]);
    const metrics::SelectionTally tally =
        metrics::CountBySelection(scores, labels, kinds, kBudgetPercent / 100.0);
    v1::SelectionEvaluation* selection = metrics.mutable_selection();
    selection->set_budget_percent(kBudgetPercent);
    for (auto [from, to] : {std::pair{&tally.random, selection->mutable_random()},
                            std::pair{&tally.risk_selected, selection->mutable_risk_selected()}}) {
      to->set_rows(from->rows);
      to->set_positives(from->positives);
      to->set_flagged(from->flagged);
      to->set_flagged_positives(from->flagged_positives);
    }
  }
  if (!data.split.validation.empty()) {
    // The version the coordinator releases is chosen on these.
    const v1::EvaluationMetrics v = ScoreRows(data, predict, data.split.validation).metrics;
    v1::ValidationMetrics* out = metrics.mutable_validation();
    out->set_pr_auc(v.pr_auc());
    out->set_roc_auc(v.roc_auc());
    out->set_loss(v.loss());
    out->set_examples(v.examples());
    out->set_positives(v.positives());
  }
  return metrics;
}

}  // namespace

absl::StatusOr<std::unique_ptr<DeclarationLearner>> DeclarationLearner::Create(
    const v1::NodeConfig& config) {
  const v1::TaskKind kind = task::ResolveKind(config.task_kind(), config.task());
  auto data = LoadLocalData(config, /*need_labels=*/kind == v1::TASK_RISK);
  if (!data.ok()) return data.status();
  return std::unique_ptr<DeclarationLearner>(new DeclarationLearner(kind, *std::move(data)));
}

task::ModelSpec DeclarationLearner::SpecOf(const v1::TaskAssignment& assignment) const {
  return task::SpecOf(assignment, data_.schema);
}

v1::DataSummary DeclarationLearner::data_summary() const {
  v1::DataSummary summary;
  summary.set_train_rows(data_.split.train.size());
  summary.set_holdout_rows(data_.split.holdout.size());
  summary.set_skipped_rows(data_.table.skipped_rows);
  return summary;
}

absl::StatusOr<LocalLearner::Trained> DeclarationLearner::Train(const task::ModelSpec& spec,
                                                                tensor::NamedTensors global,
                                                                const v1::TrainingConfig& training,
                                                                const training::DpSgdOptions* dp) {
  if (task::IsBoostedTrees(spec)) {
    return absl::FailedPreconditionError(
        "boosted trees are grown in boosting sessions, not trained from a global model");
  }
  Trained out;
  out.samples = data_.split.train.size();
  tensor::NamedTensors trained;
  if (spec.kind == v1::TASK_ANOMALY) {
    auto model = task::MakeAnomalyModel(spec);
    if (!model.ok()) return model.status();
    if (absl::Status s = tensor::LoadState(**model, global); !s.ok()) return s;
    auto result = training::TrainAnomalyModel(*model, data_.table, data_.split.train, training, dp);
    if (!result.ok()) return result.status();
    out.mean_loss = result->mean_loss;
    out.dp_steps = dp ? result->steps : 0;
    out.dp_sampling_rate = result->sampling_rate;
    out.dp_excluded = result->dp_excluded;
    trained = tensor::StateOf(**model);
  } else {
    auto model = task::MakeRiskModel(spec);
    if (!model.ok()) return model.status();
    if (absl::Status s = tensor::LoadState(**model, global); !s.ok()) return s;
    auto result = training::TrainRiskModel(*model, data_.table, data_.split.train, training, dp);
    if (!result.ok()) return result.status();
    out.mean_loss = result->mean_loss;
    out.dp_steps = dp ? result->steps : 0;
    out.dp_sampling_rate = result->sampling_rate;
    out.dp_excluded = result->dp_excluded;
    trained = tensor::StateOf(**model);
  }
  // Δ overwrites the trained weights in place and the global copy goes: the
  // upload holds about one model in memory.
  out.update = task::UpdateFrom(std::move(trained), global);
  return out;
}

absl::StatusOr<v1::EvaluationMetrics> DeclarationLearner::Evaluate(
    const task::ModelSpec& spec, const tensor::NamedTensors& state) {
  if (spec.kind == v1::TASK_ANOMALY) {
    auto model = task::MakeAnomalyModel(spec);
    if (!model.ok()) return model.status();
    if (absl::Status s = tensor::LoadState(**model, state); !s.ok()) return s;
    // The threshold is a quantile of scores: on training rows it would be a
    // query on them outside DP-SGD's accounting.
    return training::EvaluateAnomalyModel(
        *model, data_.table, training_rows_private_ ? data_.split.holdout : data_.split.train,
        data_.split.holdout);
  }
  if (task::IsBoostedTrees(spec)) {
    absl::StatusOr<trees::TreeEnsemble> ensemble = models::BoostedTreesFromState(state);
    if (!ensemble.ok()) return ensemble.status();
    if (ensemble->bins.numeric_width() != data_.table.numeric_width() ||
        ensemble->bins.categorical_bins.size() != data_.table.categorical_width()) {
      return absl::InvalidArgumentError("the boosted trees' bins do not have this node's features");
    }
    return EvaluateRisk(data_, [&](const std::vector<int64_t>& rows) {
      return trees::PredictProbabilities(*ensemble, data_.table, rows);
    });
  }
  auto model = task::MakeRiskModel(spec);
  if (!model.ok()) return model.status();
  if (absl::Status s = tensor::LoadState(**model, state); !s.ok()) return s;
  return EvaluateRisk(data_, [&](const std::vector<int64_t>& rows) {
    return training::PredictRisk(*model, data_.table, rows);
  });
}

}  // namespace fedcustoms::node
