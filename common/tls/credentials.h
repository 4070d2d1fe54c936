#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "common/tls/peer_certificate_verifier.h"
#include "common/tls/require_tls13.h"
#include "fedcustoms/v1/config.pb.h"

namespace grpc {
class ChannelArguments;
class ChannelCredentials;
class ServerBuilder;
class ServerCredentials;
}  // namespace grpc

namespace fedcustoms::tls {

// No gRPC message is larger than this (DESIGN.md: models travel in chunks).
inline constexpr int kMaxMessageBytes = 4 << 20;

// Mutual-TLS credentials from the PEM files named in a TlsFiles message.
//
// Both functions read and check the files before handing them to gRPC, so a
// misconfiguration is reported at startup with the file's path instead of as
// a failed handshake later: each path set and readable; ca_cert holds only CA
// certificates; cert holds a certificate (chain) and key an unencrypted
// private key that matches it; the key is ECDSA P-256/P-384/P-521, Ed25519 or
// RSA of at least 2048 bits; and the certificate verifies against ca_cert now
// (signature, validity period, and server resp. client usage). A key file
// readable by group or others is logged as a warning.
//
// Both first make TLS 1.3 only process-wide (RequireTls13(); mains call it
// earlier too, before any other TLS object exists).

// Server side: presents `files.cert` and requires every client to present a
// certificate that verifies against `files.ca_cert` (else the handshake
// fails). Read the caller's identity with pki::PeerIdentityFromContext().
// `check_client`, when set, runs on each client's leaf certificate inside
// the handshake (the coordinator refuses revoked certificates there, so they
// reach no service at all).
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const v1::TlsFiles& files, PeerCertificateCheck check_client = nullptr);

// Client side: presents `files.cert`, and accepts only a server whose
// certificate verifies against `files.ca_cert` and passes
// CheckCoordinatorCertificate(): every client of ours talks to the
// coordinator, and to nothing else.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const v1::TlsFiles& files);

// The client's check of the server inside the handshake: the certificate has
// the coordinator role (a node's or analyst's certificate from the same CA
// is refused, even one with server usage) and names the host of the dialled
// `target_name` (an IP literal by an IP subjectAltName, a name by a DNS one;
// never by the subject CN). A target without a host is refused.
// Unauthenticated naming the certificate's subject otherwise.
absl::Status CheckCoordinatorCertificate(std::string_view leaf_pem, std::string_view target_name);

// HTTP/2 settings for bulk model transfer, used by both ends: frames of up to
// 1 MiB instead of 16 KiB and a larger per-stream receive window, so a 1 MiB
// chunk crosses in few frames without waiting for window updates.
inline constexpr int kHttp2MaxFrameBytes = 1 << 20;
inline constexpr int kHttp2StreamLookaheadBytes = 8 << 20;

// Channel arguments with send and receive limits of kMaxMessageBytes and the
// HTTP/2 transfer settings above.
grpc::ChannelArguments DefaultChannelArguments();
// The same settings for a server.
void ApplyServerArguments(grpc::ServerBuilder& builder);

}  // namespace fedcustoms::tls
