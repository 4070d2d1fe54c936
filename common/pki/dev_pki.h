#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/pki/certificate_authority.h"
#include "fedcustoms/v1/config.pb.h"

namespace fedcustoms::pki {

// A development PKI for one federation, as `fedcustoms certs init` writes it.
// Every certificate's role is its subject OU (see Role in peer_identity.h).
//
//   ca.pem / ca.key                 self-signed CA (CN="fedcustoms development CA")
//   coordinator.pem / .key          OU=coordinator, CN=coordinator, serverAuth+clientAuth,
//                                   SAN DNS:localhost, IP:127.0.0.1, IP:::1
//   <CODE>.pem / .key               OU=node, CN=<CODE>, clientAuth, one per administration
//   analyst.pem / .key              OU=analyst, CN=analyst, clientAuth
//   admin.pem / .key                OU=admin, CN=admin, clientAuth
//   coordinator-signing.key / .pub  Ed25519 key pair that signs model manifests
//
// TLS keys are ECDSA P-256. Private keys are unencrypted PKCS#8 PEM, mode 0600.
// Not for production: the CA key sits next to the certificates it signs.
struct DevPkiOptions {
  // Output directory; created (mode 0700) if missing.
  std::string dir;
  // Administration codes, e.g. {"EE", "FI", "LV"}: see ValidateAdministrationCodes().
  std::vector<std::string> admins;
  // Replace an existing CA. Without it InitDevPki refuses to touch a directory
  // that already holds ca.pem or ca.key, because every certificate signed by
  // the old CA would stop being accepted.
  bool force = false;
  int ca_validity_days = 3650;
  int leaf_validity_days = 365;
};

// Checks that `codes` is a non-empty list of 2 to 8 characters of [A-Z0-9]
// each, without duplicates, and none that would clash with the other files
// (CA, ADMIN, ANALYST, COORDINATOR, compared without case).
// InvalidArgument naming the offending code otherwise.
absl::Status ValidateAdministrationCodes(const std::vector<std::string>& codes);

// Writes the development PKI described above into `options.dir`. Every file
// is written atomically; the CA is written last, so an interrupted run can
// simply be repeated. Errors: InvalidArgument for bad options,
// AlreadyExists if a CA is present and `force` is not set, else the failing
// path. Files of administrations from an earlier run are left in place.
absl::Status InitDevPki(const DevPkiOptions& options);

// The TLS files of `name` ("coordinator", "EE", "analyst", "admin", ...) in a
// PKI directory laid out as above: <pki_dir>/ca.pem, <name>.pem, <name>.key.
// Only builds the paths; nothing is read.
v1::TlsFiles IdentityFiles(const std::string& pki_dir, const std::string& name);

// `fedcustoms certs revoke`: a CRL signed by the CA in `dir` (ca.pem,
// ca.key) listing the certificates <dir>/<name>.pem, for the coordinator's
// tls.crl.
struct RevokeOptions {
  std::string dir;
  // Certificate names in `dir`, e.g. {"EE"} or {"analyst"}.
  std::vector<std::string> names;
  // Where the PEM CRL goes (atomically); default <dir>/crl.pem.
  std::string out;
  // A coordinator will not start with the list once this many days have
  // passed (one already running keeps enforcing it).
  int valid_days = 30;
};

// Writes the CRL. It replaces any earlier list: name every certificate that
// is still revoked. Errors name the file (a missing certificate or CA key, a
// certificate the CA did not issue) or the option.
absl::Status RevokeDevCertificates(const RevokeOptions& options);

}  // namespace fedcustoms::pki
