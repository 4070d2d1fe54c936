#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/crypto/sha256.h"
#include "fedcustoms/v1/transfer.pb.h"

namespace fedcustoms::tensor {

// Large payloads (models, updates) travel as a stream of v1::DataChunk
// messages: data chunks with indices 0, 1, 2, ... of at most kMaxChunkBytes,
// then a last message (index n, usually without data) carrying the SHA-256 of
// all data bytes and their total size. Keeps every gRPC message far below
// gRPC's default 4 MiB limit. Torch-free: part of fedcustoms_core.
inline constexpr size_t kMaxChunkBytes = size_t{1} << 20;
inline constexpr size_t kSha256Bytes = crypto::kSha256Bytes;

// Receiving side: checks order and size of incoming chunks, hashes them
// incrementally and writes their bytes to a sink, so the payload never has to
// be held in memory.
//
// Usage:
//   ChunkAssembler assembler(&out, max_bytes);
//   for each received chunk c:
//     assembler.Add(c.index(), c.data());
//     if (!c.sha256().empty()) assembler.Finish(c.sha256(), c.total_bytes());
// or simply assembler.Accept(c) for each chunk, then check finished().
//
// Errors (all sticky: once a call failed, every later call returns the same
// status):
//   InvalidArgument  "chunk 5 out of order: expected 4" (gaps, duplicates,
//                    restarts), "chunk 3 has 2000000 bytes, more than 1048576",
//                    "expected SHA-256 has 31 bytes, not 32", "chunk 7 is empty;
//                    only the final chunk may be"
//   ResourceExhausted  "payload exceeds 1000 bytes"
//   DataLoss         "SHA-256 mismatch: ...", "payload size mismatch: received
//                    N bytes, sender says M", "cannot write payload to sink"
//   FailedPrecondition  "chunk after the end of the stream"
// Not thread-safe. The sink is not owned and must outlive the assembler.
class ChunkAssembler {
 public:
  // `sink` receives the payload bytes in order; `max_total_bytes` caps the
  // payload (checked before anything past the cap is written).
  ChunkAssembler(std::ostream* sink, uint64_t max_total_bytes);
  ~ChunkAssembler();

  ChunkAssembler(const ChunkAssembler&) = delete;
  ChunkAssembler& operator=(const ChunkAssembler&) = delete;

  // Appends chunk `index` (must be exactly the next index) with `bytes`
  // (at most kMaxChunkBytes; may be empty, as the last message usually is).
  absl::Status Add(uint64_t index, std::string_view bytes);

  // Ends the stream: flushes the sink and checks the total size and the
  // SHA-256 (32 raw bytes) of everything added.
  absl::Status Finish(std::string_view expected_sha256, uint64_t expected_total);

  // Add(chunk.index(), chunk.data()), then Finish() when the chunk carries a
  // SHA-256 (the last message of a stream).
  absl::Status Accept(const v1::DataChunk& chunk);

  // True once Finish() succeeded.
  bool finished() const { return finished_; }
  // Payload bytes added so far.
  uint64_t total_bytes() const { return total_; }
  // Chunks added so far (= the next expected index).
  uint64_t chunk_count() const { return next_index_; }
  // The verified SHA-256 (32 raw bytes); empty until finished().
  const std::string& sha256() const { return digest_; }

 private:
  absl::Status Fail(absl::Status status);

  // Constant after construction.
  std::ostream* const sink_;
  const uint64_t max_total_bytes_;

  crypto::Sha256 hasher_;
  absl::Status error_;
  uint64_t next_index_ = 0;
  uint32_t empty_chunks_ = 0;  // at most one: the final chunk
  uint64_t total_ = 0;
  bool finished_ = false;
  std::string digest_;
};

// Sending side, the one chunk sender of every stream (model downloads, update
// uploads): cuts the bytes produced by `source` into DataChunk messages of
// chunk_bytes each (only the last data chunk may be shorter), then produces a
// final message without data carrying the SHA-256 and total size. Memory is
// one chunk whatever the payload. Not thread-safe.
class ChunkProducer {
 public:
  // Fills at most `max` bytes at `dst` and returns how many; 0 means the end.
  // An error ends the stream without its final message, so a truncated
  // payload is never sealed as a whole one.
  using Source = std::function<absl::StatusOr<size_t>(char* dst, size_t max)>;

  struct Options {
    // Bytes per data chunk; 0 or above kMaxChunkBytes means kMaxChunkBytes.
    size_t chunk_bytes = kMaxChunkBytes;
    // The payload's SHA-256 (32 raw bytes) when the sender already knows it
    // (e.g. computed when the file was written): sent as is instead of
    // hashing the payload again. The receiver checks it either way.
    std::optional<std::string> known_sha256;
  };

  explicit ChunkProducer(Source source) : ChunkProducer(std::move(source), Options{}) {}
  ChunkProducer(Source source, Options options);
  ~ChunkProducer();

  ChunkProducer(const ChunkProducer&) = delete;
  ChunkProducer& operator=(const ChunkProducer&) = delete;

  // Fills `*chunk` with the next message and returns true. Returns false
  // after the final message was produced (leaving `*chunk` alone), or when
  // the source failed or known_sha256 is not 32 bytes (status() says why;
  // `*chunk` is then cleared: nothing to send). A short read from the source
  // does not end a chunk, only a read of 0 bytes.
  bool Next(v1::DataChunk* chunk);

  // OK unless the source failed or known_sha256 was not 32 bytes.
  const absl::Status& status() const { return status_; }
  // Payload bytes produced so far.
  uint64_t total_bytes() const { return total_; }

 private:
  // Constant after construction.
  const Source source_;
  const size_t chunk_bytes_;
  const std::optional<std::string> known_sha256_;

  crypto::Sha256 hasher_;
  absl::Status status_;
  uint64_t index_ = 0;
  uint64_t total_ = 0;
  bool data_done_ = false;
  bool done_ = false;
};

}  // namespace fedcustoms::tensor
