#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/tensor/named_tensors.h"
#include "fedcustoms/v1/config.pb.h"
#include "fedcustoms/v1/node_service.pb.h"
#include "fedcustoms/v1/schema.pb.h"

namespace fedcustoms::task {

// Dispatch over the task kinds (risk, anomaly, xray) for what coordinator,
// node and CLI share: which model a task builds, what its input is and how
// its initial state is made.

// `kind`, or when unspecified the kind the name implies ("anomaly",
// "xray", anything else risk).
v1::TaskKind ResolveKind(v1::TaskKind kind, std::string_view task_name);
// "risk", "anomaly", "xray".
std::string_view KindName(v1::TaskKind kind);

// What fixes a task's model and input: its kind and that kind's
// hyper-parameters (defaults applied), and for the declaration tasks (risk,
// anomaly) the federation's declaration schema.
struct ModelSpec {
  v1::TaskKind kind = v1::TASK_RISK;
  v1::DeclarationSchema schema;
  v1::RiskModelConfig risk;
  v1::AnomalyModelConfig anomaly;
  v1::XrayModelConfig xray;

  bool uses_declarations() const { return kind != v1::TASK_XRAY; }
};

// The spec of a finalized task config (FinalizeTaskModel), or of an
// assignment the coordinator made from one (its task_kind and model configs).
ModelSpec SpecOf(const v1::TaskConfig& config, v1::DeclarationSchema schema);
ModelSpec SpecOf(const v1::TaskAssignment& assignment, v1::DeclarationSchema schema);
// Copies the spec's kind and model config into an assignment.
void CopyModelConfig(const ModelSpec& spec, v1::TaskAssignment* assignment);

// Resolves config->kind and applies the defaults of, and checks, the model
// config of that kind; the error names the field.
absl::Status FinalizeTaskModel(v1::TaskConfig* config);

// "risk_mlp", "anomaly_autoencoder", "xray_cnn": the manifest's architecture.
std::string_view ArchitectureName(v1::TaskKind kind);
// The same for a spec: "boosted_trees" for a risk task of kind BOOSTED_TREES
// (a models::BoostedTreesState), else ArchitectureName(spec.kind).
std::string_view ArchitectureName(const ModelSpec& spec);
// Whether the spec is a risk task of kind BOOSTED_TREES.
bool IsBoostedTrees(const ModelSpec& spec);
// The kind's model config as JSON (the manifest's hyperparameters).
std::string HyperparametersJson(const ModelSpec& spec);
// What an analyst needs to build inputs, as JSON: the feature schema summary
// of a declaration task, or image size, channels and classes of an X-ray one.
std::string InputSummaryJson(const ModelSpec& spec);
// Hex SHA-256 identifying the input: the feature schema hash of a declaration
// task (data::FeatureSchemaHash), the hash of InputSummaryJson for X-rays.
// Nodes and coordinator must agree on it.
std::string InputHash(const ModelSpec& spec);

// The task's fresh model state, initialized from `seed`; InvalidArgument when
// the spec cannot build a model (e.g. a schema without features).
absl::StatusOr<tensor::NamedTensors> InitialState(const ModelSpec& spec, uint64_t seed);

}  // namespace fedcustoms::task
