#include "coordinator/service/chunk_streaming.h"

#include <fstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/crypto/sha256.h"
#include "common/tensor/chunker.h"

namespace fedcustoms::coordinator {

absl::Status StreamChunks(const std::function<size_t(char*, size_t)>& read,
                          uint64_t expected_bytes, grpc::ServerWriter<v1::DataChunk>* writer) {
  crypto::Sha256 hasher;
  v1::DataChunk chunk;
  std::string* data = chunk.mutable_data();
  uint64_t index = 0;
  uint64_t total = 0;
  while (true) {
    data->resize(tensor::kMaxChunkBytes);
    size_t n = read(data->data(), data->size());
    if (n == 0) break;
    data->resize(n);
    hasher.Update(data->data(), n);
    total += n;
    chunk.set_index(index++);
    if (!writer->Write(chunk)) return absl::CancelledError("client went away mid-stream");
  }
  if (total != expected_bytes) {
    return absl::InternalError(
        absl::StrCat("streamed ", total, " bytes but expected ", expected_bytes));
  }
  v1::DataChunk last;
  last.set_index(index);
  std::array<uint8_t, 32> digest = hasher.Final();
  last.set_sha256(std::string(digest.begin(), digest.end()));
  last.set_total_bytes(total);
  if (!writer->Write(last)) return absl::CancelledError("client went away mid-stream");
  return absl::OkStatus();
}

absl::Status StreamFile(const std::string& path, grpc::ServerWriter<v1::DataChunk>* writer) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  const uint64_t size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  return StreamChunks(
      [&](char* dst, size_t max) {
        in.read(dst, static_cast<std::streamsize>(max));
        return static_cast<size_t>(in.gcount());
      },
      size, writer);
}

}  // namespace fedcustoms::coordinator
