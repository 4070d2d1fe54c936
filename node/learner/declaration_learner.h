#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "node/learner/local_learner.h"
#include "node/local_data.h"

namespace fedcustoms::node {

// The learner of the declaration tasks: risk (the RiskMlp trained on control
// results) and anomaly (the AnomalyAutoencoder trained on every training row,
// labels used only to evaluate), over the node's declarations CSV.
class DeclarationLearner : public LocalLearner {
 public:
  // Loads the config's schema and CSV (labels required for a risk task).
  static absl::StatusOr<std::unique_ptr<DeclarationLearner>> Create(const v1::NodeConfig& config);

  v1::TaskKind kind() const override { return kind_; }
  task::ModelSpec SpecOf(const v1::TaskAssignment& assignment) const override;
  std::string input_hash() const override { return data_.feature_schema_hash; }
  v1::DataSummary data_summary() const override;
  absl::StatusOr<Trained> Train(const task::ModelSpec& spec, tensor::NamedTensors global,
                                const v1::TrainingConfig& training,
                                const training::DpSgdOptions* dp) override;
  absl::StatusOr<v1::EvaluationMetrics> Evaluate(const task::ModelSpec& spec,
                                                 const tensor::NamedTensors& state) override;

  void KeepTrainingRowsOutOfEvaluation() override { training_rows_private_ = true; }

  const LocalData& data() const { return data_; }

 private:
  DeclarationLearner(v1::TaskKind kind, LocalData data) : kind_(kind), data_(std::move(data)) {}

  const v1::TaskKind kind_;
  const LocalData data_;
  bool training_rows_private_ = false;
};

}  // namespace fedcustoms::node
