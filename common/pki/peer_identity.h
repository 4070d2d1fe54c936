#pragma once

#include <openssl/types.h>

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace grpc {
class ServerContextBase;
}  // namespace grpc

namespace fedcustoms::pki {

// What a certificate holder may do. The role is carried in the certificate as
// the subject's organizationalUnitName (OU), spelled as RoleName() returns it:
// OU=node, OU=analyst, OU=admin or OU=coordinator. It is never taken from a
// request field. The CA signs the OU, so a holder cannot change it.
enum class Role { kNode, kAnalyst, kAdmin, kCoordinator };

// "node", "analyst", "admin", "coordinator" (a static string).
const char* RoleName(Role role);

// Inverse of RoleName(); exact, lower-case match. InvalidArgument naming the
// unknown value and the known ones otherwise.
absl::StatusOr<Role> ParseRole(std::string_view name);

// Who is on the other end of a mutual-TLS connection.
struct PeerIdentity {
  // Subject CN: the administration code for a node (e.g. "EE"), else the
  // holder's name ("analyst", "admin", "coordinator").
  std::string common_name;
  Role role = Role::kNode;
};

// Identity from a certificate: the subject's single CN and single OU.
// InvalidArgument naming `source` if there is no CN or OU, more than one of
// either, a value that is not clean UTF-8 text, or an OU that is not a role.
// The certificate is not verified here; the TLS stack has done that.
absl::StatusOr<PeerIdentity> PeerIdentityFromCertificate(X509* cert, const std::string& source);

// Same, from the first certificate of a PEM string (the leaf).
absl::StatusOr<PeerIdentity> PeerIdentityFromPem(std::string_view cert_pem,
                                                 const std::string& source = "peer certificate");

// Identity of the caller of a gRPC method, from the client certificate that
// the TLS handshake verified (auth context property "x509_pem_cert"). Fails
// closed: Unauthenticated if the call did not come over TLS, or carries no or
// several client certificates; the errors above for an unusable certificate.
// Only meaningful on a server built with tls::MakeServerCredentials(), which
// requires and verifies client certificates. Takes the common base of the
// synchronous grpc::ServerContext and the callback API's contexts.
absl::StatusOr<PeerIdentity> PeerIdentityFromContext(const grpc::ServerContextBase& context);

// The PEM client certificate that PeerIdentityFromContext() reads, with the
// same checks (TLS, exactly one certificate).
absl::StatusOr<std::string> PeerCertificatePem(const grpc::ServerContextBase& context);

}  // namespace fedcustoms::pki
