#include "coordinator/rounds/server_model.h"

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "common/log/logging.h"
#include "common/process/crash_point.h"
#include "coordinator/aggregation/mean_update.h"
#include "coordinator/aggregation/tensor_source.h"

namespace fedcustoms::coordinator {

ServerModel::ServerModel(const v1::TaskConfig& config, const UpdateSpec& spec,
                         std::string models_dir, ModelRegistry* registry,
                         const crypto::Ed25519Signer* signer)
    : task_(config.name()),
      store_(config.name(), std::move(models_dir), registry, signer),
      optimizer_(config.strategy(), spec),
      limits_{.max_relative_change = config.publish_gate().max_relative_change()} {}

absl::StatusOr<std::shared_ptr<const ModelSnapshot>> ServerModel::Open(
    const tensor::NamedTensors& fresh, manifest::ModelManifest v0_manifest) {
  return store_.OpenLatest(fresh, std::move(v0_manifest), optimizer_);
}

absl::StatusOr<std::shared_ptr<const ModelSnapshot>> ServerModel::MakeCandidate(
    Aggregator& aggregator, const ModelSnapshot& base, manifest::ModelManifest& manifest) {
  absl::StatusOr<tensor::NamedTensors> next;
  {
    absl::StatusOr<MeanUpdate> mean = aggregator.Finish();
    if (!mean.ok()) return mean.status();  // the rule's own message
    manifest.total_samples = mean->samples();
    optimizer_stepped_ = true;  // from here a discard must restore the saved state
    next = store_.ApplyToBase(*mean, base, optimizer_);
  }  // the update's memory goes before the snapshot is written
  if (next.ok()) {
    absl::StatusOr<CandidateReport> checked =
        CheckCandidate(*next, TensorFile(base.wire_path), limits_);
    if (!checked.ok()) {
      return absl::Status(checked.status().code(),
                          absl::StrCat("candidate refused: ", checked.status().message()));
    }
    spdlog::info("task {}: candidate v{} passed its checks; largest change {:.3g} x scale ({})",
                 task_, manifest.version, checked->max_relative_change, checked->tensor);
  }
  absl::StatusOr<std::shared_ptr<const ModelSnapshot>> candidate =
      next.ok() ? store_.MakeCandidate(manifest, *next)
                : absl::StatusOr<std::shared_ptr<const ModelSnapshot>>(next.status());
  if (!candidate.ok()) {
    return absl::Status(candidate.status().code(),
                        absl::StrCat("aggregation failed: ", candidate.status().message()));
  }
  candidate_tensors_ = *std::move(next);
  process::CrashPoint("coordinator.aggregate");
  return candidate;
}

absl::StatusOr<std::shared_ptr<const ModelSnapshot>> ServerModel::MakeCandidateFromState(
    tensor::NamedTensors state, manifest::ModelManifest& manifest) {
  absl::StatusOr<std::shared_ptr<const ModelSnapshot>> candidate =
      store_.MakeCandidate(manifest, state);
  if (!candidate.ok()) {
    return absl::Status(candidate.status().code(),
                        absl::StrCat("candidate refused: ", candidate.status().message()));
  }
  candidate_tensors_ = std::move(state);
  return candidate;
}

absl::StatusOr<std::shared_ptr<const ModelSnapshot>> ServerModel::Publish(
    const ModelSnapshot& candidate, const std::string& metrics_json,
    const std::string& release_json) {
  absl::StatusOr<std::shared_ptr<const ModelSnapshot>> published = store_.PublishCandidate(
      candidate, metrics_json, release_json, candidate_tensors_, optimizer_.State());
  if (!published.ok()) return published;
  process::CrashPoint("coordinator.published");
  candidate_tensors_.clear();
  optimizer_stepped_ = false;  // its state is now the published version's
  store_.RemoveStaleWireFiles((*published)->version);
  return published;
}

void ServerModel::Discard(uint64_t global_version) {
  candidate_tensors_.clear();
  if (optimizer_stepped_) {
    // The strategy stepped for a model that will not be published: back to
    // the state saved with the global version.
    if (absl::Status s = store_.RestoreServerState(global_version, optimizer_); !s.ok()) {
      spdlog::error("task {}: {}; the server strategy starts again from its initial state", task_,
                    s.message());
      optimizer_.Reset();
    }
    optimizer_stepped_ = false;
  }
  store_.RemoveStaleWireFiles(global_version);
}

}  // namespace fedcustoms::coordinator
