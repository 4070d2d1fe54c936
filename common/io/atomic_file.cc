#include "common/io/atomic_file.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace fedcustoms::io {
namespace {

absl::Status ErrnoError(int error, const std::string& what, const std::string& path) {
  return absl::Status(absl::ErrnoToStatusCode(error),
                      absl::StrCat(path, ": ", what, ": ", std::strerror(error)));
}

// Closes the descriptor on scope exit unless released.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  // Closes now and reports close()'s result (a delayed write error shows here).
  int Close() {
    int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

std::string DirectoryOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

absl::Status WriteAll(int fd, std::string_view contents, const std::string& path) {
  const char* p = contents.data();
  size_t left = contents.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "write", path);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

// Renames a synced `temp` over `path` and fsyncs the directory so the rename
// itself survives a crash; removes `temp` if the rename fails.
absl::Status RenameDurably(const std::string& temp, const std::string& path) {
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    absl::Status s = ErrnoError(errno, absl::StrCat("cannot rename ", temp, " to it"), path);
    ::unlink(temp.c_str());
    return s;
  }
  const std::string dir = DirectoryOf(path);
  Fd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_fd.get() < 0) return ErrnoError(errno, "cannot open directory to fsync", dir);
  if (::fsync(dir_fd.get()) != 0) return ErrnoError(errno, "fsync directory", dir);
  return absl::OkStatus();
}

}  // namespace

absl::Status AppendDurably(const std::string& path, std::string_view text) {
  const bool existed = ::access(path.c_str(), F_OK) == 0;
  Fd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
  if (fd.get() < 0) return ErrnoError(errno, "open", path);
  const off_t size_before = ::lseek(fd.get(), 0, SEEK_END);
  if (absl::Status s = WriteAll(fd.get(), text, path); !s.ok()) {
    if (size_before >= 0 && ::ftruncate(fd.get(), size_before) != 0) {
      return absl::Status(s.code(), absl::StrCat(s.message(), "; and truncating it back failed"));
    }
    return s;
  }
  if (::fsync(fd.get()) != 0) return ErrnoError(errno, "fsync", path);
  if (fd.Close() != 0) return ErrnoError(errno, "close", path);
  if (!existed) {
    const std::string dir = DirectoryOf(path);
    Fd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir_fd.get() < 0) return ErrnoError(errno, "cannot open directory to fsync", dir);
    if (::fsync(dir_fd.get()) != 0) return ErrnoError(errno, "fsync directory", dir);
  }
  return absl::OkStatus();
}

AtomicFileWriter::~AtomicFileWriter() { Abandon(); }

absl::Status AtomicFileWriter::Open(const std::string& path, mode_t mode) {
  if (fd_ >= 0) return absl::FailedPreconditionError(absl::StrCat(path, ": writer already open"));
  static std::atomic<uint64_t> counter{0};
  path_ = path;
  temp_ =
      absl::StrCat(path, ".tmp.", ::getpid(), ".", counter.fetch_add(1, std::memory_order_relaxed));
  fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode & 0600);
  if (fd_ < 0) return ErrnoError(errno, "cannot create", temp_);
  // Created with at most owner read/write (whatever the umask); now set exactly `mode`.
  if (::fchmod(fd_, mode) != 0) {
    absl::Status s = ErrnoError(errno, "fchmod", temp_);
    Abandon();
    return s;
  }
  return absl::OkStatus();
}

absl::Status AtomicFileWriter::Write(std::string_view bytes) {
  if (fd_ < 0) return absl::FailedPreconditionError(absl::StrCat(path_, ": writer is not open"));
  return WriteAll(fd_, bytes, temp_);
}

absl::Status AtomicFileWriter::Commit() {
  if (fd_ < 0) return absl::FailedPreconditionError(absl::StrCat(path_, ": writer is not open"));
  absl::Status s;
  if (::fsync(fd_) != 0) s = ErrnoError(errno, "fsync", temp_);
  const int fd = std::exchange(fd_, -1);
  if (::close(fd) != 0 && s.ok()) s = ErrnoError(errno, "close", temp_);
  if (!s.ok()) {
    ::unlink(temp_.c_str());
    return s;
  }
  return RenameDurably(temp_, path_);
}

void AtomicFileWriter::Abandon() {
  if (fd_ < 0) return;
  ::close(std::exchange(fd_, -1));
  ::unlink(temp_.c_str());
}

absl::Status PublishFile(const std::string& temp, const std::string& path) {
  Fd fd(::open(temp.c_str(), O_RDONLY | O_CLOEXEC));
  absl::Status s;
  if (fd.get() < 0) {
    s = ErrnoError(errno, "cannot open", temp);
  } else if (::fsync(fd.get()) != 0) {
    s = ErrnoError(errno, "fsync", temp);
  }
  if (!s.ok()) {
    ::unlink(temp.c_str());
    return s;
  }
  return RenameDurably(temp, path);
}

absl::Status WriteFileAtomically(const std::string& path, std::string_view contents, mode_t mode) {
  AtomicFileWriter writer;
  if (absl::Status s = writer.Open(path, mode); !s.ok()) return s;
  if (absl::Status s = writer.Write(contents); !s.ok()) return s;
  return writer.Commit();
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoError(errno, "cannot open", path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoError(errno, "fstat", path);
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": not a regular file"));
  }
  std::string out;
  out.reserve(static_cast<size_t>(st.st_size));
  char buffer[1 << 16];
  while (true) {
    ssize_t n = ::read(fd.get(), buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "read", path);
    }
    if (n == 0) break;
    out.append(buffer, static_cast<size_t>(n));
  }
  // The file may be a private key; leave no copy on the stack.
  OPENSSL_cleanse(buffer, sizeof(buffer));
  return out;
}

absl::Status CheckWritableSpace(const std::string& dir, uint64_t bytes) {
  struct statvfs fs {};
  if (::statvfs(dir.c_str(), &fs) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(dir, " cannot be inspected (statvfs): ", std::strerror(errno)));
  }
  const uint64_t available = uint64_t{fs.f_bavail} * fs.f_frsize;
  if (available < bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat(dir, " has ", available >> 10, " KiB free, ", bytes >> 10, " KiB needed"));
  }
  // statvfs says nothing of a read-only mount as seen by root, so a small
  // file really goes through create, write, fsync and unlink.
  static std::atomic<uint64_t> counter{0};
  const std::string probe =
      absl::StrCat(dir, "/.write-probe.", ::getpid(), ".", counter.fetch_add(1));
  // `error`: the failing call's errno, saved before a close could change it.
  auto fail = [&](const char* call, int error = errno) {
    ::unlink(probe.c_str());
    return absl::FailedPreconditionError(
        absl::StrCat(dir, " is not writable (", call, "): ", std::strerror(error)));
  };
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return fail("open");
  static const char kBlock[4096] = {};
  errno = 0;
  const bool written = ::write(fd, kBlock, sizeof kBlock) == static_cast<ssize_t>(sizeof kBlock);
  if (!written) {
    const int error = errno == 0 ? ENOSPC : errno;  // a short write: the disk is full
    ::close(fd);
    return fail("write", error);
  }
  if (::fsync(fd) != 0) {
    const int error = errno;
    ::close(fd);
    return fail("fsync", error);
  }
  if (::close(fd) != 0) return fail("close");
  if (::unlink(probe.c_str()) != 0) return fail("unlink");
  return absl::OkStatus();
}

}  // namespace fedcustoms::io
