#include "common/pki/peer_identity.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/auth_context.h>
#include <grpcpp/server_context.h>

#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/crypto/openssl_ptr.h"
#include "common/crypto/pem.h"

namespace fedcustoms::pki {
namespace {

constexpr Role kAllRoles[] = {Role::kNode, Role::kAnalyst, Role::kAdmin, Role::kCoordinator};

// The single value of attribute `nid` in `name`, as UTF-8.
absl::StatusOr<std::string> SingleAttribute(X509_NAME* name, int nid, const char* label,
                                            const std::string& source) {
  const int index = X509_NAME_get_index_by_NID(name, nid, -1);
  if (index < 0) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": subject has no ", label));
  }
  if (X509_NAME_get_index_by_NID(name, nid, index) >= 0) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": subject has more than one ", label));
  }
  ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  unsigned char* utf8 = nullptr;
  const int length = ASN1_STRING_to_UTF8(&utf8, data);
  if (length < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": subject ", label, " is not a valid string"));
  }
  crypto::OpenSslMallocPtr<unsigned char> owned(utf8);
  std::string value(reinterpret_cast<const char*>(utf8), static_cast<size_t>(length));
  if (value.empty() || value.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": subject ", label, " is empty or contains a NUL byte"));
  }
  return value;
}

}  // namespace

const char* RoleName(Role role) {
  switch (role) {
    case Role::kNode:
      return "node";
    case Role::kAnalyst:
      return "analyst";
    case Role::kAdmin:
      return "admin";
    case Role::kCoordinator:
      return "coordinator";
  }
  return "unknown";
}

absl::StatusOr<Role> ParseRole(std::string_view name) {
  for (Role role : kAllRoles) {
    if (name == RoleName(role)) return role;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown role \"", std::string(name), "\" (expected node, analyst, admin or coordinator)"));
}

absl::StatusOr<PeerIdentity> PeerIdentityFromCertificate(X509* cert, const std::string& source) {
  X509_NAME* subject = X509_get_subject_name(cert);
  if (subject == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": certificate has no subject"));
  }
  absl::StatusOr<std::string> cn = SingleAttribute(subject, NID_commonName, "CN", source);
  if (!cn.ok()) return cn.status();
  absl::StatusOr<std::string> ou =
      SingleAttribute(subject, NID_organizationalUnitName, "OU (the role)", source);
  if (!ou.ok()) return ou.status();
  absl::StatusOr<Role> role = ParseRole(*ou);
  if (!role.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, " (CN=", *cn, "): OU carries the role: ", role.status().message()));
  }
  return PeerIdentity{*std::move(cn), *role};
}

absl::StatusOr<PeerIdentity> PeerIdentityFromPem(std::string_view cert_pem,
                                                 const std::string& source) {
  absl::StatusOr<std::vector<crypto::X509Ptr>> certs =
      crypto::CertificatesFromPem(cert_pem, source);
  if (!certs.ok()) return certs.status();
  return PeerIdentityFromCertificate(certs->front().get(), source);
}

absl::StatusOr<std::string> PeerCertificatePem(const grpc::ServerContextBase& context) {
  const std::string peer = context.peer();
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth == nullptr) {
    return absl::UnauthenticatedError(absl::StrCat(peer, ": call has no security context"));
  }
  std::vector<grpc::string_ref> transport =
      auth->FindPropertyValues(GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME);
  // "tls" from gRPC's TlsCredentials (ours), "ssl" from SslCredentials: both
  // are X.509 over the same TLS stack.
  const std::string_view type =
      transport.size() == 1 ? std::string_view(transport[0].data(), transport[0].size()) : "";
  if (type != GRPC_TLS_TRANSPORT_SECURITY_TYPE && type != GRPC_SSL_TRANSPORT_SECURITY_TYPE) {
    return absl::UnauthenticatedError(absl::StrCat(peer, ": call did not come over TLS"));
  }
  std::vector<grpc::string_ref> pems = auth->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (pems.empty()) {
    return absl::UnauthenticatedError(absl::StrCat(peer, ": no client certificate"));
  }
  if (pems.size() > 1) {
    return absl::UnauthenticatedError(absl::StrCat(peer, ": more than one client certificate"));
  }
  return std::string(pems[0].data(), pems[0].size());
}

absl::StatusOr<PeerIdentity> PeerIdentityFromContext(const grpc::ServerContextBase& context) {
  absl::StatusOr<std::string> pem = PeerCertificatePem(context);
  if (!pem.ok()) return pem.status();
  return PeerIdentityFromPem(*pem, absl::StrCat("client certificate of ", context.peer()));
}

}  // namespace fedcustoms::pki
