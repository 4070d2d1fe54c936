#include "common/tensor/chunker.h"

#include <openssl/crypto.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace fedcustoms::tensor {

ChunkAssembler::ChunkAssembler(std::ostream* sink, uint64_t max_total_bytes)
    : sink_(sink), max_total_bytes_(max_total_bytes) {}

ChunkAssembler::~ChunkAssembler() = default;

absl::Status ChunkAssembler::Fail(absl::Status status) {
  error_ = status;
  return status;
}

absl::Status ChunkAssembler::Add(uint64_t index, std::string_view bytes) {
  if (!error_.ok()) return error_;
  if (finished_) return absl::FailedPreconditionError("chunk after the end of the stream");
  if (index != next_index_) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("chunk ", index, " out of order: expected ", next_index_)));
  }
  if (bytes.size() > kMaxChunkBytes) {
    return Fail(absl::InvalidArgumentError(absl::StrCat("chunk ", index, " has ", bytes.size(),
                                                        " bytes, more than ", kMaxChunkBytes)));
  }
  // Only the final chunk may be empty: a stream of empty chunks would never
  // reach the payload cap and never end.
  if (bytes.empty() && ++empty_chunks_ > 1) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("chunk ", index, " is empty; only the final chunk may be")));
  }
  if (bytes.size() > max_total_bytes_ - total_) {
    return Fail(
        absl::ResourceExhaustedError(absl::StrCat("payload exceeds ", max_total_bytes_, " bytes")));
  }
  if (!bytes.empty()) {
    hasher_.Update(bytes.data(), bytes.size());
    sink_->write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!*sink_) return Fail(absl::DataLossError("cannot write payload to sink"));
  }
  total_ += bytes.size();
  ++next_index_;
  return absl::OkStatus();
}

absl::Status ChunkAssembler::Finish(std::string_view expected_sha256, uint64_t expected_total) {
  if (!error_.ok()) return error_;
  if (finished_) return absl::FailedPreconditionError("stream already finished");
  if (expected_sha256.size() != kSha256Bytes) {
    return Fail(absl::InvalidArgumentError(absl::StrCat(
        "expected SHA-256 has ", expected_sha256.size(), " bytes, not ", kSha256Bytes)));
  }
  if (expected_total != total_) {
    return Fail(absl::DataLossError(absl::StrCat("payload size mismatch: received ", total_,
                                                 " bytes, sender says ", expected_total)));
  }
  const crypto::Sha256Digest digest = hasher_.Final();
  const absl::string_view actual(reinterpret_cast<const char*>(digest.data()), digest.size());
  // Both digests are public; a constant-time compare costs nothing, though.
  if (CRYPTO_memcmp(actual.data(), expected_sha256.data(), kSha256Bytes) != 0) {
    return Fail(absl::DataLossError(absl::StrCat(
        "SHA-256 mismatch: received ", absl::BytesToHexString(actual), ", sender says ",
        absl::BytesToHexString(
            absl::string_view(expected_sha256.data(), expected_sha256.size())))));
  }
  sink_->flush();
  if (!*sink_) return Fail(absl::DataLossError("cannot write payload to sink"));
  digest_ = std::string(actual.data(), actual.size());
  finished_ = true;
  return absl::OkStatus();
}

absl::Status ChunkAssembler::Accept(const v1::DataChunk& chunk) {
  if (absl::Status s = Add(chunk.index(), chunk.data()); !s.ok()) return s;
  if (chunk.sha256().empty()) return absl::OkStatus();
  return Finish(chunk.sha256(), chunk.total_bytes());
}

// ---------------------------------------------------------------------------

ChunkProducer::ChunkProducer(Source source, Options options)
    : source_(std::move(source)),
      chunk_bytes_(options.chunk_bytes == 0 || options.chunk_bytes > kMaxChunkBytes
                       ? kMaxChunkBytes
                       : options.chunk_bytes),
      known_sha256_(std::move(options.known_sha256)) {
  if (known_sha256_ && known_sha256_->size() != kSha256Bytes) {
    status_ = absl::InvalidArgumentError(
        absl::StrCat("known SHA-256 has ", known_sha256_->size(), " bytes, not ", kSha256Bytes));
  }
}

ChunkProducer::~ChunkProducer() = default;

bool ChunkProducer::Next(v1::DataChunk* chunk) {
  if (done_ || !status_.ok()) return false;
  // The chunk's own buffer is reused (Clear keeps its capacity): one chunk of
  // memory per stream. Filled fully unless the source ends, so chunk sizes do
  // not depend on how the source happens to split its reads.
  chunk->Clear();
  std::string* data = chunk->mutable_data();
  data->resize(chunk_bytes_);
  size_t filled = 0;
  while (!data_done_ && filled < chunk_bytes_) {
    absl::StatusOr<size_t> n = source_(data->data() + filled, chunk_bytes_ - filled);
    if (!n.ok()) {
      status_ = n.status();
      chunk->Clear();
      return false;
    }
    if (*n == 0) data_done_ = true;
    filled += *n;
  }
  data->resize(filled);
  chunk->set_index(index_++);
  if (filled > 0) {
    if (!known_sha256_) hasher_.Update(data->data(), filled);
    total_ += filled;
    return true;
  }
  // The source is exhausted: this message is the last one.
  if (known_sha256_) {
    chunk->set_sha256(*known_sha256_);
  } else {
    const crypto::Sha256Digest digest = hasher_.Final();
    chunk->set_sha256(reinterpret_cast<const char*>(digest.data()), digest.size());
  }
  chunk->set_total_bytes(total_);
  done_ = true;
  return true;
}

}  // namespace fedcustoms::tensor
