#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/models/risk_mlp.h"
#include "common/tensor/named_tensors.h"
#include "fedcustoms/v1/config.pb.h"
#include "fedcustoms/v1/schema.pb.h"

namespace fedcustoms::task {

// Glue of the "risk" task shared by coordinator, node and CLI: config
// defaults and the model built from the federation's feature schema.

// Fills documented defaults (epochs 1, batch 256, lr 1e-3, adam, cap 30, seed
// 1) and checks ranges; the error names the field.
absl::Status FinalizeTrainingConfig(v1::TrainingConfig* config);
// Defaults hidden [64, 32], embedding 8, dropout 0.1; checks ranges.
absl::Status FinalizeRiskModelConfig(v1::RiskModelConfig* config);

// The model input widths of a schema: the number of NUMERIC columns and the
// hash_buckets of each CATEGORICAL column, in schema order (appended to
// `buckets`).
void FeatureWidths(const v1::DeclarationSchema& schema, int64_t* numeric,
                   std::vector<uint32_t>* buckets);

// The risk MLP for a schema's features, initialized from `seed`.
models::RiskMlp BuildRiskModel(const v1::DeclarationSchema& schema,
                               const v1::RiskModelConfig& config, uint64_t seed);
// Its state (all parameters and buffers, canonical order).
absl::StatusOr<tensor::NamedTensors> InitialRiskState(const v1::DeclarationSchema& schema,
                                                      const v1::RiskModelConfig& config,
                                                      uint64_t seed);

// The feature part of a schema as JSON, for manifests (names, transforms,
// buckets — what an analyst needs to build inputs).
std::string FeatureSchemaSummaryJson(const v1::DeclarationSchema& schema);

}  // namespace fedcustoms::task
