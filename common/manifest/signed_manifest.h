#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "common/crypto/ed25519.h"
#include "common/manifest/model_manifest.h"

namespace fedcustoms::manifest {

// A manifest as exact JSON bytes plus the coordinator's Ed25519 signature over
// those bytes (64 raw bytes).
struct SignedManifest {
  std::string json;
  std::string signature;
};

// Serializes and signs.
SignedManifest SignManifest(const ModelManifest& manifest, const crypto::Ed25519Signer& signer);

// Checks the signature and parses; errors name `source` (a path or a peer).
absl::StatusOr<ModelManifest> VerifyManifest(const SignedManifest& signed_manifest,
                                             const crypto::Ed25519Verifier& verifier,
                                             const std::string& source);

}  // namespace fedcustoms::manifest
