#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "fedcustoms/v1/config.pb.h"

namespace fedcustoms::node {

// Reads a node config (protobuf JSON, schema in proto/fedcustoms/v1/
// config.proto), fills defaults, resolves relative paths against the config
// file's directory and checks every value; errors name the file and field.
absl::StatusOr<v1::NodeConfig> LoadNodeConfig(const std::string& path);

// The same for a config built in code.
absl::StatusOr<v1::NodeConfig> FinalizeNodeConfig(v1::NodeConfig config, const std::string& source,
                                                  const std::string& base_dir);

}  // namespace fedcustoms::node
