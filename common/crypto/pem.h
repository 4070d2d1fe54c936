#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/crypto/openssl_ptr.h"

namespace fedcustoms::crypto {

// PEM encoding and decoding of keys and certificates, in memory. Every
// function that parses takes `source` (a file path or a peer) and names it in
// its errors together with the drained OpenSSL error queue.

// Parses the first private key (PKCS#8 or traditional) in `pem`. Encrypted keys
// are refused: nothing ever prompts for a passphrase. InvalidArgument if `pem`
// is not PEM or holds no private key.
absl::StatusOr<EvpPkeyPtr> PrivateKeyFromPem(std::string_view pem, const std::string& source);

// Parses the first public key (SubjectPublicKeyInfo, "BEGIN PUBLIC KEY") in `pem`.
absl::StatusOr<EvpPkeyPtr> PublicKeyFromPem(std::string_view pem, const std::string& source);

// Parses every certificate in `pem`, in order (a leaf followed by its chain, or
// a CA bundle). InvalidArgument if there is none or one is malformed.
absl::StatusOr<std::vector<X509Ptr>> CertificatesFromPem(std::string_view pem,
                                                         const std::string& source);

// Unencrypted PKCS#8 PEM of a private key. The result is a secret: wipe it
// with WipeString() when done.
std::string PrivateKeyToPem(EVP_PKEY* key);
// SubjectPublicKeyInfo PEM of the public half of `key`.
std::string PublicKeyToPem(EVP_PKEY* key);
std::string CertificateToPem(X509* cert);

// A short human description of a key type, e.g. "ED25519", "EC P-256", "RSA 2048".
std::string KeyTypeName(const EVP_PKEY* key);

// Overwrites the bytes of `secret` (OPENSSL_cleanse) and clears it.
void WipeString(std::string& secret);

}  // namespace fedcustoms::crypto
