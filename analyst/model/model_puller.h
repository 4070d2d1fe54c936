#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/manifest/model_manifest.h"
#include "fedcustoms/v1/config.pb.h"

namespace fedcustoms::analyst {

struct PullOptions {
  std::string coordinator_address;
  // The analyst's (or admin's) mutual-TLS identity.
  v1::TlsFiles tls;
  // Coordinator's Ed25519 public key (PEM file) that must have signed the manifest.
  std::string coordinator_public_key;
  std::string task = "risk";
  // Latest when empty.
  std::optional<uint64_t> version;
  // With no `version`: the version the latest signed manifest names as
  // released (the best on the nodes' validation splits, not necessarily the
  // newest) instead of the latest.
  bool released = false;
  std::string out_dir;
};

// `fedcustoms pull`: fetches a published model's signed manifest and weights,
// verifies the signature with the coordinator's key and the weights' SHA-256
// against the manifest, and only then writes out_dir/model.pt,
// out_dir/manifest.json and out_dir/manifest.sig. A tampered or mismatching
// model is refused and nothing is left in out_dir.
absl::StatusOr<manifest::ModelManifest> PullModel(const PullOptions& options);

// Checks an already pulled directory (signature and SHA-256) again.
// With `weights`, hands over the bytes of the weights file it verified, so
// the caller loads exactly what was checked rather than reading the file again.
absl::StatusOr<manifest::ModelManifest> VerifyPulledModel(const std::string& dir,
                                                          const std::string& public_key_path,
                                                          std::string* weights = nullptr);

}  // namespace fedcustoms::analyst
