#pragma once

#include <filesystem>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/ed25519.h"
#include "common/crypto/sha256.h"
#include "common/io/atomic_file.h"
#include "common/manifest/signed_manifest.h"
#include "common/task/task_model.h"
#include "common/tensor/named_tensors.h"

namespace fedcustoms::testing {

// Writes what `fedcustoms pull` leaves in `dir` (model.pt, manifest.json,
// manifest.sig) for a model trained in the test, signed with a fresh Ed25519
// key whose public half goes to `dir`/../signing.pub (returned in
// *public_key). The real signing and verification code runs: only the
// coordinator that would have aggregated the model is skipped.
inline absl::Status WritePulledModelDir(const std::string& dir, const task::ModelSpec& spec,
                                        const tensor::NamedTensors& state, uint64_t version,
                                        std::string* public_key) {
  std::filesystem::create_directories(dir);
  const std::string parent = std::filesystem::path(dir).parent_path().string();
  const std::string private_key = parent + "/signing.key";
  *public_key = parent + "/signing.pub";
  if (!std::filesystem::exists(private_key)) {
    if (absl::Status s = crypto::GenerateEd25519KeyPair(private_key, *public_key); !s.ok()) {
      return s;
    }
  }
  auto signer = crypto::Ed25519Signer::Create(private_key);
  if (!signer.ok()) return signer.status();
  manifest::ModelManifest m;
  m.task = spec.kind == v1::TASK_XRAY ? "xray" : spec.kind == v1::TASK_ANOMALY ? "anomaly" : "risk";
  m.version = version;
  m.architecture = std::string(task::ArchitectureName(spec));
  m.hyperparameters_json = task::HyperparametersJson(spec);
  m.feature_schema_hash = task::InputHash(spec);
  m.aggregation_mode = "secure";
  m.created_at = manifest::NowRfc3339();
  if (absl::Status s = tensor::SavePickledState(state, dir + "/model.pt"); !s.ok()) return s;
  auto sha = crypto::Sha256File(dir + "/model.pt");
  if (!sha.ok()) return sha.status();
  m.weights_sha256 = *sha;
  const manifest::SignedManifest signed_manifest = manifest::SignManifest(m, **signer);
  if (absl::Status s = io::WriteFileAtomically(dir + "/manifest.json", signed_manifest.json);
      !s.ok()) {
    return s;
  }
  return io::WriteFileAtomically(dir + "/manifest.sig", signed_manifest.signature);
}

}  // namespace fedcustoms::testing
