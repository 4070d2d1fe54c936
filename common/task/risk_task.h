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
// Defaults hidden [64, 32], embedding 8, dropout 0.1, cross buckets 16384;
// checks ranges and that each cross names two distinct columns (whether they
// are categorical columns of the schema is checked by ResolveCrosses). Kind
// BOOSTED_TREES: the defaults and ranges of BoostedTreesConfig, and none of
// the network's settings.
absl::Status FinalizeRiskModelConfig(v1::RiskModelConfig* config);

// The model input widths of a schema: the number of NUMERIC columns and the
// hash_buckets of each CATEGORICAL column, in schema order (appended to
// `buckets`).
void FeatureWidths(const v1::DeclarationSchema& schema, int64_t* numeric,
                   std::vector<uint32_t>* buckets);

// The categorical features (indices among the schema's CATEGORICAL columns)
// of each of config.crosses; the error names the cross and the column that is
// not a CATEGORICAL column of the schema.
absl::StatusOr<std::vector<models::CrossColumns>> ResolveCrosses(
    const v1::DeclarationSchema& schema, const v1::RiskModelConfig& config);

// The risk MLP for a schema's features, initialized from `seed`. Throws
// c10::Error when the config does not fit the schema (InitialRiskState says
// why as a status).
models::RiskMlp BuildRiskModel(const v1::DeclarationSchema& schema,
                               const v1::RiskModelConfig& config, uint64_t seed);
// Its state (all parameters and buffers, canonical order); for kind
// BOOSTED_TREES an ensemble without trees (models::BoostedTreesState).
absl::StatusOr<tensor::NamedTensors> InitialRiskState(const v1::DeclarationSchema& schema,
                                                      const v1::RiskModelConfig& config,
                                                      uint64_t seed);

// The feature part of a schema as JSON, for manifests (names, transforms,
// buckets — what an analyst needs to build inputs).
std::string FeatureSchemaSummaryJson(const v1::DeclarationSchema& schema);

}  // namespace fedcustoms::task
