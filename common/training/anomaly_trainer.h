#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "common/data/declaration_table.h"
#include "common/models/anomaly_autoencoder.h"
#include "common/training/risk_trainer.h"
#include "fedcustoms/v1/config.pb.h"
#include "fedcustoms/v1/metrics.pb.h"

namespace fedcustoms::training {

// Trains the autoencoder in place on `rows` of `table` to minimize the mean
// anomaly score (reconstruction error). Labels are not needed and not used.
// Same loop, config, determinism, standardization handling and errors as
// TrainRiskModel (RunLocalEpochs); TrainResult::positive_weight stays 1 and
// mean_loss is the mean score of the last epoch. With `dp`, DP-SGD as in
// TrainRiskModel (the per-example loss is the example's score).
absl::StatusOr<TrainResult> TrainAnomalyModel(models::AnomalyAutoencoder& model,
                                              const data::DeclarationTable& table,
                                              std::span<const int64_t> rows,
                                              const v1::TrainingConfig& config,
                                              const DpSgdOptions* dp = nullptr);

// Anomaly scores of `rows`, in that order (eval mode, no gradients, batched).
// Precondition: CheckRows(table, ..., need_labels=false) passes; violations
// throw c10::Error.
std::vector<float> ScoreAnomalies(models::AnomalyAutoencoder& model,
                                  const data::DeclarationTable& table,
                                  std::span<const int64_t> rows);

// The q-quantile of `scores` (linear interpolation between order statistics,
// as numpy's default); +inf when `scores` is empty, so nothing is flagged.
double FlagThreshold(std::vector<float> scores, double q);

// The node's evaluation of an anomaly model: the flagging threshold is the
// model's flag_quantile of the scores of `threshold_rows` (the node's training
// split); on `holdout_rows`, `flagged` counts scores above it, `loss` is the
// mean score and `examples` the row count; when the table has labels, the
// binary metrics of the scores against them (ComputeBinaryMetrics) as well.
// InvalidArgument when rows do not fit the model (CheckRows) or `holdout_rows`
// is empty; Internal for a LibTorch failure.
absl::StatusOr<v1::EvaluationMetrics> EvaluateAnomalyModel(models::AnomalyAutoencoder& model,
                                                           const data::DeclarationTable& table,
                                                           std::span<const int64_t> threshold_rows,
                                                           std::span<const int64_t> holdout_rows);

}  // namespace fedcustoms::training
