#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/crypto/openssl_ptr.h"
#include "common/secagg/key_agreement.h"

namespace fedcustoms::secagg {

// The public keys a node advertises for one round of secure aggregation: one
// X25519 key to agree pairwise mask seeds, one to encrypt the shares it sends.
// They are signed with the node's certificate key and checked by every other
// node against the federation CA, so a coordinator that relays them cannot
// substitute its own keys (the signed-key variant of Bonawitz et al. 2017).
struct AdvertisedKeys {
  std::string task;
  uint64_t round_id = 0;
  std::string node;  // the signer's certificate CN
  X25519PublicKey mask_key{};
  X25519PublicKey cipher_key{};
};

// The exact bytes that are signed: a fixed label, then each field prefixed by
// its length, so no two different advertisements share a payload.
std::string AdvertisementPayload(const AdvertisedKeys& keys);

// Signs advertisements with the node's TLS private key (RSA-PSS with SHA-256
// for RSA keys, ECDSA with SHA-256 for EC keys, Ed25519 as is).
class KeyAdvertisementSigner {
 public:
  // Reads the PEM private key at `private_key_path` (the node's tls.key).
  static absl::StatusOr<std::unique_ptr<KeyAdvertisementSigner>> Create(
      const std::string& private_key_path);
  absl::StatusOr<std::string> Sign(const AdvertisedKeys& keys) const;

 private:
  explicit KeyAdvertisementSigner(crypto::EvpPkeyPtr key) : key_(std::move(key)) {}
  crypto::EvpPkeyPtr key_;
};

// Checks another node's advertisement: its certificate chains to the
// federation CA (dates included), is a node certificate whose CN is the
// advertised node, and its key signed exactly these keys for this task and
// round. Every failure is PermissionDenied "keys advertised for <node>: ..."
// saying which check failed; a node refuses the round on any of them.
class KeyAdvertisementVerifier {
 public:
  // Reads the federation CA certificate(s) at `ca_cert_path`.
  static absl::StatusOr<std::unique_ptr<KeyAdvertisementVerifier>> Create(
      const std::string& ca_cert_path);
  absl::Status Verify(const AdvertisedKeys& keys, std::string_view cert_pem,
                      std::string_view signature) const;

 private:
  explicit KeyAdvertisementVerifier(std::vector<crypto::X509Ptr> cas) : cas_(std::move(cas)) {}
  std::vector<crypto::X509Ptr> cas_;
};

}  // namespace fedcustoms::secagg
