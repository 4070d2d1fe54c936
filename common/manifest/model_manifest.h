#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace fedcustoms::manifest {

// The manifest of one global model version. It describes the model and how it
// was made, with counts only: never which node sent what. Serialized to JSON
// deterministically; the exact bytes are what the coordinator signs.
struct ModelManifest {
  std::string task;
  uint64_t version = 0;
  // Version this one was aggregated from; absent (0 with has_parent=false) for v0.
  uint64_t parent = 0;
  bool has_parent = false;
  uint64_t round_id = 0;
  std::string architecture;
  // JSON objects, kept as serialized JSON text so this header needs no JSON
  // library: model hyper-parameters, training config, feature schema summary,
  // aggregated metrics, privacy spent.
  std::string hyperparameters_json = "{}";
  std::string training_json = "{}";
  std::string feature_schema_json = "{}";
  std::string metrics_json = "{}";
  std::string privacy_json = R"({"mechanism":"none","epsilon":null,"delta":null})";
  std::string feature_schema_hash;
  std::string aggregation_mode;
  std::string strategy;
  // How updates were combined before the strategy: "mean", "median",
  // "trimmed_mean", "krum" or "multi_krum", with "+norm_bound" when bounded.
  std::string aggregator;
  uint32_t contributing_nodes = 0;
  uint64_t total_samples = 0;
  // SHA-256 (hex) of model.pt, and of the tensor-codec bytes that nodes download.
  std::string weights_file = "model.pt";
  std::string weights_sha256;
  std::string wire_sha256;
  // SHA-256 (hex) of server_state.pt, the server strategy's state (e.g.
  // FedAdam's moments) saved with this version; empty when it keeps none.
  std::string server_state_sha256;
  // RFC 3339 UTC.
  std::string created_at;
  // Which version the coordinator releases as of this one (the best on the
  // nodes' validation splits so far; `fedcustoms pull` takes it by default):
  // {"released_version": N, "released_weights_sha256": its weights' hash
  //  (absent when N is this version: its own weights_sha256),
  //  "criterion": …, "validation_pr_auc": this version's figure or null,
  //  "best_validation_pr_auc": the released version's or null,
  //  "rounds_without_improvement": n} (coordinator/rounds/release_choice.h).
  // "{}" (written as no "release" key) in v0 and in manifests written before
  // versions were chosen; `released_version` is then this version. Parsed:
  // `released_weights_sha256` is the released version's weights hash.
  std::string release_json = "{}";
  uint64_t released_version = 0;
  std::string released_weights_sha256;
};

// Deterministic JSON (sorted keys, no insignificant whitespace).
std::string ToJson(const ModelManifest& manifest);

// Parses a manifest; the error names `source` and the bad or missing field.
absl::StatusOr<ModelManifest> ParseManifest(const std::string& json, const std::string& source);

// The current time as RFC 3339 UTC, e.g. "2026-11-23T10:00:00Z".
std::string NowRfc3339();

}  // namespace fedcustoms::manifest
