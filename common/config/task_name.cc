#include "common/config/task_name.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"

namespace fedcustoms::config {

absl::Status CheckTaskName(std::string_view name) {
  const bool valid =
      !name.empty() && name.size() <= 64 && name[0] >= 'a' && name[0] <= 'z' &&
      std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
      });
  if (valid) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "\"", std::string(name),
      "\" is not a task name: 1..64 of a-z, 0-9, - and _, starting with a letter, e.g. \"risk\", "
      "\"anomaly\", \"xray\""));
}

}  // namespace fedcustoms::config
