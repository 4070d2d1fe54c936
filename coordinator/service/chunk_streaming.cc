#include "coordinator/service/chunk_streaming.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/crypto/sha256.h"
#include "common/process/crash_point.h"
#include "common/tensor/chunker.h"

namespace fedcustoms::coordinator {

absl::Status StreamFile(const std::string& path, grpc::ServerWriter<v1::DataChunk>* writer,
                        const std::optional<std::string>& known_sha256,
                        StreamWatchdog::Lease* lease) {
  // A failed Write: the receiver went away, or stopped reading until the
  // watchdog cancelled the stream.
  auto went_away = [&] {
    if (lease != nullptr && lease->expired()) {
      return absl::DeadlineExceededError("the receiver stopped reading; stream cancelled");
    }
    return absl::CancelledError("client went away mid-stream");
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::NotFoundError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    return absl::InternalError(absl::StrCat("cannot stat ", path, ": ", std::strerror(errno)));
  }
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  const uint64_t expected_bytes = static_cast<uint64_t>(info.st_size);
  std::optional<crypto::Sha256> hasher;
  if (!known_sha256) hasher.emplace();
  v1::DataChunk chunk;
  std::string* data = chunk.mutable_data();
  uint64_t index = 0;
  uint64_t total = 0;
  while (true) {
    data->resize(tensor::kMaxChunkBytes);
    size_t filled = 0;
    while (filled < data->size()) {
      const ssize_t n = ::read(fd, data->data() + filled, data->size() - filled);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        return absl::InternalError(absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
      }
      if (n == 0) break;
      filled += static_cast<size_t>(n);
    }
    if (filled == 0) break;
    data->resize(filled);
    if (hasher) hasher->Update(data->data(), filled);
    total += filled;
    chunk.set_index(index++);
    if (!writer->Write(chunk)) return went_away();
    if (lease != nullptr) lease->Touch();
    process::CrashPoint("coordinator.broadcast");
  }
  if (total != expected_bytes) {
    return absl::InternalError(absl::StrCat(path, " changed while it was sent: ", total,
                                            " bytes, expected ", expected_bytes));
  }
  v1::DataChunk last;
  last.set_index(index);
  if (known_sha256) {
    last.set_sha256(*known_sha256);
  } else {
    const crypto::Sha256Digest digest = hasher->Final();
    last.set_sha256(std::string(digest.begin(), digest.end()));
  }
  last.set_total_bytes(total);
  if (!writer->Write(last)) return went_away();
  return absl::OkStatus();
}

}  // namespace fedcustoms::coordinator
