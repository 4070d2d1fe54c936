#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/crypto/ed25519.h"
#include "common/manifest/model_manifest.h"
#include "common/tensor/named_tensors.h"
#include "coordinator/aggregation/aggregator.h"
#include "coordinator/aggregation/server_optimizer.h"
#include "coordinator/registry/model_registry.h"
#include "coordinator/rounds/candidate_check.h"
#include "coordinator/rounds/model_snapshot.h"
#include "coordinator/rounds/model_store.h"
#include "fedcustoms/v1/config.pb.h"

namespace fedcustoms::coordinator {

// The coordinator's side of one task's model from round to round: the wire
// files (ModelStore), the server strategy (ServerOptimizer) whose state stays
// in step with the published versions, and the candidate's weights between
// aggregation and publication, the only full model the coordinator holds in
// memory. Global → MakeCandidate → Publish, or Discard on abort.
//
// Not thread-safe: TaskRunner's driver thread owns it. The snapshots it
// returns are immutable and may be shared with any thread.
class ServerModel {
 public:
  // `config` finalized; `models_dir` exists; `registry` and `signer` outlive
  // the model.
  ServerModel(const v1::TaskConfig& config, const UpdateSpec& spec, std::string models_dir,
              ModelRegistry* registry, const crypto::Ed25519Signer* signer);

  // The server strategy's name ("fedavg", "fedadam"...), as records state it.
  const std::string& strategy() const { return optimizer_.name(); }
  const ModelStore& store() const { return store_; }

  // The global model when the coordinator starts (ModelStore::OpenLatest):
  // the registry's latest version with the strategy's saved state, or
  // `fresh` published as version 0.
  absl::StatusOr<std::shared_ptr<const ModelSnapshot>> Open(const tensor::NamedTensors& fresh,
                                                            manifest::ModelManifest v0_manifest);

  // Finishes `aggregator` into the mean update, steps the strategy with it on
  // top of `base`, checks the result (CheckCandidate with the task's
  // publish_gate) and writes it as candidate manifest.version with a signed
  // manifest; sets manifest.total_samples. The rule's own error, "candidate
  // refused: " and the check's, or "aggregation failed: " and the store's. The candidate's weights
  // stay here until Publish or Discard.
  absl::StatusOr<std::shared_ptr<const ModelSnapshot>> MakeCandidate(
      Aggregator& aggregator, const ModelSnapshot& base, manifest::ModelManifest& manifest);

  // Writes a model made whole by the round itself (a boosting session's
  // ensemble: nothing to average, no strategy to step) as candidate
  // manifest.version with a signed manifest. "candidate refused: " and the
  // store's error otherwise. Its tensors stay here until Publish or Discard.
  absl::StatusOr<std::shared_ptr<const ModelSnapshot>> MakeCandidateFromState(
      tensor::NamedTensors state, manifest::ModelManifest& manifest);

  // Publishes `candidate` (the last MakeCandidate's) with `metrics_json`,
  // `release_json` (manifest::ModelManifest::release_json) and the strategy's
  // state: the new global model. Every other file in the
  // models directory is then removed (the caller's previous global is no
  // longer handed out: the round is evaluating). The registry's error
  // otherwise, with the candidate and the stepped strategy left for the
  // caller's Discard.
  absl::StatusOr<std::shared_ptr<const ModelSnapshot>> Publish(const ModelSnapshot& candidate,
                                                               const std::string& metrics_json,
                                                               const std::string& release_json);

  // Drops any candidate: its weights and wire file go, and a strategy that
  // stepped for it returns to the state saved with `global_version` (its
  // initial state if that cannot be read, logged). Never fails.
  void Discard(uint64_t global_version);

 private:
  const std::string task_;
  ModelStore store_;
  ServerOptimizer optimizer_;
  // It stepped for a candidate not yet published.
  bool optimizer_stepped_ = false;
  const CandidateLimits limits_;
  tensor::NamedTensors candidate_tensors_;
};

}  // namespace fedcustoms::coordinator
