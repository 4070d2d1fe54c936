#include "coordinator/rounds/model_store.h"

#include <spdlog/spdlog.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/crypto/sha256.h"
#include "common/io/atomic_file.h"
#include "common/manifest/model_manifest.h"
#include "common/manifest/signed_manifest.h"
#include "coordinator/aggregation/tensor_source.h"

namespace fedcustoms::coordinator {

ModelStore::ModelStore(std::string task, std::string models_dir, ModelRegistry* registry,
                       const crypto::Ed25519Signer* signer)
    : task_(std::move(task)),
      models_dir_(std::move(models_dir)),
      registry_(registry),
      signer_(signer) {}

std::string ModelStore::WirePath(uint64_t version) const {
  return absl::StrCat(models_dir_, "/v", version, ".fct");
}

absl::StatusOr<std::shared_ptr<const ModelSnapshot>> ModelStore::OpenLatest(
    const tensor::NamedTensors& fresh, manifest::ModelManifest v0_manifest,
    ServerOptimizer& optimizer) const {
  const std::string feature_schema_hash = v0_manifest.feature_schema_hash;
  std::vector<uint64_t> versions = registry_->Versions(task_);
  absl::StatusOr<std::shared_ptr<const ModelSnapshot>> global;
  if (versions.empty()) {
    global = Publish(std::move(v0_manifest), fresh, optimizer.State());
    if (!global.ok()) return global.status();
    spdlog::info("task {}: published initial model version 0", task_);
  } else {
    global = Resume(versions.back(), fresh, feature_schema_hash);
    if (!global.ok()) return global.status();
    if (absl::Status s = RestoreServerState(versions.back(), optimizer); !s.ok()) return s;
    spdlog::info("task {}: resuming from registry version {}", task_, versions.back());
  }
  RemoveStaleWireFiles((*global)->version);
  return global;
}

absl::StatusOr<tensor::NamedTensors> ModelStore::ApplyToBase(MeanUpdate& mean,
                                                             const ModelSnapshot& base,
                                                             ServerOptimizer& optimizer) const {
  absl::StatusOr<std::string> sha = crypto::Sha256File(base.wire_path);
  if (!sha.ok()) return sha.status();
  if (*sha != base.wire_sha256) {
    return absl::DataLossError(absl::StrCat(base.wire_path, " no longer hashes to version ",
                                            base.version, "'s ", base.wire_sha256));
  }
  return mean.Apply(TensorFile(base.wire_path), &optimizer);
}

absl::Status ModelStore::CheckSpaceForVersion(uint64_t model_bytes) const {
  constexpr uint64_t kMargin = 1 << 20;
  if (absl::Status s = io::CheckWritableSpace(registry_->root(), 3 * model_bytes + kMargin);
      !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("model registry: ", s.message()));
  }
  if (absl::Status s = io::CheckWritableSpace(models_dir_, model_bytes + kMargin); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("model directory: ", s.message()));
  }
  return absl::OkStatus();
}

void ModelStore::RemoveStaleWireFiles(uint64_t keep) const {
  // Never throws (it runs on abort paths): every error is only logged.
  const std::filesystem::path kept = WirePath(keep);
  std::error_code ec;
  std::filesystem::directory_iterator it(models_dir_, ec);
  for (; !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (it->path() == kept) continue;
    std::error_code remove_ec;
    std::filesystem::remove(it->path(), remove_ec);
    if (remove_ec) {
      spdlog::warn("task {}: cannot remove {}: {}", task_, it->path().string(),
                   remove_ec.message());
    }
  }
  if (ec) spdlog::warn("task {}: cannot list {}: {}", task_, models_dir_, ec.message());
}

absl::StatusOr<std::shared_ptr<ModelSnapshot>> ModelStore::WriteSnapshot(
    manifest::ModelManifest& m, const tensor::NamedTensors& tensors) const {
  auto snapshot = std::make_shared<ModelSnapshot>();
  snapshot->version = m.version;
  snapshot->wire_path = WirePath(m.version);
  absl::StatusOr<WireDigest> digest = WriteWireFile(tensors, snapshot->wire_path);
  if (!digest.ok()) return digest.status();
  m.wire_sha256 = digest->sha256_hex;
  snapshot->wire_sha256 = digest->sha256_hex;
  snapshot->wire_bytes = digest->bytes;
  return snapshot;
}

absl::StatusOr<std::shared_ptr<const ModelSnapshot>> ModelStore::Publish(
    manifest::ModelManifest m, const tensor::NamedTensors& tensors,
    const tensor::NamedTensors& server_state) const {
  absl::StatusOr<std::shared_ptr<ModelSnapshot>> snapshot = WriteSnapshot(m, tensors);
  if (!snapshot.ok()) return snapshot.status();
  absl::StatusOr<manifest::SignedManifest> published = registry_->Publish(m, tensors, server_state);
  if (!published.ok()) return published.status();
  (*snapshot)->manifest = *std::move(published);
  return std::shared_ptr<const ModelSnapshot>(*std::move(snapshot));
}

absl::StatusOr<std::shared_ptr<const ModelSnapshot>> ModelStore::MakeCandidate(
    manifest::ModelManifest m, const tensor::NamedTensors& tensors) const {
  absl::StatusOr<std::shared_ptr<ModelSnapshot>> snapshot = WriteSnapshot(m, tensors);
  if (!snapshot.ok()) return snapshot.status();
  (*snapshot)->manifest = manifest::SignManifest(m, *signer_);
  return std::shared_ptr<const ModelSnapshot>(*std::move(snapshot));
}

absl::StatusOr<std::shared_ptr<const ModelSnapshot>> ModelStore::PublishCandidate(
    const ModelSnapshot& candidate, const std::string& metrics_json,
    const std::string& release_json, const tensor::NamedTensors& tensors,
    const tensor::NamedTensors& server_state) const {
  absl::StatusOr<manifest::ModelManifest> m =
      manifest::ParseManifest(candidate.manifest.json, "candidate manifest");
  if (!m.ok()) return m.status();
  m->metrics_json = metrics_json;
  m->release_json = release_json;
  m->created_at = manifest::NowRfc3339();
  absl::StatusOr<manifest::SignedManifest> published =
      registry_->Publish(*std::move(m), tensors, server_state);
  if (!published.ok()) return published.status();
  auto next = std::make_shared<ModelSnapshot>(candidate);
  next->manifest = *std::move(published);
  return std::shared_ptr<const ModelSnapshot>(std::move(next));
}

absl::StatusOr<std::shared_ptr<const ModelSnapshot>> ModelStore::Resume(
    uint64_t version, const tensor::NamedTensors& fresh,
    const std::string& feature_schema_hash) const {
  const std::string& task = task_;
  absl::StatusOr<manifest::SignedManifest> signed_manifest = registry_->ReadManifest(task, version);
  if (!signed_manifest.ok()) return signed_manifest.status();
  absl::StatusOr<manifest::ModelManifest> m =
      manifest::ParseManifest(signed_manifest->json, absl::StrCat(task, " v", version));
  if (!m.ok()) return m.status();
  if (m->feature_schema_hash != feature_schema_hash) {
    return absl::FailedPreconditionError(absl::StrCat(
        "task ", task, ": the registry's version ", version, " was trained on feature schema ",
        m->feature_schema_hash, " but the configured schema hashes to ", feature_schema_hash,
        "; use a new registry directory or the original schema"));
  }
  auto snapshot = std::make_shared<ModelSnapshot>();
  snapshot->version = version;
  snapshot->manifest = *std::move(signed_manifest);
  snapshot->wire_path = WirePath(version);
  // The wire file survives a restart; it is trusted only if it still hashes to
  // what the signed manifest says, and rebuilt from the registry otherwise.
  absl::StatusOr<std::string> sha = crypto::Sha256File(snapshot->wire_path);
  if (!sha.ok() || *sha != m->wire_sha256) {
    spdlog::info("task {}: {} is {}; rebuilding it from registry version {}", task,
                 snapshot->wire_path, sha.ok() ? "damaged" : "missing", version);
    absl::StatusOr<tensor::NamedTensors> weights = registry_->LoadWeights(task, version);
    if (!weights.ok()) return weights.status();
    absl::StatusOr<WireDigest> digest = WriteWireFile(*weights, snapshot->wire_path);
    if (!digest.ok()) return digest.status();
    if (digest->sha256_hex != m->wire_sha256) {
      return absl::DataLossError(absl::StrCat(
          "task ", task, ": registry version ", version, " encodes to SHA-256 ", digest->sha256_hex,
          ", not the ", m->wire_sha256, " its signed manifest states"));
    }
    sha = digest->sha256_hex;
  }
  snapshot->wire_sha256 = *sha;
  std::error_code ec;
  snapshot->wire_bytes = std::filesystem::file_size(snapshot->wire_path, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot read the size of ", snapshot->wire_path, ": ", ec.message()));
  }
  if (absl::Status s = CheckLayout(fresh, TensorFile(snapshot->wire_path)); !s.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("task ", task, ": registry version ", version,
                     " does not fit the configured model: ", s.message()));
  }
  return std::shared_ptr<const ModelSnapshot>(std::move(snapshot));
}

absl::Status ModelStore::RestoreServerState(uint64_t version, ServerOptimizer& optimizer) const {
  absl::StatusOr<manifest::SignedManifest> signed_manifest =
      registry_->ReadManifest(task_, version);
  if (!signed_manifest.ok()) return signed_manifest.status();
  absl::StatusOr<manifest::ModelManifest> m =
      manifest::ParseManifest(signed_manifest->json, absl::StrCat(task_, " version ", version));
  if (!m.ok()) return m.status();
  optimizer.Reset();
  if (m->strategy != optimizer.name()) {
    spdlog::warn(
        "task {}: version {} was made with strategy {}, the config says {}: {} starts "
        "from its initial state",
        task_, version, m->strategy, optimizer.name(), optimizer.name());
    return absl::OkStatus();
  }
  absl::StatusOr<tensor::NamedTensors> state = registry_->LoadServerState(task_, version);
  if (!state.ok()) {
    return absl::Status(state.status().code(),
                        absl::StrCat("cannot restore the ", optimizer.name(), " state of ", task_,
                                     " version ", version, ": ", state.status().message()));
  }
  if (state->empty()) return absl::OkStatus();  // a stateless rule, or none saved
  if (absl::Status s = optimizer.Restore(*state); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("cannot restore the server state of ", task_,
                                                   " version ", version, ": ", s.message()));
  }
  return absl::OkStatus();
}

}  // namespace fedcustoms::coordinator
