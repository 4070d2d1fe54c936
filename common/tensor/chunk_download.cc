#include "common/tensor/chunk_download.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/crypto/sha256.h"
#include "common/io/atomic_file.h"
#include "common/tensor/chunker.h"

namespace fedcustoms::tensor {

absl::StatusOr<std::string> ReceiveToFile(grpc::ClientReaderInterface<v1::DataChunk>* reader,
                                          const std::string& path, uint64_t max_bytes) {
  const std::string temp = absl::StrCat(path, ".part.", ::getpid());
  auto fail = [&](absl::Status status) {
    std::error_code ec;
    std::filesystem::remove(temp, ec);
    return status;
  };
  std::ofstream out(temp, std::ios::binary | std::ios::trunc);
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", temp));
  tensor::ChunkAssembler assembler(&out, max_bytes);
  v1::DataChunk chunk;
  bool finished = false;
  std::string sha_hex;
  while (reader->Read(&chunk)) {
    if (finished) return fail(absl::DataLossError("data after the final SHA-256 chunk"));
    if (absl::Status s = assembler.Add(chunk.index(), chunk.data()); !s.ok()) return fail(s);
    if (!chunk.sha256().empty()) {
      if (absl::Status s = assembler.Finish(chunk.sha256(), chunk.total_bytes()); !s.ok()) {
        return fail(s);
      }
      sha_hex = crypto::ToHex(chunk.sha256());
      finished = true;
    }
  }
  grpc::Status status = reader->Finish();
  if (!status.ok()) {
    return fail(
        absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message()));
  }
  if (!finished) return fail(absl::DataLossError("stream ended without its final SHA-256 chunk"));
  out.flush();
  out.close();
  if (!out) return fail(absl::InternalError(absl::StrCat("cannot write ", temp, " (disk full?)")));
  // Durable before it is visible: a crash never leaves a torn file at `path`.
  if (absl::Status s = io::PublishFile(temp, path); !s.ok()) return fail(s);
  return sha_hex;
}

}  // namespace fedcustoms::tensor
