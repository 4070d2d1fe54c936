#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace fedcustoms::tools {

// A child process (coordinator or node in the demo and the tests) with stdout
// and stderr going to a log file. Killed with SIGKILL if still running when
// destroyed, so a failing demo never leaves processes behind.
class ChildProcess {
 public:
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Spawn(const std::vector<std::string>& argv,
                                                             const std::string& log_path);
  ~ChildProcess();

  // Exit code if it has exited (128 + signal when killed), without blocking.
  std::optional<int> Poll();
  // Blocks until exit; returns the exit code.
  int Wait();
  // Waits up to `timeout` for exit; the exit code, or nothing if still running.
  std::optional<int> WaitFor(std::chrono::milliseconds timeout);
  // Sends `signal` (SIGTERM by default).
  void Signal(int signal);
  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }

 private:
  ChildProcess(pid_t pid, std::string log_path) : pid_(pid), log_path_(std::move(log_path)) {}
  pid_t pid_;
  std::string log_path_;
  std::optional<int> exit_code_;
};

// Directory of the running executable (to find the sibling binaries).
std::string ExecutableDir();

}  // namespace fedcustoms::tools
