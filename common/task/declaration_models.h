#pragma once

#include "absl/status/statusor.h"
#include "common/models/anomaly_autoencoder.h"
#include "common/models/risk_mlp.h"
#include "common/task/task_model.h"

namespace fedcustoms::task {

// The untrained model of a declaration task's spec (risk or anomaly), its
// arguments checked first: InvalidArgument saying why the model cannot be
// built for this schema, instead of a LibTorch error.
absl::StatusOr<models::RiskMlp> MakeRiskModel(const ModelSpec& spec);
absl::StatusOr<models::AnomalyAutoencoder> MakeAnomalyModel(const ModelSpec& spec);

}  // namespace fedcustoms::task
