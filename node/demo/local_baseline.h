#pragma once

#include "absl/status/statusor.h"
#include "fedcustoms/v1/config.pb.h"
#include "fedcustoms/v1/metrics.pb.h"
#include "common/models/risk_mlp.h"
#include "node/local_data.h"

namespace fedcustoms::node {

// The local-only baseline: the same model, initialized the same way, trained
// by one administration alone on its own training split for `epochs` epochs
// (the federation's rounds × local epochs), evaluated on its own hold-out.
absl::StatusOr<v1::EvaluationMetrics> TrainLocalOnly(const LocalData& data,
                                                     v1::TrainingConfig training,
                                                     const v1::RiskModelConfig& model_config,
                                                     uint32_t epochs);

// Metrics of a model state on a node's hold-out (shared by the node's
// evaluation and the baseline).
v1::EvaluationMetrics EvaluateOnHoldout(const LocalData& data, models::RiskMlp& model);

}  // namespace fedcustoms::node
