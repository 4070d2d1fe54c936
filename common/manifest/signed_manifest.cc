#include "common/manifest/signed_manifest.h"

#include "absl/strings/str_cat.h"

namespace fedcustoms::manifest {

SignedManifest SignManifest(const ModelManifest& manifest, const crypto::Ed25519Signer& signer) {
  SignedManifest out;
  out.json = ToJson(manifest);
  out.signature = signer.Sign(out.json);
  return out;
}

absl::StatusOr<ModelManifest> VerifyManifest(const SignedManifest& signed_manifest,
                                             const crypto::Ed25519Verifier& verifier,
                                             const std::string& source) {
  if (absl::Status s = verifier.Verify(signed_manifest.json, signed_manifest.signature); !s.ok()) {
    return absl::PermissionDeniedError(
        absl::StrCat(source, ": manifest signature is not valid for the coordinator's key (",
                     s.message(), "); refusing the model"));
  }
  return ParseManifest(signed_manifest.json, source);
}

}  // namespace fedcustoms::manifest
