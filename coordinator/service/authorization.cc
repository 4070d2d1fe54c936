#include "coordinator/service/authorization.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/log/logging.h"

namespace fedcustoms::coordinator {

void Authorizer::SetRevocationList(std::shared_ptr<const pki::RevocationList> revoked) {
  absl::MutexLock lock(&mu_);
  revoked_ = std::move(revoked);
}

absl::Status Authorizer::CheckNotRevoked(std::string_view cert_pem) const {
  std::shared_ptr<const pki::RevocationList> revoked;
  {
    absl::MutexLock lock(&mu_);
    revoked = revoked_;
  }
  return revoked == nullptr ? absl::OkStatus() : revoked->Check(cert_pem);
}

absl::StatusOr<AuthorizedCall> Authorizer::Authorize(const grpc::ServerContext& context,
                                                     std::initializer_list<pki::Role> allowed,
                                                     std::string_view rpc) const {
  // Debian's abseil has its own string_view: convert explicitly.
  const std::string rpc_name(rpc);
  absl::StatusOr<std::string> pem = pki::PeerCertificatePem(context);
  absl::StatusOr<pki::PeerIdentity> peer =
      pem.ok()
          ? pki::PeerIdentityFromPem(*pem, absl::StrCat("client certificate of ", context.peer()))
          : absl::StatusOr<pki::PeerIdentity>(pem.status());
  if (!peer.ok()) {
    spdlog::warn("{} refused: no usable client certificate from {}: {}", rpc, context.peer(),
                 peer.status().message());
    return absl::UnauthenticatedError(
        absl::StrCat(rpc_name, ": no usable client certificate: ", peer.status().message()));
  }
  std::shared_ptr<const pki::RevocationList> revoked;
  {
    absl::MutexLock lock(&mu_);
    revoked = revoked_;
  }
  if (revoked != nullptr) {
    if (absl::Status s = revoked->Check(*pem); !s.ok()) {
      spdlog::warn("{} refused: {}", rpc, s.message());
      return absl::Status(s.code(), absl::StrCat(rpc_name, ": ", s.message()));
    }
  }
  if (std::find(allowed.begin(), allowed.end(), peer->role) == allowed.end()) {
    spdlog::warn("{} refused: {} has role {}", rpc, peer->common_name, pki::RoleName(peer->role));
    return absl::PermissionDeniedError(absl::StrCat(rpc_name, " is not allowed for role ",
                                                    std::string(pki::RoleName(peer->role)),
                                                    " (caller ", peer->common_name, ")"));
  }
  AuthorizedCall call;
  static_cast<pki::PeerIdentity&>(call) = *std::move(peer);
  if (limiter_ != nullptr) {
    absl::StatusOr<PeerCallLimiter::Ticket> ticket =
        limiter_->Acquire(absl::StrCat(pki::RoleName(call.role), " ", call.common_name), rpc_name);
    if (!ticket.ok()) {
      // A flood is refused quietly: one line per refusal would be a second flood.
      return ticket.status();
    }
    call.ticket = *std::move(ticket);
  }
  return call;
}

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

}  // namespace fedcustoms::coordinator
