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

// The node's secure-aggregation floor with defaults filled in (min_peers 3,
// threshold_fraction 2/3, max_contributions_per_model 2; 0 means unset);
// InvalidArgument naming `source` and the field for a value that would
// weaken the protocol below what it guarantees (min_peers < 3, a fraction
// outside [0.5, 1)).
absl::StatusOr<v1::NodeSecureAggregationConfig> FinalizeNodeSecureAggregation(
    v1::NodeSecureAggregationConfig config, const std::string& source);

}  // namespace fedcustoms::node
