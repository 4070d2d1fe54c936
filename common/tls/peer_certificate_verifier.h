#pragma once

#include <grpcpp/security/tls_certificate_verifier.h>

#include <functional>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace fedcustoms::tls {

// A check of the peer's certificate made inside the TLS handshake, after gRPC
// has verified the peer's chain against the CA. It gets the leaf certificate
// as PEM and, on the client side, the target the channel dialled ("host" or
// "host:port"; empty on the server side). A non-OK status fails the handshake,
// so the peer reaches no service at all: health checking and reflection
// included, which have no handler of ours to refuse them.
using PeerCertificateCheck =
    std::function<absl::Status(std::string_view leaf_pem, std::string_view target_name)>;

// gRPC's hook for PeerCertificateCheck. Synchronous: the check must be quick
// (a parse and a lookup), as it runs on gRPC's handshake thread.
class PeerCertificateVerifier final : public grpc::experimental::ExternalCertificateVerifier {
 public:
  // `side` names this end in log lines ("coordinator", "client").
  PeerCertificateVerifier(std::string side, PeerCertificateCheck check)
      : side_(std::move(side)), check_(std::move(check)) {}

  // Runs the check; a refusal is logged (with the reason, never a key) and
  // returned as UNAUTHENTICATED, which fails the handshake.
  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)> callback, grpc::Status* sync_status) override;

  // Nothing to cancel: Verify() never goes asynchronous.
  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest*) override {}

 private:
  const std::string side_;
  const PeerCertificateCheck check_;
};

}  // namespace fedcustoms::tls
