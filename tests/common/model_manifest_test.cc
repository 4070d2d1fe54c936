#include "common/manifest/model_manifest.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "common/crypto/ed25519.h"
#include "common/manifest/signed_manifest.h"

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
      {"version", 1e20,
       "m.json: field \"version\": expected an integer in 0..18446744073709551615, found 1e+20"},
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

// The release names an earlier (or this) version under the coordinator's
// signature; pull follows it, so it must name a real, published version.
TEST(ModelManifest, ReleaseNamesAPublishedVersionUpToThisOne) {
  ModelManifest m = Sample();
  auto plain = ParseManifest(ToJson(m), "m.json");
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->released_version, 3u);  // no release: this version
  EXPECT_EQ(plain->released_weights_sha256, m.weights_sha256);
  EXPECT_EQ(ToJson(m).find("release"), std::string::npos);

  m.release_json =
      R"({"best_validation_pr_auc":0.5,"released_version":2,"released_weights_sha256":"ab"})";
  auto released = ParseManifest(ToJson(m), "m.json");
  ASSERT_TRUE(released.ok()) << released.status();
  EXPECT_EQ(released->released_version, 2u);
  EXPECT_EQ(released->released_weights_sha256, "ab");
  EXPECT_EQ(ToJson(*released), ToJson(m));
  m.release_json = R"({"released_version":3})";  // itself: its own hash
  auto itself = ParseManifest(ToJson(m), "m.json");
  ASSERT_TRUE(itself.ok()) << itself.status();
  EXPECT_EQ(itself->released_weights_sha256, m.weights_sha256);

  for (const char* bad :
       {R"({"released_version":4,"released_weights_sha256":"ab"})",
        R"({"released_version":0,"released_weights_sha256":"ab"})",
        R"({"released_version":-1,"released_weights_sha256":"ab"})", R"({"released_version":2})",
        R"({"released_version":2,"released_weights_sha256":7})", R"({})", R"(7)", R"(null)"}) {
    nlohmann::json j = nlohmann::json::parse(ToJson(Sample()));
    j["release"] = nlohmann::json::parse(bad);
    const absl::Status s = ParseManifest(j.dump(), "m.json").status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(s.message()), HasSubstr("m.json")) << bad;
  }
}

// The weights file is joined to the model's directory by every reader: a
// manifest that names a path is refused, signed or not.
TEST(ModelManifest, WeightsFileMustBeAPlainFileName) {
  for (const char* bad : {"../model.pt", "/etc/passwd", "a/b.pt", "..", "", "model pt"}) {
    nlohmann::json j = nlohmann::json::parse(ToJson(Sample()));
    j["weights_file"] = bad;
    const absl::Status s = ParseManifest(j.dump(), "m.json").status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(s.message()),
                HasSubstr("m.json: field \"weights_file\": expected a plain file name"))
        << bad;
  }
  nlohmann::json j = nlohmann::json::parse(ToJson(Sample()));
  j["weights_file"] = "model-v3_final.pt";
  EXPECT_TRUE(ParseManifest(j.dump(), "m.json").ok());
}

// A manifest is only as good as its signature: a flipped signature byte, an
// edited JSON under the original signature and a short signature are all
// refused as PERMISSION_DENIED naming the source and the key.
TEST(SignedManifest, BadSignatureIsRefusedNamingTheSourceAndTheKey) {
  std::string dir = ::testing::TempDir() + "/signed_manifest_XXXXXX";
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  ASSERT_TRUE(crypto::GenerateEd25519KeyPair(dir + "/k", dir + "/k.pub").ok());
  auto signer = crypto::Ed25519Signer::Create(dir + "/k");
  ASSERT_TRUE(signer.ok()) << signer.status();
  auto verifier = crypto::Ed25519Verifier::Create(dir + "/k.pub");
  ASSERT_TRUE(verifier.ok()) << verifier.status();

  const SignedManifest genuine = SignManifest(Sample(), **signer);
  ASSERT_TRUE(VerifyManifest(genuine, **verifier, "m.json").ok());

  SignedManifest flipped = genuine;
  flipped.signature[0] ^= 1;
  absl::Status s = VerifyManifest(flipped, **verifier, "m.json").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  EXPECT_THAT(std::string(s.message()),
              ::testing::StartsWith("m.json: manifest signature is not valid for the "
                                    "coordinator's key (Ed25519 signature does not match the "
                                    "message under the key from "));
  EXPECT_THAT(std::string(s.message()), ::testing::EndsWith("); refusing the model"));

  SignedManifest edited = genuine;
  const std::string from = "\"total_samples\":12000";
  ASSERT_NE(edited.json.find(from), std::string::npos);
  edited.json.replace(edited.json.find(from), from.size(), "\"total_samples\":12001");
  s = VerifyManifest(edited, **verifier, "m.json").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("manifest signature is not valid"));

  SignedManifest short_signature = genuine;
  short_signature.signature.resize(63);
  s = VerifyManifest(short_signature, **verifier, "m.json").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("(Ed25519 signature has 63 bytes, expected 64); refusing the model"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace fedcustoms::manifest
