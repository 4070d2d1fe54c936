#pragma once

#include <openssl/x509.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/crypto/openssl_ptr.h"
#include "common/pki/certificate_authority.h"

namespace fedcustoms::pki {

// Certificates the federation's CA has revoked (a node's stolen laptop, an
// analyst who left), from a PEM X.509 CRL that CA signed. The coordinator
// loads it from tls.crl and refuses every call made with a listed
// certificate.
class RevocationList {
 public:
  // Reads the PEM CRL at `crl_path` and checks it against the CA
  // certificate(s) in `ca_cert_path`: issued by one of them, signature
  // valid, and not stale (its nextUpdate, when present, still ahead: an old
  // list could miss recent revocations, so it is refused rather than
  // trusted; a list that goes stale while the coordinator runs stays in
  // force until the restart that applies its renewal). InvalidArgument naming
  // the file otherwise; NotFound when a file is missing.
  static absl::StatusOr<std::shared_ptr<const RevocationList>> Load(
      const std::string& crl_path, const std::string& ca_cert_path);
  // The same checks on a PEM CRL held in memory; `crl_path` names where it
  // came from in errors (e.g. "the CRL relayed by the coordinator"), `cas`
  // are the CA certificates read from `ca_cert_path`.
  static absl::StatusOr<std::shared_ptr<const RevocationList>> Parse(
      std::string_view pem, const std::string& crl_path, const std::vector<crypto::X509Ptr>& cas,
      const std::string& ca_cert_path);

  ~RevocationList();
  RevocationList(const RevocationList&) = delete;
  RevocationList& operator=(const RevocationList&) = delete;

  // OK unless the first certificate in `cert_pem` is listed; then
  // Unauthenticated "certificate serial <hex> (<subject>) was revoked on
  // <date> (<crl path>)". A PEM without a certificate is InvalidArgument.
  absl::Status Check(std::string_view cert_pem) const;

  // "" while the list is current; once its nextUpdate has passed, that date
  // (the list may miss revocations made since).
  std::string StaleSince() const;

  // Number of revoked certificates listed.
  size_t size() const;

  // Whether this list was issued (its lastUpdate) strictly after `other`.
  bool IssuedAfter(const RevocationList& other) const;

 private:
  RevocationList(X509_CRL* crl, std::string path) : crl_(crl), path_(std::move(path)) {}

  X509_CRL* crl_;  // owned
  std::string path_;
};

// A PEM CRL signed by `ca` that lists `revoked` (revocation time now) and
// asks to be renewed within `next_update`: what `fedcustoms certs revoke`
// writes, and what tests revoke with. `ca` and `revoked` are only read.
absl::StatusOr<std::string> MakeRevocationListPem(const KeyAndCertificate& ca,
                                                  const std::vector<X509*>& revoked,
                                                  std::chrono::seconds next_update);

}  // namespace fedcustoms::pki
