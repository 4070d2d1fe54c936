#pragma once

#include <grpcpp/grpcpp.h>

#include <initializer_list>
#include <memory>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/pki/peer_identity.h"
#include "common/pki/revocation_list.h"
#include "coordinator/service/peer_call_limiter.h"

namespace fedcustoms::coordinator {

// Who may call: every handler of the coordinator's services asks first.
// An authorized call: the caller's identity, and its slot among the calls
// that identity may have in progress, held until this object goes (handlers
// keep it for the whole call).
struct AuthorizedCall : pki::PeerIdentity {
  PeerCallLimiter::Ticket ticket;
};

class Authorizer {
 public:
  // `revoked`: the certificates to refuse (tls.crl); null when none is set.
  // `limiter`: the bound on each peer's calls in progress; null for none.
  // It must outlive the authorizer.
  explicit Authorizer(std::shared_ptr<const pki::RevocationList> revoked = nullptr,
                      PeerCallLimiter* limiter = nullptr)
      : revoked_(std::move(revoked)), limiter_(limiter) {}

  // Replaces the list in force (RevocationWatcher, when tls.crl changes);
  // calls already authorized are not affected.
  void SetRevocationList(std::shared_ptr<const pki::RevocationList> revoked);

  // The caller's identity from its verified client certificate, if that
  // certificate is not revoked (else UNAUTHENTICATED naming its serial), its
  // role is one of `allowed` (else PERMISSION_DENIED) and it has a free slot
  // among the calls in progress of its role and CN (else RESOURCE_EXHAUSTED
  // naming the limit). Refusals are logged with the caller's CN, but for the
  // limit's (a flood must not become a flood of log lines). Identity never
  // comes from a request field.
  // OK unless the certificate (PEM, leaf first) is on the list in force;
  // then Unauthenticated naming its serial. The TLS handshake's check.
  absl::Status CheckNotRevoked(std::string_view cert_pem) const;

  absl::StatusOr<AuthorizedCall> Authorize(const grpc::ServerContext& context,
                                           std::initializer_list<pki::Role> allowed,
                                           std::string_view rpc) const;

 private:
  mutable absl::Mutex mu_;
  std::shared_ptr<const pki::RevocationList> revoked_ ABSL_GUARDED_BY(mu_);
  PeerCallLimiter* const limiter_;
};

// absl and gRPC share status codes; this carries code and message across.
grpc::Status ToGrpc(const absl::Status& status);

}  // namespace fedcustoms::coordinator
