#include "common/config/proto_json.h"

#include <gmock/gmock.h>
#include <google/protobuf/struct.pb.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/config/task_name.h"
#include "fedcustoms/v1/config.pb.h"

namespace fedcustoms::config {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(ProtoJson, ParsesNestedMessagesWithEitherFieldSpelling) {
  v1::CoordinatorConfig config;
  absl::Status s = ParseProtoJson(R"({"listen_address": "127.0.0.1:0",
      "tasks": [{"name": "risk", "training": {"localEpochs": 3, "learning_rate": 0.01}}]})",
                                  "c.json", &config);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(config.listen_address(), "127.0.0.1:0");
  ASSERT_EQ(config.tasks_size(), 1);
  EXPECT_EQ(config.tasks(0).training().local_epochs(), 3u);
  EXPECT_DOUBLE_EQ(config.tasks(0).training().learning_rate(), 0.01);
}

TEST(ProtoJson, ClearsTheMessageFirst) {
  v1::TrainingConfig config;
  config.set_local_epochs(9);
  ASSERT_TRUE(ParseProtoJson(R"({"learning_rate": 0.5})", "t.json", &config).ok());
  EXPECT_EQ(config.local_epochs(), 0u);
}

TEST(ProtoJson, WellKnownTypesKeepTheirOwnJsonForm) {
  google::protobuf::Struct s;
  EXPECT_TRUE(ParseProtoJson(R"({"anything": {"goes": [1, 2]}})", "s.json", &s).ok());
}

TEST(ProtoJson, LoadsAFile) {
  std::string dir = ::testing::TempDir() + "/proto_json_XXXXXX";
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  const std::string path = dir + "/t.json";
  std::ofstream(path) << R"({"local_epochs": 4})";
  v1::TrainingConfig config;
  absl::Status s = LoadProtoJson(path, &config);
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(config.local_epochs(), 4u);
  std::filesystem::remove_all(dir);
}

// Tests of all the error paths follow.

TEST(ProtoJson, UnknownTopLevelFieldIsNamed) {
  v1::TrainingConfig config;
  absl::Status s = ParseProtoJson(R"({"local_epochs": 1, "learnig_rate": 0.1})", "t.json", &config);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "t.json: unknown field \"learnig_rate\" (not a field of fedcustoms.v1.TrainingConfig)");
}

TEST(ProtoJson, UnknownNestedFieldIsNamedWithItsPath) {
  v1::CoordinatorConfig config;
  absl::Status s = ParseProtoJson(
      R"({"tasks": [{"name": "a"}, {"name": "b", "training": {"learning_rat": 1}}]})", "c.json",
      &config);
  EXPECT_EQ(s.message(),
            "c.json: unknown field \"tasks[1].training.learning_rat\" (not a field of "
            "fedcustoms.v1.TrainingConfig)");
}

TEST(ProtoJson, SyntaxErrorNamesLineAndColumn) {
  v1::TrainingConfig config;
  absl::Status s = ParseProtoJson("{\n  \"local_epochs\": 1,\n}", "t.json", &config);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), StartsWith("t.json: invalid JSON: line 3, column 1:"));
}

// Found by fuzz/fuzz_config_parser: the JSON parser threw out_of_range for a
// number beyond a double, which escaped ParseProtoJson and ended the process.
TEST(ProtoJson, NumberBeyondADoubleIsAnErrorNotACrash) {
  v1::TrainingConfig config;
  absl::Status s = ParseProtoJson("{\"learning_rate\": 1e400}", "t.json", &config);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "t.json: invalid JSON: number overflow parsing '1e400'");
}

TEST(ProtoJson, TopLevelMustBeAnObject) {
  v1::TrainingConfig config;
  EXPECT_EQ(ParseProtoJson("[1]", "t.json", &config).message(),
            "t.json: expected a JSON object (fedcustoms.v1.TrainingConfig) at the top level");
}

TEST(ProtoJson, WrongValueTypeIsNamed) {
  v1::TrainingConfig config;
  absl::Status s = ParseProtoJson(R"({"local_epochs": "many"})", "t.json", &config);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), StartsWith("t.json: "));
  EXPECT_THAT(std::string(s.message()), HasSubstr("local_epochs"));
}

TEST(ProtoJson, MissingFileIsNotFound) {
  v1::TrainingConfig config;
  absl::Status s = LoadProtoJson("/nonexistent/t.json", &config);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(s.message()), StartsWith("/nonexistent/t.json: cannot open"));
}

TEST(ProtoJson, DirectoryIsRefused) {
  v1::TrainingConfig config;
  absl::Status s = LoadProtoJson(::testing::TempDir(), &config);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("is a directory"));
}

TEST(TaskName, AcceptsPathSafeNamesOnly) {
  for (const char* good : {"risk", "anomaly", "xray", "risk-2027", "x_ray2"}) {
    EXPECT_TRUE(CheckTaskName(good).ok()) << good;
  }
  for (const char* bad : {"", "Risk", "1risk", "../risk", "risk/x", "risk x", "-risk"}) {
    const absl::Status s = CheckTaskName(bad);
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << bad;
    EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("is not a task name")) << bad;
  }
  EXPECT_FALSE(CheckTaskName(std::string(65, 'a')).ok());
  EXPECT_TRUE(CheckTaskName(std::string(64, 'a')).ok());
}

}  // namespace
}  // namespace fedcustoms::config
