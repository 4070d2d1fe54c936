#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/crypto/openssl_ptr.h"

namespace fedcustoms::secagg {

inline constexpr size_t kX25519KeyBytes = 32;
using X25519PublicKey = std::array<uint8_t, kX25519KeyBytes>;
// 32 bytes derived for one purpose between two parties.
using SharedKey = std::array<uint8_t, 32>;

// A per-round X25519 key pair. Secure aggregation gives each node two per
// round: one to agree pairwise mask seeds, one to encrypt the Shamir shares it
// sends. The private key stays in OpenSSL memory and is freed with the pair.
class X25519KeyPair {
 public:
  // A fresh key pair from OpenSSL's CSPRNG.
  static absl::StatusOr<X25519KeyPair> Generate();
  // A key pair from its 32 private bytes (e.g. reconstructed from shares to
  // recover a dropped node's pairwise masks).
  static absl::StatusOr<X25519KeyPair> FromPrivate(std::span<const uint8_t> private_key);

  const X25519PublicKey& public_key() const { return public_key_; }
  // The 32 private bytes, to be secret-shared. Handle with care: never log.
  absl::StatusOr<std::array<uint8_t, kX25519KeyBytes>> PrivateBytes() const;

  // X25519 with `their_public`, then HKDF-SHA-256 with `context` as the info
  // (e.g. "fedcustoms/v1 mask risk round 7 EE FI"): both sides derive the same
  // key, and keys for different purposes or rounds are independent. Refuses
  // an all-zero shared secret (a low-order public key).
  absl::StatusOr<SharedKey> Agree(const X25519PublicKey& their_public,
                                  std::string_view context) const;

 private:
  X25519KeyPair(crypto::EvpPkeyPtr key, const X25519PublicKey& public_key)
      : key_(std::move(key)), public_key_(public_key) {}

  crypto::EvpPkeyPtr key_;
  X25519PublicKey public_key_{};
};

// HKDF-SHA-256 (RFC 5869) of `secret` with an empty salt and `context` as info,
// 32 bytes out.
absl::StatusOr<SharedKey> HkdfSha256(std::span<const uint8_t> secret, std::string_view context);

}  // namespace fedcustoms::secagg
