#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/crypto/openssl_ptr.h"
#include "common/pki/peer_identity.h"

namespace fedcustoms::pki {

// Issues X.509 v3 certificates with the OpenSSL 3 API: the building blocks of
// the development PKI (dev_pki.h), and of tests that need bad certificates
// (another CA, expired, not yet valid, wrong role, weak key).

// A private key with its certificate.
struct KeyAndCertificate {
  crypto::EvpPkeyPtr key;
  crypto::X509Ptr cert;
};

enum class KeyType {
  kEcdsaP256,  // the default for everything
  kRsa2048,
  kRsa1024,  // too weak; only for tests that check it is refused
};

// What IssueCertificate() puts in a leaf certificate.
struct IssueOptions {
  // Subject CN; an empty string leaves the CN out (tests of that refusal).
  std::string common_name;
  // Written as the subject OU (see Role).
  Role role = Role::kNode;
  // For tests: write this OU instead of RoleName(role); "" leaves the OU out.
  std::optional<std::string> organizational_unit_override;
  // subjectAltName entries.
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
  // Validity relative to now; both may be negative (an expired certificate)
  // or both positive (one that is not valid yet). The default start is five
  // minutes in the past to tolerate clock skew between machines.
  int64_t not_before_offset_seconds = -300;
  int64_t not_after_offset_seconds = int64_t{365} * 24 * 3600;
  // extendedKeyUsage serverAuth / clientAuth. If both are false the extension
  // is left out (which OpenSSL treats as "any purpose").
  bool server_auth = false;
  bool client_auth = true;
  KeyType key_type = KeyType::kEcdsaP256;
};

// Generates a fresh self-signed CA: ECDSA P-256 key, subject
// "O=fedcustoms, CN=<common_name>", critical basicConstraints CA:TRUE with
// pathlen 0, keyUsage keyCertSign+cRLSign, subject key identifier; valid from
// five minutes ago for `validity`.
absl::StatusOr<KeyAndCertificate> GenerateCa(const std::string& common_name,
                                             std::chrono::seconds validity);

// Generates a key of `options.key_type` and a certificate for it signed by
// `ca` (SHA-256): subject "O=fedcustoms, OU=<role>, CN=<common_name>",
// critical basicConstraints CA:FALSE, critical keyUsage digitalSignature (plus
// keyEncipherment for RSA), extendedKeyUsage and subjectAltName from
// `options`, subject and authority key identifiers, a random 159-bit serial.
// InvalidArgument for an IP address that does not parse. `ca` is only read.
absl::StatusOr<KeyAndCertificate> IssueCertificate(const KeyAndCertificate& ca,
                                                   const IssueOptions& options);

// Writes `pair.key` as unencrypted PKCS#8 PEM to `key_path` (mode 0600) and
// `pair.cert` as PEM to `cert_path` (mode 0644), each atomically, key first.
// Existing files are replaced. Errors name the path.
absl::Status WritePemFiles(const KeyAndCertificate& pair, const std::string& cert_path,
                           const std::string& key_path);

// The inverse: reads a PEM certificate (the first of the file) and its
// unencrypted PEM private key. Errors name the path; InvalidArgument when
// the key does not belong to the certificate.
absl::StatusOr<KeyAndCertificate> ReadPemFiles(const std::string& cert_path,
                                               const std::string& key_path);

}  // namespace fedcustoms::pki
