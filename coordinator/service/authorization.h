#pragma once

#include <grpcpp/grpcpp.h>

#include <initializer_list>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/pki/peer_identity.h"

namespace fedcustoms::coordinator {

// The caller's identity from its verified client certificate, if its role is
// one of `allowed`; otherwise PERMISSION_DENIED, logged with the caller's CN.
// Identity never comes from a request field.
absl::StatusOr<pki::PeerIdentity> Authorize(const grpc::ServerContext& context,
                                            std::initializer_list<pki::Role> allowed,
                                            std::string_view rpc);

// absl and gRPC share status codes; this carries code and message across.
grpc::Status ToGrpc(const absl::Status& status);

}  // namespace fedcustoms::coordinator
