#pragma once

#include <grpcpp/grpcpp.h>

#include <initializer_list>
#include <memory>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/pki/peer_identity.h"
#include "common/pki/revocation_list.h"

namespace fedcustoms::coordinator {

// Who may call: every handler of the coordinator's services asks first.
class Authorizer {
 public:
  // `revoked`: the certificates to refuse (tls.crl); null when none is set.
  explicit Authorizer(std::shared_ptr<const pki::RevocationList> revoked = nullptr)
      : revoked_(std::move(revoked)) {}

  // The caller's identity from its verified client certificate, if that
  // certificate is not revoked (else UNAUTHENTICATED naming its serial) and
  // its role is one of `allowed` (else PERMISSION_DENIED); refusals are
  // logged with the caller's CN. Identity never comes from a request field.
  absl::StatusOr<pki::PeerIdentity> Authorize(const grpc::ServerContext& context,
                                              std::initializer_list<pki::Role> allowed,
                                              std::string_view rpc) const;

 private:
  const std::shared_ptr<const pki::RevocationList> revoked_;
};

// absl and gRPC share status codes; this carries code and message across.
grpc::Status ToGrpc(const absl::Status& status);

}  // namespace fedcustoms::coordinator
