#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/sync_stream.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "fedcustoms/v1/transfer.pb.h"

namespace fedcustoms::tensor {

// Reads a DataChunk stream into `path` (atomically: a temp file renamed into
// place only when the stream is complete and its SHA-256 matches), accepting at
// most `max_bytes`. Returns the payload's hex SHA-256. Used for models (node)
// and weights files (analyst pull). The error names what went wrong: a gap in
// chunk indexes, a SHA-256 mismatch, a stream without its final chunk.
absl::StatusOr<std::string> ReceiveToFile(grpc::ClientReaderInterface<v1::DataChunk>* reader,
                                          const std::string& path, uint64_t max_bytes);

}  // namespace fedcustoms::tensor
