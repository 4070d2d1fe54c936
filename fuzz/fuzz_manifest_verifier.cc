// The signed-manifest verifier on arbitrary input: the first 64 bytes are
// taken as the signature, the rest as the manifest JSON. An arbitrary
// signature must be refused (only our own key signed anything); the same JSON
// signed with that key reaches the parser, which must return an error or a
// manifest that serializes and parses back to the same JSON, never crash.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "common/crypto/ed25519.h"
#include "common/manifest/model_manifest.h"
#include "common/manifest/signed_manifest.h"

namespace {

struct Keys {
  std::unique_ptr<fedcustoms::crypto::Ed25519Signer> signer;
  std::unique_ptr<fedcustoms::crypto::Ed25519Verifier> verifier;
};

Keys MakeKeys() {
  const std::string dir =
      std::filesystem::temp_directory_path() / ("fuzz_manifest_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  if (!fedcustoms::crypto::GenerateEd25519KeyPair(dir + "/k", dir + "/k.pub").ok()) std::abort();
  Keys keys;
  auto signer = fedcustoms::crypto::Ed25519Signer::Create(dir + "/k");
  auto verifier = fedcustoms::crypto::Ed25519Verifier::Create(dir + "/k.pub");
  std::filesystem::remove_all(dir);
  if (!signer.ok() || !verifier.ok()) std::abort();
  keys.signer = *std::move(signer);
  keys.verifier = *std::move(verifier);
  return keys;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Keys keys = MakeKeys();
  if (size < 64) return 0;
  const std::string signature(reinterpret_cast<const char*>(data), 64);
  const std::string json(reinterpret_cast<const char*>(data) + 64, size - 64);

  // Forged: refused unless the fuzzer found our key's signature of this JSON.
  if (fedcustoms::manifest::VerifyManifest({json, signature}, *keys.verifier, "fuzz").ok() &&
      keys.signer->Sign(json) != signature) {
    std::abort();
  }

  // Genuinely signed: the parser's turn.
  auto manifest =
      fedcustoms::manifest::VerifyManifest({json, keys.signer->Sign(json)}, *keys.verifier, "fuzz");
  if (!manifest.ok()) return 0;
  const std::string printed = fedcustoms::manifest::ToJson(*manifest);
  auto again = fedcustoms::manifest::ParseManifest(printed, "printed");
  if (!again.ok() || fedcustoms::manifest::ToJson(*again) != printed) std::abort();
  return 0;
}
