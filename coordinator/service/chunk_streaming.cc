#include "coordinator/service/chunk_streaming.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
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
  tensor::ChunkProducer producer(
      [fd, &path](char* dst, size_t max) -> absl::StatusOr<size_t> {
        while (true) {
          const ssize_t n = ::read(fd, dst, max);
          if (n >= 0) return static_cast<size_t>(n);
          if (errno != EINTR) {
            return absl::InternalError(
                absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
          }
        }
      },
      {.known_sha256 = known_sha256});
  v1::DataChunk chunk;
  while (producer.Next(&chunk)) {
    const bool last = !chunk.sha256().empty();
    // Checked before the final message: a file that changed is never sealed.
    if (last && producer.total_bytes() != expected_bytes) {
      return absl::InternalError(
          absl::StrCat(path, " changed while it was sent: ", producer.total_bytes(),
                       " bytes, expected ", expected_bytes));
    }
    if (!writer->Write(chunk)) return went_away();
    if (last) return absl::OkStatus();
    if (lease != nullptr) lease->Touch();
    process::CrashPoint("coordinator.broadcast");
  }
  return producer.status();
}

}  // namespace fedcustoms::coordinator
