#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/sync_stream.h>

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "fedcustoms/v1/transfer.pb.h"

namespace fedcustoms::coordinator {

// Streams a payload produced by `read` (fills up to max bytes, returns 0 at the
// end) as DataChunks of at most 1 MiB, the last one carrying the SHA-256 and
// total size. Memory is one chunk whatever the payload size. Fails if the
// client goes away or the byte count differs from `expected_bytes`.
absl::Status StreamChunks(const std::function<size_t(char*, size_t)>& read,
                          uint64_t expected_bytes, grpc::ServerWriter<v1::DataChunk>* writer);

// Streams a file the same way.
absl::Status StreamFile(const std::string& path, grpc::ServerWriter<v1::DataChunk>* writer);

}  // namespace fedcustoms::coordinator
