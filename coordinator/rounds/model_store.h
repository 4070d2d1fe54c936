#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/crypto/ed25519.h"
#include "common/manifest/model_manifest.h"
#include "common/tensor/named_tensors.h"
#include "coordinator/aggregation/mean_update.h"
#include "coordinator/aggregation/server_optimizer.h"
#include "coordinator/registry/model_registry.h"
#include "coordinator/rounds/model_snapshot.h"

namespace fedcustoms::coordinator {

// The wire files of one task's models, beside the registry that holds their
// weights: <models_dir>/v<N>.fct is the tensor-codec encoding of version N
// (the global model, or a round's candidate), which downloads stream and
// aggregation reads slice by slice. Derived data: a missing or damaged file is
// rebuilt from the registry, and it is trusted only while it hashes to what
// the signed manifest states.
//
// Holds only constants: thread-safe as far as its own state goes; the caller
// (TaskRunner's driver thread) serializes the writes to one version's file.
class ModelStore {
 public:
  // `models_dir` must exist; `registry` and `signer` must outlive the store.
  ModelStore(std::string task, std::string models_dir, ModelRegistry* registry,
             const crypto::Ed25519Signer* signer);

  // <models_dir>/v<version>.fct.
  std::string WirePath(uint64_t version) const;

  // Writes the wire file of `tensors` as version manifest.version (setting
  // manifest.wire_sha256), then publishes the version to the registry with
  // `server_state`. The error of the write or of ModelRegistry::Publish;
  // a wire file already written stays (RemoveStaleWireFiles clears it).
  absl::StatusOr<std::shared_ptr<const ModelSnapshot>> Publish(
      manifest::ModelManifest manifest, const tensor::NamedTensors& tensors,
      const tensor::NamedTensors& server_state) const;

  // As Publish, but the version only gets a signed manifest: a round's
  // candidate, published later (ModelRegistry::Publish) if the round completes.
  absl::StatusOr<std::shared_ptr<const ModelSnapshot>> MakeCandidate(
      manifest::ModelManifest manifest, const tensor::NamedTensors& tensors) const;

  // Publishes `candidate` (made by MakeCandidate; `tensors` are its weights)
  // to the registry with `metrics_json`, `release_json` and a fresh creation
  // time in its manifest, and `server_state`: the new global model, whose wire file is
  // the candidate's. The registry's error otherwise (nothing published).
  absl::StatusOr<std::shared_ptr<const ModelSnapshot>> PublishCandidate(
      const ModelSnapshot& candidate, const std::string& metrics_json,
      const std::string& release_json, const tensor::NamedTensors& tensors,
      const tensor::NamedTensors& server_state) const;

  // The snapshot of registry version `version`, its wire file reused when it
  // still matches the signed manifest and rebuilt from the registry
  // otherwise. FailedPrecondition when the version was trained on another
  // feature schema than `feature_schema_hash` or does not have the layout of
  // `fresh` (the configured model); DataLoss when the registry's weights do
  // not encode to the signed hash; else the registry's or the disk's error.
  absl::StatusOr<std::shared_ptr<const ModelSnapshot>> Resume(
      uint64_t version, const tensor::NamedTensors& fresh,
      const std::string& feature_schema_hash) const;

  // The task's global model when the coordinator starts: the registry's
  // latest version resumed (Resume) with `optimizer` in its saved state, or,
  // for a task with no version yet, `fresh` published as version 0 with
  // `v0_manifest`. Stale wire files are removed. The error of the step that
  // failed (nothing is published then).
  absl::StatusOr<std::shared_ptr<const ModelSnapshot>> OpenLatest(
      const tensor::NamedTensors& fresh, manifest::ModelManifest v0_manifest,
      ServerOptimizer& optimizer) const;

  // Puts `optimizer` into the state saved with registry `version`: its initial
  // state when that version was made by another strategy (logged) or saved
  // none. The registry's error when the manifest or state cannot be read;
  // InvalidArgument when the saved state does not fit the optimizer (then
  // its state is unspecified: the caller resets it).
  absl::Status RestoreServerState(uint64_t version, ServerOptimizer& optimizer) const;

  // The next model: `mean` applied through `optimizer` on top of `base`,
  // computed in the update's memory while the base is read from its wire
  // file (one model in memory, not three). The file is checked against its
  // hash first (DataLoss otherwise), so a file damaged on disk never becomes
  // the base of a freshly signed version.
  absl::StatusOr<tensor::NamedTensors> ApplyToBase(MeanUpdate& mean, const ModelSnapshot& base,
                                                   ServerOptimizer& optimizer) const;

  // OK when the registry can take a new version of `model_bytes` (weights
  // and up to two model-sized server-state tensors per parameter) and the
  // models directory its wire file; else io::CheckWritableSpace's error,
  // naming the store.
  absl::Status CheckSpaceForVersion(uint64_t model_bytes) const;

  // Deletes every file in the models directory but version `keep`'s
  // (candidates of aborted rounds, superseded globals, leftovers of a crash).
  // Never fails and never throws (it runs on abort paths): errors are logged.
  void RemoveStaleWireFiles(uint64_t keep) const;

 private:
  absl::StatusOr<std::shared_ptr<ModelSnapshot>> WriteSnapshot(
      manifest::ModelManifest& manifest, const tensor::NamedTensors& tensors) const;

  const std::string task_;
  const std::string models_dir_;
  ModelRegistry* const registry_;
  const crypto::Ed25519Signer* const signer_;
};

}  // namespace fedcustoms::coordinator
