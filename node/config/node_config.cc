#include "node/config/node_config.h"

#include <cmath>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/config/proto_json.h"

namespace fedcustoms::node {
namespace {

std::string Resolve(const std::string& base_dir, const std::string& path) {
  if (path.empty() || base_dir.empty() || std::filesystem::path(path).is_absolute()) return path;
  return (std::filesystem::path(base_dir) / path).lexically_normal().string();
}

}  // namespace

absl::StatusOr<v1::NodeConfig> FinalizeNodeConfig(v1::NodeConfig c, const std::string& source,
                                                  const std::string& base_dir) {
  auto bad = [&](const std::string& field, const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", field, ": ", what));
  };
  if (c.coordinator_address().empty()) {
    return bad("coordinator_address", "required, e.g. \"localhost:7443\"");
  }
  for (auto [field, value] :
       {std::pair{"tls.ca_cert", c.mutable_tls()->mutable_ca_cert()},
        std::pair{"tls.cert", c.mutable_tls()->mutable_cert()},
        std::pair{"tls.key", c.mutable_tls()->mutable_key()},
        std::pair{"coordinator_public_key", c.mutable_coordinator_public_key()},
        std::pair{"data_file", c.mutable_data_file()},
        std::pair{"schema_file", c.mutable_schema_file()},
        std::pair{"work_dir", c.mutable_work_dir()}}) {
    if (value->empty()) return bad(field, "required");
    *value = Resolve(base_dir, *value);
  }
  if (c.task().empty()) c.set_task("risk");
  if (c.task() != "risk") {
    return bad("task", absl::StrCat("\"", c.task(), "\" is not a task this node trains; expected \"risk\""));
  }
  if (c.bad_row_policy() == v1::BAD_ROW_POLICY_UNSPECIFIED) c.set_bad_row_policy(v1::FAIL);
  if (c.aggregation_mode() == v1::AGGREGATION_MODE_UNSPECIFIED) {
    c.set_aggregation_mode(v1::SECURE);
  }
  if (c.holdout_fraction() == 0) c.set_holdout_fraction(0.2);
  if (!std::isfinite(c.holdout_fraction()) || c.holdout_fraction() <= 0 ||
      c.holdout_fraction() >= 1) {
    return bad("holdout_fraction", "must be in (0, 1)");
  }
  if (c.max_backoff_seconds() == 0) c.set_max_backoff_seconds(30);
  if (c.max_backoff_seconds() > 3600) return bad("max_backoff_seconds", "must be 1..3600");
  if (c.threads() == 0) c.set_threads(1);
  if (c.threads() > 256) return bad("threads", "must be 1..256");
  return c;
}

absl::StatusOr<v1::NodeConfig> LoadNodeConfig(const std::string& path) {
  v1::NodeConfig config;
  if (absl::Status s = config::LoadProtoJson(path, &config); !s.ok()) return s;
  return FinalizeNodeConfig(std::move(config), path,
                            std::filesystem::path(path).parent_path().string());
}

}  // namespace fedcustoms::node
