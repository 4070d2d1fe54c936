#include "node/config/node_config.h"

#include <cmath>
#include <filesystem>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/config/proto_json.h"
#include "common/config/task_name.h"
#include "common/task/task_model.h"

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
  if (c.task().empty()) c.set_task("risk");
  if (absl::Status s = config::CheckTaskName(c.task()); !s.ok()) {
    return bad("task", std::string(s.message()));
  }
  c.set_task_kind(task::ResolveKind(c.task_kind(), c.task()));
  std::vector<std::pair<const char*, std::string*>> paths = {
      {"tls.ca_cert", c.mutable_tls()->mutable_ca_cert()},
      {"tls.cert", c.mutable_tls()->mutable_cert()},
      {"tls.key", c.mutable_tls()->mutable_key()},
      {"coordinator_public_key", c.mutable_coordinator_public_key()},
      {"work_dir", c.mutable_work_dir()}};
  if (c.task_kind() == v1::TASK_XRAY) {
    v1::XrayDataConfig* x = c.mutable_xray();
    if (x->labels_csv().empty() == (x->idx_images().empty() && x->idx_labels().empty())) {
      return bad("xray", "an X-ray task needs either labels_csv or idx_images and idx_labels");
    }
    if (x->labels_csv().empty()) {
      paths.emplace_back("xray.idx_images", x->mutable_idx_images());
      paths.emplace_back("xray.idx_labels", x->mutable_idx_labels());
    } else {
      paths.emplace_back("xray.labels_csv", x->mutable_labels_csv());
    }
  } else {
    paths.emplace_back("data_file", c.mutable_data_file());
    paths.emplace_back("schema_file", c.mutable_schema_file());
  }
  for (auto [field, value] : paths) {
    if (value->empty()) return bad(field, "required");
    *value = Resolve(base_dir, *value);
  }
  c.mutable_tls()->set_crl(Resolve(base_dir, c.tls().crl()));  // optional
  absl::StatusOr<v1::NodeSecureAggregationConfig> guarantees =
      FinalizeNodeSecureAggregation(c.secure_aggregation(), source);
  if (!guarantees.ok()) return guarantees.status();
  *c.mutable_secure_aggregation() = *std::move(guarantees);
  if (c.bad_row_policy() == v1::BAD_ROW_POLICY_UNSPECIFIED) c.set_bad_row_policy(v1::FAIL);
  if (c.aggregation_mode() == v1::AGGREGATION_MODE_UNSPECIFIED) {
    c.set_aggregation_mode(v1::SECURE);
  }
  if (c.holdout_fraction() == 0) c.set_holdout_fraction(0.2);
  if (!std::isfinite(c.holdout_fraction()) || c.holdout_fraction() <= 0 ||
      c.holdout_fraction() >= 1) {
    return bad("holdout_fraction", "must be in (0, 1)");
  }
  if (!(c.validation_fraction() >= 0 && c.validation_fraction() <= 0.5)) {
    return bad("validation_fraction", "must be in [0, 0.5]");
  }
  if (c.max_backoff_seconds() == 0) c.set_max_backoff_seconds(30);
  if (c.max_backoff_seconds() > 3600) return bad("max_backoff_seconds", "must be 1..3600");
  if (c.threads() == 0) c.set_threads(1);
  if (c.threads() > 256) return bad("threads", "must be 1..256");
  const v1::NodePrivacyConfig& privacy = c.privacy();
  if (!(privacy.max_epsilon() >= 0 && privacy.max_epsilon() <= 100)) {
    return bad("privacy.max_epsilon",
               absl::StrCat("must be in [0, 100] (0: no budget), found ", privacy.max_epsilon()));
  }
  if (!(privacy.max_delta() >= 0 && privacy.max_delta() <= 1e-3)) {
    return bad("privacy.max_delta",
               absl::StrCat("must be in (0, 1e-3] (0: the default), found ", privacy.max_delta()));
  }
  return c;
}

absl::StatusOr<v1::NodeSecureAggregationConfig> FinalizeNodeSecureAggregation(
    v1::NodeSecureAggregationConfig c, const std::string& source) {
  auto bad = [&](const std::string& field, const std::string& what) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": secure_aggregation.", field, ": ", what));
  };
  if (c.min_peers() == 0) c.set_min_peers(3);
  if (c.min_peers() < 3) {
    return bad("min_peers", absl::StrCat(c.min_peers(),
                                         " is below 3: with two nodes each learns the other's "
                                         "update from the published model"));
  }
  if (c.threshold_fraction() == 0) c.set_threshold_fraction(2.0 / 3.0);
  if (!std::isfinite(c.threshold_fraction()) || c.threshold_fraction() < 0.5 ||
      c.threshold_fraction() >= 1) {
    return bad("threshold_fraction", absl::StrCat(c.threshold_fraction(),
                                                  " is outside [0.5, 1): below one half, two "
                                                  "disjoint groups could each unmask"));
  }
  if (c.max_contributions_per_model() == 0) c.set_max_contributions_per_model(2);
  if (c.boosting_min_cell_rows() == 0) c.set_boosting_min_cell_rows(10);
  return c;
}

absl::StatusOr<v1::NodeConfig> LoadNodeConfig(const std::string& path) {
  v1::NodeConfig config;
  if (absl::Status s = config::LoadProtoJson(path, &config); !s.ok()) return s;
  return FinalizeNodeConfig(std::move(config), path,
                            std::filesystem::path(path).parent_path().string());
}

}  // namespace fedcustoms::node
