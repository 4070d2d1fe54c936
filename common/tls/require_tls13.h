#pragma once

#include "absl/status/status.h"

namespace fedcustoms::tls {

// Makes every TLS context that OpenSSL creates in this process from now on
// refuse protocol versions below TLS 1.3, on both the client and the server
// side, including the ones gRPC creates.
//
// Why this way: gRPC 1.51's C++ API has no minimum-version setting, and it
// sets the minimum to TLS 1.2 itself on each SSL_CTX. But Debian's gRPC uses
// the system libssl.so.3, which applies the "system_default" section of the
// OpenSSL ssl_conf module to every new SSL_CTX. This function loads such a
// configuration from memory (no file, no environment variable: child
// processes are not affected) that sets MinProtocol = TLSv1.3 and also
// disables TLS 1.2 and below through SSL_OP_NO_TLSv1_2 & co. ("Protocol =
// -ALL, TLSv1.3"), which gRPC's later SSL_CTX_set_min_proto_version() call
// does not undo. It then creates a probe SSL_CTX and checks the result.
//
// Call at the top of every main, before any gRPC or TLS object exists: SSL
// contexts created earlier keep their old settings, and the configuration is
// swapped without synchronization with other threads creating contexts.
// Idempotent and cheap after the first call (which is thread-safe); every
// call returns the first call's result. The "system_default" section replaces
// any from the system's openssl.cnf (Debian 12's has none). FailedPrecondition
// with OpenSSL's errors if the configuration cannot be applied or the probe
// still allows TLS 1.2.
absl::Status RequireTls13();

}  // namespace fedcustoms::tls
