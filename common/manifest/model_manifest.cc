#include "common/manifest/model_manifest.h"

#include <chrono>
#include <ctime>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

namespace fedcustoms::manifest {

using nlohmann::json;

std::string ToJson(const ModelManifest& m) {
  // nlohmann::json objects keep keys sorted, so dump() is deterministic.
  json j;
  j["format"] = "fedcustoms.manifest.v1";
  j["task"] = m.task;
  j["version"] = m.version;
  j["parent"] = m.has_parent ? json(m.parent) : json(nullptr);
  j["round"] = m.round_id;
  j["architecture"] = m.architecture;
  j["hyperparameters"] = json::parse(m.hyperparameters_json);
  j["training"] = json::parse(m.training_json);
  j["feature_schema"] = json::parse(m.feature_schema_json);
  j["feature_schema_hash"] = m.feature_schema_hash;
  j["metrics"] = json::parse(m.metrics_json);
  j["privacy"] = json::parse(m.privacy_json);
  j["aggregation_mode"] = m.aggregation_mode;
  j["strategy"] = m.strategy;
  j["aggregator"] = m.aggregator;
  j["contributing_nodes"] = m.contributing_nodes;
  j["total_samples"] = m.total_samples;
  j["weights_file"] = m.weights_file;
  j["weights_sha256"] = m.weights_sha256;
  j["wire_sha256"] = m.wire_sha256;
  j["server_state_sha256"] = m.server_state_sha256;
  j["created_at"] = m.created_at;
  return j.dump();
}

absl::StatusOr<ModelManifest> ParseManifest(const std::string& text, const std::string& source) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": manifest is not a JSON object"));
  }
  ModelManifest m;
  try {
    if (j.value("format", "") != "fedcustoms.manifest.v1") {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": field \"format\": expected \"fedcustoms.manifest.v1\""));
    }
    m.task = j.at("task").get<std::string>();
    m.version = j.at("version").get<uint64_t>();
    if (!j.at("parent").is_null()) {
      m.parent = j.at("parent").get<uint64_t>();
      m.has_parent = true;
    }
    m.round_id = j.at("round").get<uint64_t>();
    m.architecture = j.at("architecture").get<std::string>();
    m.hyperparameters_json = j.at("hyperparameters").dump();
    m.training_json = j.at("training").dump();
    m.feature_schema_json = j.at("feature_schema").dump();
    m.feature_schema_hash = j.at("feature_schema_hash").get<std::string>();
    m.metrics_json = j.at("metrics").dump();
    m.privacy_json = j.at("privacy").dump();
    m.aggregation_mode = j.at("aggregation_mode").get<std::string>();
    m.strategy = j.at("strategy").get<std::string>();
    // Absent in manifests written before robust aggregation.
    m.aggregator = j.value("aggregator", "mean");
    m.contributing_nodes = j.at("contributing_nodes").get<uint32_t>();
    m.total_samples = j.at("total_samples").get<uint64_t>();
    m.weights_file = j.at("weights_file").get<std::string>();
    m.weights_sha256 = j.at("weights_sha256").get<std::string>();
    m.wire_sha256 = j.at("wire_sha256").get<std::string>();
    // Absent in manifests written before server strategies kept state.
    m.server_state_sha256 = j.value("server_state_sha256", "");
    m.created_at = j.at("created_at").get<std::string>();
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": bad manifest: ", e.what()));
  }
  return m;
}

std::string NowRfc3339() {
  std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buf;
}

}  // namespace fedcustoms::manifest
