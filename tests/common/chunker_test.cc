#include "common/tensor/chunker.h"

#include <gtest/gtest.h>
#include <openssl/sha.h>

#include <algorithm>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"

namespace fedcustoms::tensor {
namespace {

std::string Sha256Of(std::string_view bytes) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof(digest));
}

std::string Payload(size_t size) {
  std::string s(size, '\0');
  for (size_t i = 0; i < size; ++i) s[i] = static_cast<char>((i * 131 + 7) % 251);
  return s;
}

// Cuts `payload` into chunks of `chunk` bytes.
std::vector<std::string> Split(const std::string& payload, size_t chunk) {
  std::vector<std::string> pieces;
  for (size_t at = 0; at < payload.size(); at += chunk) pieces.push_back(payload.substr(at, chunk));
  return pieces;
}

// A source that hands out `bytes` in reads of at most `step` bytes.
ChunkProducer::Source SourceOf(const std::string& bytes, size_t step) {
  auto offset = std::make_shared<size_t>(0);
  return [&bytes, step, offset](char* dst, size_t max) {
    const size_t n = std::min({max, step, bytes.size() - *offset});
    std::copy_n(bytes.data() + *offset, n, dst);
    *offset += n;
    return n;
  };
}

TEST(Chunker, ChunkLimitKeepsMessagesFarBelowGrpcDefault) {
  EXPECT_EQ(kMaxChunkBytes, 1u << 20);
  EXPECT_LT(kMaxChunkBytes, 4u << 20);
}

TEST(Chunker, AssemblesInOrderChunksAndVerifiesSha) {
  const std::string payload = Payload(10000);
  std::ostringstream sink;
  ChunkAssembler assembler(&sink, 1 << 20);
  const std::vector<std::string> pieces = Split(payload, 3000);
  for (size_t i = 0; i < pieces.size(); ++i) ASSERT_TRUE(assembler.Add(i, pieces[i]).ok());
  ASSERT_TRUE(assembler.Add(pieces.size(), "").ok());  // the final message carries no data
  absl::Status finish = assembler.Finish(Sha256Of(payload), payload.size());
  ASSERT_TRUE(finish.ok()) << finish;
  EXPECT_TRUE(assembler.finished());
  EXPECT_EQ(sink.str(), payload);
  EXPECT_EQ(assembler.total_bytes(), payload.size());
  EXPECT_EQ(assembler.chunk_count(), pieces.size() + 1);
  EXPECT_EQ(assembler.sha256(), Sha256Of(payload));
}

TEST(Chunker, ProducerAndAssemblerRoundTripWhateverTheSourceReadSize) {
  for (size_t size :
       {size_t{0}, size_t{1}, kMaxChunkBytes - 1, kMaxChunkBytes, 2 * kMaxChunkBytes + 5}) {
    for (size_t step : {size_t{7}, size_t{65536}, kMaxChunkBytes}) {
      SCOPED_TRACE(testing::Message() << "size " << size << " step " << step);
      const std::string payload = Payload(size);
      ChunkProducer producer(SourceOf(payload, step));
      std::ostringstream sink;
      ChunkAssembler assembler(&sink, 4 * kMaxChunkBytes);
      v1::DataChunk chunk;
      size_t messages = 0;
      while (producer.Next(&chunk)) {
        ASSERT_LE(chunk.data().size(), kMaxChunkBytes);
        ASSERT_TRUE(assembler.Accept(chunk).ok());
        ++messages;
      }
      ASSERT_TRUE(producer.status().ok());
      EXPECT_TRUE(assembler.finished());
      EXPECT_EQ(sink.str(), payload);
      // Full chunks regardless of the read size, then the final message.
      EXPECT_EQ(messages, (size + kMaxChunkBytes - 1) / kMaxChunkBytes + 1);
      EXPECT_EQ(producer.total_bytes(), size);
    }
  }
}

TEST(Chunker, LastMessageCarriesShaAndTotalAndNoData) {
  const std::string payload = Payload(100);
  ChunkProducer producer(SourceOf(payload, 100), {.chunk_bytes = 40});
  std::vector<v1::DataChunk> chunks;
  v1::DataChunk chunk;
  while (producer.Next(&chunk)) chunks.push_back(chunk);
  ASSERT_EQ(chunks.size(), 4u);
  for (size_t i = 0; i < chunks.size(); ++i) EXPECT_EQ(chunks[i].index(), i);
  EXPECT_TRUE(chunks[0].sha256().empty());
  EXPECT_TRUE(chunks[2].sha256().empty());
  EXPECT_EQ(chunks[2].data().size(), 20u);
  EXPECT_TRUE(chunks[3].data().empty());
  EXPECT_EQ(chunks[3].sha256(), Sha256Of(payload));
  EXPECT_EQ(chunks[3].total_bytes(), 100u);
  EXPECT_FALSE(producer.Next(&chunk));
}

TEST(ChunkerErrors, KnownShaOfTheWrongSizeSendsNothing) {
  const std::string payload = Payload(10);
  ChunkProducer producer(SourceOf(payload, 10), {.known_sha256 = std::string()});
  v1::DataChunk chunk;
  EXPECT_FALSE(producer.Next(&chunk));
  EXPECT_EQ(producer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(producer.status().message(), "known SHA-256 has 0 bytes, not 32");
}

TEST(Chunker, KnownShaIsSentAsIsAndTheReceiverChecksIt) {
  const std::string payload = Payload(5000);
  const std::string wrong(kSha256Bytes, 'x');
  for (const std::string& known : {Sha256Of(payload), wrong}) {
    ChunkProducer producer(SourceOf(payload, 5000), {.known_sha256 = known});
    std::ostringstream sink;
    ChunkAssembler assembler(&sink, 1 << 20);
    v1::DataChunk chunk;
    absl::Status accepted;
    while (producer.Next(&chunk) && accepted.ok()) accepted = assembler.Accept(chunk);
    EXPECT_EQ(chunk.sha256(), known);
    if (known == wrong) {
      EXPECT_EQ(accepted.code(), absl::StatusCode::kDataLoss) << accepted;
    } else {
      EXPECT_TRUE(accepted.ok()) << accepted;
      EXPECT_TRUE(assembler.finished());
    }
  }
}

// Tests of all the error paths follow.

TEST(ChunkerErrors, FailingSourceEndsTheStreamUnsealed) {
  int reads = 0;
  ChunkProducer producer(
      [&reads](char* dst, size_t max) -> absl::StatusOr<size_t> {
        if (++reads > 2) return absl::DataLossError("cannot read model.fct: I/O error");
        std::fill_n(dst, std::min<size_t>(max, 10), 'a');
        return std::min<size_t>(max, 10);
      },
      {.chunk_bytes = 10});
  v1::DataChunk chunk;
  std::vector<v1::DataChunk> sent;
  while (producer.Next(&chunk)) sent.push_back(chunk);
  ASSERT_EQ(sent.size(), 2u);
  for (const v1::DataChunk& c : sent) EXPECT_TRUE(c.sha256().empty());
  EXPECT_EQ(producer.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(producer.status().message(), "cannot read model.fct: I/O error");
  EXPECT_FALSE(producer.Next(&chunk));
}

void ExpectError(const absl::Status& status, absl::StatusCode code, const std::string& message) {
  EXPECT_EQ(status.code(), code) << status;
  EXPECT_EQ(status.message(), message);
}

TEST(ChunkerErrors, FirstChunkMustBeZero) {
  std::ostringstream sink;
  ChunkAssembler assembler(&sink, 1000);
  ExpectError(assembler.Add(1, "x"), absl::StatusCode::kInvalidArgument,
              "chunk 1 out of order: expected 0");
}

TEST(ChunkerErrors, GapIsOutOfOrder) {
  std::ostringstream sink;
  ChunkAssembler assembler(&sink, 1000);
  for (uint64_t i = 0; i < 4; ++i) ASSERT_TRUE(assembler.Add(i, "ab").ok());
  ExpectError(assembler.Add(5, "ab"), absl::StatusCode::kInvalidArgument,
              "chunk 5 out of order: expected 4");
}

TEST(ChunkerErrors, DuplicateIsOutOfOrder) {
  std::ostringstream sink;
  ChunkAssembler assembler(&sink, 1000);
  ASSERT_TRUE(assembler.Add(0, "ab").ok());
  ExpectError(assembler.Add(0, "ab"), absl::StatusCode::kInvalidArgument,
              "chunk 0 out of order: expected 1");
  EXPECT_EQ(sink.str(), "ab");
}

TEST(ChunkerErrors, ShaMismatch) {
  std::ostringstream sink;
  ChunkAssembler assembler(&sink, 1000);
  ASSERT_TRUE(assembler.Add(0, "hello").ok());
  const absl::Status status = assembler.Finish(Sha256Of("hellO"), 5);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StartsWith(status.message(), "SHA-256 mismatch: received 2cf24dba")) << status;
  EXPECT_FALSE(assembler.finished());
}

TEST(ChunkerErrors, FlippedByteInTransitIsCaught) {
  const std::string payload = Payload(5000);
  std::string corrupt = payload;
  corrupt[4321] ^= 0x10;
  std::ostringstream sink;
  ChunkAssembler assembler(&sink, 1 << 20);
  ASSERT_TRUE(assembler.Add(0, corrupt).ok());
  EXPECT_EQ(assembler.Finish(Sha256Of(payload), payload.size()).code(),
            absl::StatusCode::kDataLoss);
}

TEST(ChunkerErrors, SizeMismatch) {
  std::ostringstream sink;
  ChunkAssembler assembler(&sink, 1000);
  ASSERT_TRUE(assembler.Add(0, "hello").ok());
  ExpectError(assembler.Finish(Sha256Of("hello"), 6), absl::StatusCode::kDataLoss,
              "payload size mismatch: received 5 bytes, sender says 6");
}

TEST(ChunkerErrors, PayloadCap) {
  std::ostringstream sink;
  ChunkAssembler assembler(&sink, 10);
  ASSERT_TRUE(assembler.Add(0, "123456").ok());
  ASSERT_TRUE(assembler.Add(1, "7890").ok());  // exactly at the cap
  ExpectError(assembler.Add(2, "x"), absl::StatusCode::kResourceExhausted,
              "payload exceeds 10 bytes");
  EXPECT_EQ(sink.str(), "1234567890");  // nothing past the cap was written
}

TEST(ChunkerErrors, OversizedChunk) {
  std::ostringstream sink;
  ChunkAssembler assembler(&sink, 10 * kMaxChunkBytes);
  ExpectError(assembler.Add(0, std::string(kMaxChunkBytes + 1, 'x')),
              absl::StatusCode::kInvalidArgument, "chunk 0 has 1048577 bytes, more than 1048576");
}

TEST(ChunkerErrors, BadExpectedShaLength) {
  std::ostringstream sink;
  ChunkAssembler assembler(&sink, 10);
  ExpectError(assembler.Finish(std::string(31, 'x'), 0), absl::StatusCode::kInvalidArgument,
              "expected SHA-256 has 31 bytes, not 32");
}

TEST(ChunkerErrors, ErrorsAreSticky) {
  std::ostringstream sink;
  ChunkAssembler assembler(&sink, 1000);
  const absl::Status first = assembler.Add(3, "x");
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(assembler.Add(0, "x"), first);
  EXPECT_EQ(assembler.Finish(Sha256Of(""), 0), first);
  EXPECT_EQ(sink.str(), "");
}

TEST(ChunkerErrors, ChunkAfterFinish) {
  std::ostringstream sink;
  ChunkAssembler assembler(&sink, 1000);
  ASSERT_TRUE(assembler.Add(0, "").ok());
  ASSERT_TRUE(assembler.Finish(Sha256Of(""), 0).ok());
  ExpectError(assembler.Add(1, "x"), absl::StatusCode::kFailedPrecondition,
              "chunk after the end of the stream");
}

TEST(ChunkerErrors, SinkFailure) {
  std::ostringstream sink;
  sink.setstate(std::ios::badbit);
  ChunkAssembler assembler(&sink, 1000);
  ExpectError(assembler.Add(0, "x"), absl::StatusCode::kDataLoss, "cannot write payload to sink");
}

// DataChunk.index is uint64: an int64 -1 from a hostile peer arrives as
// 2^64 - 1, and any index far ahead is just out of order; nothing is written.
TEST(ChunkerErrors, HugeOrNegativeIndexIsOutOfOrder) {
  std::ostringstream sink;
  ChunkAssembler assembler(&sink, 1000);
  ExpectError(assembler.Add(std::numeric_limits<uint64_t>::max(), "x"),
              absl::StatusCode::kInvalidArgument,
              "chunk 18446744073709551615 out of order: expected 0");
  EXPECT_EQ(sink.str(), "");

  std::ostringstream sink2;
  ChunkAssembler second(&sink2, 1000);
  ASSERT_TRUE(second.Add(0, "ab").ok());
  ExpectError(second.Add(uint64_t{1} << 40, "cd"), absl::StatusCode::kInvalidArgument,
              "chunk 1099511627776 out of order: expected 1");
  EXPECT_EQ(sink2.str(), "ab");
}

}  // namespace
}  // namespace fedcustoms::tensor
