#pragma once
// A fresh directory per test object, removed with it, and a file's mode bits:
// shared by the tests that write keys, certificates and atomic files.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace fedcustoms::testing_support {

// <test temp dir>/fedcustoms-<tag>-XXXXXX, created by the constructor (path()
// is empty if that failed) and removed with everything in it by the
// destructor.
class TempDir {
 public:
  explicit TempDir(const std::string& tag = "test") {
    std::string pattern = testing::TempDir() + "fedcustoms-" + tag + "-XXXXXX";
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// The permission bits of `path` (e.g. 0600), or 0 when it cannot be stat'ed.
inline mode_t ModeOf(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

}  // namespace fedcustoms::testing_support
