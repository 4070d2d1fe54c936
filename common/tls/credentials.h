#pragma once

#include <memory>

#include "absl/status/statusor.h"
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
// TLS 1.3 only is process-wide: call RequireTls13() first.

// Server side: presents `files.cert` and requires every client to present a
// certificate that verifies against `files.ca_cert` (else the handshake
// fails). Read the caller's identity with pki::PeerIdentityFromContext().
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const v1::TlsFiles& files);

// Client side: presents `files.cert`, and accepts only a server whose
// certificate verifies against `files.ca_cert` and names the host of the
// channel's target (DNS or IP subjectAltName).
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const v1::TlsFiles& files);

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
