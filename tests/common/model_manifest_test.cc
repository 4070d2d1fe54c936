#include "common/manifest/model_manifest.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

namespace fedcustoms::manifest {
namespace {

using ::testing::HasSubstr;

ModelManifest Sample() {
  ModelManifest m;
  m.task = "risk";
  m.version = 3;
  m.parent = 2;
  m.has_parent = true;
  m.round_id = 3;
  m.architecture = "risk_mlp";
  m.feature_schema_hash = std::string(64, 'a');
  m.aggregation_mode = "secure";
  m.strategy = "fedavg";
  m.contributing_nodes = 3;
  m.total_samples = 12000;
  m.weights_sha256 = std::string(64, 'b');
  m.wire_sha256 = std::string(64, 'c');
  m.created_at = "2026-11-30T23:00:00Z";
  return m;
}

TEST(ModelManifest, RoundTripsThroughJson) {
  auto parsed = ParseManifest(ToJson(Sample()), "m.json");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(ToJson(*parsed), ToJson(Sample()));
  EXPECT_EQ(parsed->total_samples, 12000u);
}

// Found by fuzz/fuzz_manifest_verifier: a count written as a float or a
// negative number was cast (undefined for 1e20); now it is an error naming
// the field.
TEST(ModelManifest, CountsMustBeNonNegativeIntegersInRange) {
  struct Case {
    const char* field;
    nlohmann::json value;
    const char* expected;
  };
  const Case cases[] = {
      {"version", 1e20, "m.json: field \"version\": expected an integer in 0..18446744073709551615, found 1e+20"},
      {"parent", -1, "m.json: field \"parent\": expected an integer in 0.."},
      {"round", 2.5, "m.json: field \"round\": expected an integer in 0.."},
      {"contributing_nodes", uint64_t{1} << 32,
       "m.json: field \"contributing_nodes\": expected an integer in 0..4294967295, found "
       "4294967296"},
      {"total_samples", "12", "m.json: field \"total_samples\": expected an integer in 0.."},
  };
  for (const Case& c : cases) {
    nlohmann::json j = nlohmann::json::parse(ToJson(Sample()));
    j[c.field] = c.value;
    const absl::Status s = ParseManifest(j.dump(), "m.json").status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.expected)) << c.field;
  }
}

}  // namespace
}  // namespace fedcustoms::manifest
