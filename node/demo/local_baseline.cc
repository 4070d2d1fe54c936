#include "node/demo/local_baseline.h"

#include <torch/torch.h>

#include <cmath>

#include "common/metrics/binary_metrics.h"
#include "common/task/risk_task.h"
#include "common/training/risk_evaluator.h"
#include "common/training/risk_trainer.h"

namespace fedcustoms::node {

v1::EvaluationMetrics EvaluateOnHoldout(const LocalData& data, models::RiskMlp& model) {
  const std::vector<int64_t>& rows = data.split.holdout;
  std::vector<float> scores = training::PredictRisk(model, data.table, rows);
  std::vector<float> labels;
  labels.reserve(rows.size());
  double loss = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const float y = data.table.labels[rows[i]];
    labels.push_back(y);
    const double q = std::clamp<double>(scores[i], 1e-7, 1 - 1e-7);
    loss -= y > 0.5f ? std::log(q) : std::log(1 - q);
  }
  if (!rows.empty()) loss /= static_cast<double>(rows.size());
  return metrics::ComputeBinaryMetrics(scores, labels, loss);
}

absl::StatusOr<v1::EvaluationMetrics> TrainLocalOnly(const LocalData& data,
                                                     v1::TrainingConfig training,
                                                     const v1::RiskModelConfig& model_config,
                                                     uint32_t epochs) {
  models::RiskMlp model = task::BuildRiskModel(data.schema, model_config, training.seed());
  training.set_local_epochs(epochs);
  auto result = training::TrainRiskModel(model, data.table, data.split.train, training);
  if (!result.ok()) return result.status();
  return EvaluateOnHoldout(data, model);
}

}  // namespace fedcustoms::node
