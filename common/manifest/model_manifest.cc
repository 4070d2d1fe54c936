#include "common/manifest/model_manifest.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <ctime>
#include <limits>
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
  if (m.release_json != "{}") j["release"] = json::parse(m.release_json);
  return j.dump();
}

namespace {

// A non-negative integer field up to `max`. nlohmann's get<uint64_t>() would
// cast a float or a negative number instead, undefined for 1e20 (found by
// fuzz/fuzz_manifest_verifier).
absl::StatusOr<uint64_t> CountField(const json& j, const char* field, uint64_t max,
                                    const std::string& source) {
  const json& value = j.at(field);
  if (!value.is_number_unsigned() || value.get<uint64_t>() > max) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": field \"", field,
                                                   "\": expected an integer in 0..", max,
                                                   ", found ", value.dump()));
  }
  return value.get<uint64_t>();
}

}  // namespace

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
    constexpr uint64_t kAny = std::numeric_limits<uint64_t>::max();
    m.task = j.at("task").get<std::string>();
    auto version = CountField(j, "version", kAny, source);
    if (!version.ok()) return version.status();
    m.version = *version;
    if (!j.at("parent").is_null()) {
      auto parent = CountField(j, "parent", kAny, source);
      if (!parent.ok()) return parent.status();
      m.parent = *parent;
      m.has_parent = true;
    }
    auto round = CountField(j, "round", kAny, source);
    if (!round.ok()) return round.status();
    m.round_id = *round;
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
    auto nodes = CountField(j, "contributing_nodes", std::numeric_limits<uint32_t>::max(), source);
    if (!nodes.ok()) return nodes.status();
    m.contributing_nodes = static_cast<uint32_t>(*nodes);
    auto samples = CountField(j, "total_samples", kAny, source);
    if (!samples.ok()) return samples.status();
    m.total_samples = *samples;
    m.released_version = m.version;
    if (j.contains("release")) {
      const json& release = j.at("release");
      auto released = CountField(release, "released_version", m.version, source + " release");
      if (!released.ok()) return released.status();
      if (*released == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(source, ": release.released_version 0 (v0 is never released)"));
      }
      m.released_version = *released;
      // A version that releases itself is named by its own weights_sha256
      // (read below); an earlier one by the hash recorded here.
      if (*released != m.version) {
        m.released_weights_sha256 = release.at("released_weights_sha256").get<std::string>();
      }
      m.release_json = release.dump();
    }
    m.weights_file = j.at("weights_file").get<std::string>();
    // Readers join it to the model's directory: a path ("../x", "/etc/x")
    // in a manifest, even a signed one, must not take them elsewhere.
    const bool plain_name =
        !m.weights_file.empty() && m.weights_file.size() <= 255 && m.weights_file != "." &&
        m.weights_file != ".." &&
        std::all_of(m.weights_file.begin(), m.weights_file.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
        });
    if (!plain_name) {
      return absl::InvalidArgumentError(absl::StrCat(
          source,
          ": field \"weights_file\": expected a plain file name (letters, digits, '.', "
          "'_', '-'; at most 255), found \"",
          m.weights_file.substr(0, 64), "\""));
    }
    m.weights_sha256 = j.at("weights_sha256").get<std::string>();
    if (m.released_version == m.version) m.released_weights_sha256 = m.weights_sha256;
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
