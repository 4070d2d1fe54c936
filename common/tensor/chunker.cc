#include "common/tensor/chunker.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <array>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace fedcustoms::tensor {
namespace {

// The OpenSSL error queue as text (emptied), for messages.
std::string DrainOpenSslErrors() {
  std::string text;
  while (unsigned long code = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof(buffer));
    if (!text.empty()) text += "; ";
    text += buffer;
  }
  return text.empty() ? "unknown OpenSSL error" : text;
}

std::unique_ptr<EVP_MD_CTX, EvpMdCtxDeleter> NewSha256(absl::Status* status) {
  std::unique_ptr<EVP_MD_CTX, EvpMdCtxDeleter> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    *status = absl::InternalError(absl::StrCat("SHA-256 init failed: ", DrainOpenSslErrors()));
    ctx.reset();
  }
  return ctx;
}

}  // namespace

void EvpMdCtxDeleter::operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }

// ---------------------------------------------------------------------------

ChunkAssembler::ChunkAssembler(std::ostream* sink, uint64_t max_total_bytes)
    : sink_(sink), max_total_bytes_(max_total_bytes), ctx_(NewSha256(&error_)) {}

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
    if (EVP_DigestUpdate(ctx_.get(), bytes.data(), bytes.size()) != 1) {
      return Fail(
          absl::InternalError(absl::StrCat("SHA-256 update failed: ", DrainOpenSslErrors())));
    }
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
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest;
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(ctx_.get(), digest.data(), &length) != 1 || length != kSha256Bytes) {
    return Fail(absl::InternalError(absl::StrCat("SHA-256 final failed: ", DrainOpenSslErrors())));
  }
  const absl::string_view actual(reinterpret_cast<const char*>(digest.data()), length);
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

ChunkProducer::ChunkProducer(Source source, size_t chunk_bytes)
    : source_(std::move(source)),
      chunk_bytes_(chunk_bytes == 0 || chunk_bytes > kMaxChunkBytes ? kMaxChunkBytes : chunk_bytes),
      ctx_(NewSha256(&status_)) {}

ChunkProducer::~ChunkProducer() = default;

bool ChunkProducer::Next(v1::DataChunk* chunk) {
  if (done_ || !status_.ok()) return false;
  chunk->Clear();
  chunk->set_index(index_++);
  std::string* data = chunk->mutable_data();
  data->resize(chunk_bytes_);
  size_t filled = 0;
  // Fill the chunk fully unless the source ends, so chunk sizes do not depend
  // on how the source happens to split its reads.
  while (filled < chunk_bytes_) {
    const size_t n = source_(data->data() + filled, chunk_bytes_ - filled);
    if (n == 0) break;
    filled += n;
  }
  data->resize(filled);
  if (filled > 0) {
    if (EVP_DigestUpdate(ctx_.get(), data->data(), filled) != 1) {
      status_ = absl::InternalError(absl::StrCat("SHA-256 update failed: ", DrainOpenSslErrors()));
      return false;
    }
    total_ += filled;
    if (filled == chunk_bytes_) return true;
  }
  // The source is exhausted: this message is the last one.
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest;
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(ctx_.get(), digest.data(), &length) != 1) {
    status_ = absl::InternalError(absl::StrCat("SHA-256 final failed: ", DrainOpenSslErrors()));
    return false;
  }
  chunk->set_sha256(reinterpret_cast<const char*>(digest.data()), length);
  chunk->set_total_bytes(total_);
  done_ = true;
  return true;
}

}  // namespace fedcustoms::tensor
