#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/sync_stream.h>

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "coordinator/service/stream_watchdog.h"
#include "fedcustoms/v1/transfer.pb.h"

namespace fedcustoms::coordinator {

// Streams the file at `path` as DataChunks of at most 1 MiB, the last one
// carrying the SHA-256 and total size. Memory is one chunk whatever the file
// size. When the file's SHA-256 is already known (`known_sha256`, 32 raw
// bytes, e.g. computed when the file was written) it is sent as is instead of
// hashing the file again; the receiver checks it either way. Fails if the
// client goes away or the file changes size while it is sent.
// `lease` (optional) is touched after every chunk the receiver took; when the
// watchdog cancelled the stream for idling the error says so.
absl::Status StreamFile(const std::string& path, grpc::ServerWriter<v1::DataChunk>* writer,
                        const std::optional<std::string>& known_sha256 = std::nullopt,
                        StreamWatchdog::Lease* lease = nullptr);

}  // namespace fedcustoms::coordinator
