#pragma once

#include <cstdint>
#include <string>

namespace fedcustoms::bench {

// Reference for bench/transfer: throughput in MB/s of a bare TLS 1.3 stream
// over loopback between two threads of this process (OpenSSL SSL_write to
// SSL_read of `bytes` bytes in 1 MiB writes, mutual TLS with the same
// certificates, no HTTP/2, no gRPC, no application work). It is the ceiling
// any TLS transport can reach on this machine with both cores; -1 on failure.
double RawTlsLoopbackMBps(const std::string& pki_dir, uint64_t bytes);

}  // namespace fedcustoms::bench
