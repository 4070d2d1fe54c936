#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/crypto/ed25519.h"
#include "common/manifest/model_manifest.h"
#include "common/manifest/signed_manifest.h"
#include "common/tensor/named_tensors.h"

namespace fedcustoms::coordinator {

// The model registry on disk: every global model version of every task,
//   <root>/<task>/v00000003/model.pt        torch.load-able dict name -> tensor
//   <root>/<task>/v00000003/manifest.json   ModelManifest, exact signed bytes
//   <root>/<task>/v00000003/manifest.sig    Ed25519 signature (64 raw bytes)
//   <root>/<task>/v00000003/server_state.pt server strategy state (optional)
// A version is written into a staging directory, each file fsynced, and then
// renamed into place, so a version is visible only when all three files are
// complete; leftovers of an interrupted write are removed on Open. Versions are
// never overwritten. Thread-safe.
class ModelRegistry {
 public:
  // Opens (creating if needed) the registry at `root`. `signer` signs what
  // Publish writes; `verifier` checks what is read back. Both must outlive the
  // registry.
  static absl::StatusOr<std::unique_ptr<ModelRegistry>> Open(
      const std::string& root, const crypto::Ed25519Signer* signer,
      const crypto::Ed25519Verifier* verifier);

  // Writes `weights` as version manifest.version of manifest.task, filling in
  // weights_sha256, signing the manifest, and returns the signed manifest.
  // A non-empty `server_state` (the server strategy's state after this
  // version) goes into server_state.pt in the same version directory, its
  // hash into server_state_sha256, so the two are published together or not
  // at all. Fails (writing nothing visible) if that version exists or on I/O
  // error.
  absl::StatusOr<manifest::SignedManifest> Publish(manifest::ModelManifest manifest,
                                                   const tensor::NamedTensors& weights,
                                                   const tensor::NamedTensors& server_state = {});

  const std::string& root() const { return root_; }

  // Published versions of `task`, ascending (empty when none).
  std::vector<uint64_t> Versions(const std::string& task) const;
  // Task names that have at least one version.
  std::vector<std::string> Tasks() const;

  // The signed manifest of a version (the latest when `version` is empty),
  // signature verified. NotFound when the task or version does not exist.
  absl::StatusOr<manifest::SignedManifest> ReadManifest(const std::string& task,
                                                        std::optional<uint64_t> version) const;

  // Path of a version's weights file (which may not exist).
  std::string WeightsPath(const std::string& task, uint64_t version) const;

  // Loads a version's weights after checking its signed manifest and the file's
  // SHA-256 against it.
  absl::StatusOr<tensor::NamedTensors> LoadWeights(const std::string& task, uint64_t version) const;

  // Loads a version's server strategy state after checking its hash against
  // the signed manifest; an empty list when the version has none.
  absl::StatusOr<tensor::NamedTensors> LoadServerState(const std::string& task,
                                                       uint64_t version) const;

 private:
  ModelRegistry(std::string root, const crypto::Ed25519Signer* signer,
                const crypto::Ed25519Verifier* verifier)
      : root_(std::move(root)), signer_(signer), verifier_(verifier) {}
  std::string VersionDir(const std::string& task, uint64_t version) const;
  // A version's weights or server state, checked against its signed manifest.
  absl::StatusOr<tensor::NamedTensors> LoadChecked(const std::string& task, uint64_t version,
                                                   bool server_state) const;

  // Constant after construction.
  const std::string root_;
  const crypto::Ed25519Signer* const signer_;
  const crypto::Ed25519Verifier* const verifier_;
  // Serializes Publish calls.
  std::mutex publish_mu_;
};

}  // namespace fedcustoms::coordinator
