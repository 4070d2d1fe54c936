#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "fedcustoms/v1/config.pb.h"

namespace fedcustoms::coordinator {

// Reads a coordinator config (protobuf JSON, schema in proto/fedcustoms/v1/
// config.proto), fills documented defaults, resolves relative paths against
// the config file's directory, and checks every value. Errors name the file
// and the field, e.g. "coordinator.json: tasks[0].min_nodes: must be 1..1000".
absl::StatusOr<v1::CoordinatorConfig> LoadCoordinatorConfig(const std::string& path);

// The same checks and defaults for a config built in code (tests, demo).
absl::StatusOr<v1::CoordinatorConfig> FinalizeCoordinatorConfig(v1::CoordinatorConfig config,
                                                                const std::string& source,
                                                                const std::string& base_dir);

}  // namespace fedcustoms::coordinator
