#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/crypto/openssl_ptr.h"

namespace fedcustoms::crypto {

inline constexpr size_t kEd25519SignatureBytes = 64;

// Signs messages with an Ed25519 private key (the coordinator's manifest key).
// Immutable after Create(); Sign() is thread-safe.
class Ed25519Signer {
 public:
  // Loads the unencrypted PEM private key at `private_key_path`. Errors name
  // the path: missing or unreadable file, not PEM, encrypted, or a key that is
  // not Ed25519 (e.g. an EC key given by mistake).
  static absl::StatusOr<std::unique_ptr<Ed25519Signer>> Create(const std::string& private_key_path);
  // Same from PEM text; `source` names it in errors. `pem` is not retained.
  static absl::StatusOr<std::unique_ptr<Ed25519Signer>> FromPem(std::string_view pem,
                                                                const std::string& source);

  // Returns the 64-byte raw signature of `message` (RFC 8032, pure Ed25519).
  // Signing with a loaded Ed25519 key cannot fail short of memory exhaustion,
  // which aborts the process with a message.
  std::string Sign(std::string_view message) const;

  // SubjectPublicKeyInfo PEM of the public key, as Ed25519Verifier reads it.
  const std::string& PublicKeyPem() const { return public_key_pem_; }

 private:
  Ed25519Signer(EvpPkeyPtr key, std::string public_key_pem)
      : key_(std::move(key)), public_key_pem_(std::move(public_key_pem)) {}

  // Constant after construction.
  const EvpPkeyPtr key_;
  const std::string public_key_pem_;
};

// Verifies Ed25519 signatures against one public key. Immutable after
// Create(); Verify() is thread-safe.
class Ed25519Verifier {
 public:
  // Loads the PEM public key ("BEGIN PUBLIC KEY") at `public_key_path`; errors
  // name the path, including a key that is not Ed25519.
  static absl::StatusOr<std::unique_ptr<Ed25519Verifier>> Create(
      const std::string& public_key_path);
  // Same from PEM text; `source` names the key in this verifier's errors.
  static absl::StatusOr<std::unique_ptr<Ed25519Verifier>> FromPem(std::string_view pem,
                                                                  const std::string& source);

  // OK if `signature` (64 raw bytes) is a valid signature of `message`.
  // Otherwise Unauthenticated, saying whether the length was wrong or the
  // signature does not match, and naming the key's source.
  absl::Status Verify(std::string_view message, std::string_view signature) const;

 private:
  Ed25519Verifier(EvpPkeyPtr key, std::string source)
      : key_(std::move(key)), source_(std::move(source)) {}

  // Constant after construction.
  const EvpPkeyPtr key_;
  const std::string source_;
};

// Generates a fresh Ed25519 key pair and writes the unencrypted PKCS#8 private
// key to `private_key_path` (mode 0600 from the moment it exists) and the
// public key to `public_key_path` (mode 0644), each atomically. Existing files
// are replaced. Errors name the path.
absl::Status GenerateEd25519KeyPair(const std::string& private_key_path,
                                    const std::string& public_key_path);

}  // namespace fedcustoms::crypto
