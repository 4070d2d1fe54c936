#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace fedcustoms::io {

// Streams a new version of the file at `path`: bytes go to a sibling
// temporary file "<path>.tmp.<pid>.<n>" (created with O_EXCL and exactly
// `mode`; the umask does not apply), and Commit() fsyncs it, renames it over
// `path` and fsyncs the directory. Until Commit() succeeds `path` is untouched;
// a writer destroyed without Commit() removes its temporary file. Errors name
// the path and the failing system call.
class AtomicFileWriter {
 public:
  AtomicFileWriter() = default;
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  // Creates the temporary file. The directory must exist.
  absl::Status Open(const std::string& path, mode_t mode = 0644);
  absl::Status Write(std::string_view bytes);
  // Makes the new content visible at `path`, durably.
  absl::Status Commit();
  // Drops the temporary file; `path` keeps its old content (if any).
  void Abandon();

 private:
  std::string path_;
  std::string temp_;
  int fd_ = -1;
};

// Makes a complete file written by other means (e.g. received from a stream)
// visible at `path` as AtomicFileWriter::Commit() does: fsyncs `temp`, renames
// it over `path`, fsyncs the directory. On failure `temp` is removed and
// `path` keeps its old content.
absl::Status PublishFile(const std::string& temp, const std::string& path);

// Replaces the file at `path` with `contents` so that a reader (or a crash)
// sees either the old file or the complete new one, never a partial write.
//
// Writes to a sibling temporary file "<path>.tmp.<pid>.<n>" created with
// O_EXCL and exactly `mode` (the umask does not apply, so a private key written
// with 0600 is never readable by others, not even briefly), fsyncs it, renames
// it over `path` and fsyncs the directory. The directory must exist.
// Thread-safe; concurrent writers of the same path each succeed and the last
// rename wins. On failure the temporary file is removed, `path` is unchanged,
// and the error names the path and the failing system call.
absl::Status WriteFileAtomically(const std::string& path, std::string_view contents,
                                 mode_t mode = 0644);

// Appends `text` (whole lines) to the file at `path`, created 0600 when
// missing, and returns only once it is durable: the file is fsynced, and its
// directory too when the file is new. A short write (a full disk) is cut
// back so that no half line is left for the next append. Errors name the
// path and the failing system call. For append-only records (a node's
// contribution records).
absl::Status AppendDurably(const std::string& path, std::string_view text);

// Returns the whole content of the regular file at `path`. Errors name the
// path: NotFound if it does not exist, PermissionDenied if it cannot be read,
// FailedPrecondition if it is not a regular file.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// Whether `dir` can take `bytes` more: ResourceExhausted when its file system
// has fewer bytes available (statvfs), FailedPrecondition when a probe file
// cannot be created, written, fsynced and removed there (a read-only mount,
// missing permission, a full disk that statvfs did not see). Errors name the
// directory and what was found.
absl::Status CheckWritableSpace(const std::string& dir, uint64_t bytes);

}  // namespace fedcustoms::io
