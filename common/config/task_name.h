#pragma once

#include <string_view>

#include "absl/status/status.h"

namespace fedcustoms::config {

// OK when `name` can name a task: 1..64 of a-z, 0-9, '-' and '_', starting
// with a letter. Task names become directory and file names in the registry,
// the coordinator's state and the node's work_dir, so nothing else is taken.
// The error says what is allowed (the caller adds file and field).
absl::Status CheckTaskName(std::string_view name);

}  // namespace fedcustoms::config
