#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/crypto/openssl_ptr.h"

namespace fedcustoms::pki {

// Verifies `chain` (leaf first, then any intermediates) against the trusted
// `cas` for an X509 purpose (X509_PURPOSE_SSL_CLIENT, X509_PURPOSE_SSL_SERVER),
// at the current time: signatures, validity dates, CA constraints, key usage.
// FailedPrecondition "certificate <subject> does not verify against
// <cas_name>: <OpenSSL reason>" (e.g. "unable to get local issuer
// certificate" for another CA, "certificate has expired"). Used by TLS set-up and by secure
// aggregation, where a node checks the certificate another node signed its keys with.
absl::Status VerifyCertificateChain(const std::vector<crypto::X509Ptr>& cas,
                                    const std::vector<crypto::X509Ptr>& chain, int purpose,
                                    const std::string& cas_name);

// The subject of a certificate in OpenSSL's one-line form, for messages.
std::string SubjectOf(X509* cert);

}  // namespace fedcustoms::pki
