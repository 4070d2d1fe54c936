#include "tools/cli/command.h"

#include <spdlog/spdlog.h>

#include "absl/strings/str_split.h"
#include "common/log/logging.h"

namespace fedcustoms::tools {

int ExitCode(const absl::Status& status) {
  if (status.ok()) return 0;
  spdlog::error("{}", status.message());
  return 1;
}

std::vector<std::string> SplitCodes(const std::string& list) {
  return absl::StrSplit(list, ',', absl::SkipEmpty());
}

}  // namespace fedcustoms::tools
