#include "common/data/declaration_schema.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace fedcustoms::data {
namespace {

using ::testing::HasSubstr;

constexpr char kSchemaJson[] = R"({
  "columns": [
    {"name": "declaration_id", "role": "ID"},
    {"name": "date", "role": "DATE"},
    {"name": "hs_code", "role": "CATEGORICAL", "hash_buckets": 1024, "prefix_length": 4},
    {"name": "origin", "role": "CATEGORICAL", "hashBuckets": 256},
    {"name": "declared_value", "role": "NUMERIC", "log1p": true},
    {"name": "gross_mass_kg", "role": "NUMERIC", "log1p": true},
    {"name": "selection", "role": "SELECTION"},
    {"name": "notes", "role": "IGNORED"},
    {"name": "control_result", "role": "LABEL"}
  ],
  "delimiter": ","
})";

class DeclarationSchemaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "/declaration_schema_XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& content) {
    const std::string path = dir_ + "/s.json";
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }

  std::string dir_;
};

v1::DeclarationSchema Parse(const std::string& json) {
  auto schema = ParseDeclarationSchema(json, "s.json");
  EXPECT_TRUE(schema.ok()) << schema.status();
  return schema.ok() ? *schema : v1::DeclarationSchema();
}

TEST_F(DeclarationSchemaTest, LoadsAValidSchemaFile) {
  auto schema = LoadDeclarationSchema(Write(kSchemaJson));
  ASSERT_TRUE(schema.ok()) << schema.status();
  ASSERT_EQ(schema->columns_size(), 9);
  EXPECT_EQ(schema->columns(2).prefix_length(), 4u);
  EXPECT_EQ(schema->columns(3).hash_buckets(), 256u);  // lowerCamelCase accepted
  EXPECT_TRUE(schema->columns(4).log1p());
  EXPECT_EQ(schema->columns(8).role(), v1::LABEL);
  EXPECT_EQ(SchemaDelimiter(*schema), ',');
}

TEST(SchemaDelimiter, DefaultsToComma) {
  v1::DeclarationSchema schema;
  EXPECT_EQ(SchemaDelimiter(schema), ',');
  schema.set_delimiter("\t");
  EXPECT_EQ(SchemaDelimiter(schema), '\t');
}

TEST(FeatureSchemaHash, IsFrozenForAKnownSchema) {
  // Nodes of different releases must agree. SHA-256 of the canonical text
  // documented in declaration_schema.h:
  //   fedcustoms-feature-schema-v1\n
  //   numeric 14:declared_value log1p=1\n  numeric 13:gross_mass_kg log1p=1\n
  //   categorical 7:hs_code buckets=1024 prefix=4\n
  //   categorical 6:origin buckets=256 prefix=0\n  label 14:control_result\n
  const std::string hash = FeatureSchemaHash(Parse(kSchemaJson));
  EXPECT_EQ(hash.size(), 64u);
  EXPECT_EQ(hash, "07f7d63571a78fd02fd58545d48338ab9ddc10e05db3fa8bade1450a454d9cad");
}

TEST(FeatureSchemaHash, IgnoresEverythingButTheFeatures) {
  const std::string reference = FeatureSchemaHash(Parse(kSchemaJson));
  // Non-feature columns moved, renamed, removed; other delimiter.
  EXPECT_EQ(FeatureSchemaHash(Parse(R"({
    "columns": [
      {"name": "hs_code", "role": "CATEGORICAL", "hash_buckets": 1024, "prefix_length": 4},
      {"name": "control_result", "role": "LABEL"},
      {"name": "declared_value", "role": "NUMERIC", "log1p": true},
      {"name": "mrn", "role": "ID"},
      {"name": "origin", "role": "CATEGORICAL", "hash_buckets": 256},
      {"name": "gross_mass_kg", "role": "NUMERIC", "log1p": true},
      {"name": "when", "role": "DATE"}
    ],
    "delimiter": ";"
  })")),
            reference);
}

TEST(FeatureSchemaHash, ChangesWithAnyFeatureProperty) {
  const std::string reference = FeatureSchemaHash(Parse(kSchemaJson));
  const v1::DeclarationSchema base = Parse(kSchemaJson);
  std::vector<v1::DeclarationSchema> variants(6, base);
  variants[0].mutable_columns(3)->set_hash_buckets(257);
  variants[1].mutable_columns(2)->set_prefix_length(2);
  variants[2].mutable_columns(5)->set_log1p(false);
  variants[3].mutable_columns(8)->set_name("found");
  variants[4].mutable_columns(4)->set_name("value");
  // Feature order is the model's input order.
  variants[5].mutable_columns()->SwapElements(4, 5);
  for (size_t i = 0; i < variants.size(); ++i) {
    EXPECT_NE(FeatureSchemaHash(variants[i]), reference) << "variant " << i;
  }
  v1::DeclarationSchema unlabeled = base;
  unlabeled.mutable_columns(8)->set_role(v1::IGNORED);
  EXPECT_NE(FeatureSchemaHash(unlabeled), reference);
}

// Tests of all the error paths follow.

TEST_F(DeclarationSchemaTest, MissingFileIsNotFound) {
  auto schema = LoadDeclarationSchema(dir_ + "/absent.json");
  ASSERT_FALSE(schema.ok());
  EXPECT_EQ(schema.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(schema.status().message()),
              HasSubstr(dir_ + "/absent.json: cannot open"));
}

TEST_F(DeclarationSchemaTest, UnknownFieldIsNamedWithItsPath) {
  const std::string path = Write(R"({"columns": [
      {"name": "a", "role": "NUMERIC"},
      {"name": "b", "role": "CATEGORICAL", "hash_bucketz": 8}]})");
  auto schema = LoadDeclarationSchema(path);
  ASSERT_FALSE(schema.ok());
  EXPECT_EQ(schema.status().message(),
            path +
                ": unknown field \"columns[1].hash_bucketz\" (not a field of "
                "fedcustoms.v1.ColumnSpec)");
}

TEST_F(DeclarationSchemaTest, InvalidJsonNamesLineAndColumn) {
  const std::string path = Write("{\n  \"columns\": [\n    {\"name\": \"a\",}\n  ]\n}\n");
  auto schema = LoadDeclarationSchema(path);
  ASSERT_FALSE(schema.ok());
  EXPECT_THAT(std::string(schema.status().message()),
              HasSubstr(path + ": invalid JSON: line 3, column"));
}

TEST_F(DeclarationSchemaTest, UnknownRoleIsRefused) {
  auto schema =
      ParseDeclarationSchema(R"({"columns": [{"name": "a", "role": "FEATURE"}]})", "s.json");
  ASSERT_FALSE(schema.ok());
  EXPECT_THAT(std::string(schema.status().message()), HasSubstr("s.json: "));
  EXPECT_THAT(std::string(schema.status().message()), HasSubstr("columns[0].role"));
}

TEST(ValidateDeclarationSchema, RefusesInvalidSpecsNamingTheColumn) {
  struct Case {
    const char* json;
    const char* error;
  };
  const Case cases[] = {
      {R"({})", "s.json: \"columns\" is empty; the schema needs columns"},
      {R"({"columns": [{"name": "", "role": "NUMERIC"}]})",
       "s.json: columns[0]: \"name\" is empty"},
      {R"({"columns": [{"name": "a\tb", "role": "NUMERIC"}]})",
       "s.json: columns[0] (\"a\tb\"): \"name\" has a control character"},
      {R"({"columns": [{"name": "a", "role": "NUMERIC"}, {"name": "a", "role": "ID"}]})",
       "s.json: columns[1] (\"a\"): duplicate name (also columns[0])"},
      {R"({"columns": [{"name": "a", "role": "NUMERIC"}, {"name": "y", "role": "LABEL"},
                       {"name": "z", "role": "LABEL"}]})",
       "s.json: columns[2] (\"z\"): a second LABEL column (the first is columns[1] (\"y\"))"},
      {R"({"columns": [{"name": "a", "role": "NUMERIC"}, {"name": "i", "role": "ID"},
                       {"name": "j", "role": "ID"}]})",
       "s.json: columns[2] (\"j\"): a second ID column (the first is columns[1] (\"i\"))"},
      {R"({"columns": [{"name": "a", "role": "NUMERIC"}, {"name": "d", "role": "DATE"},
                       {"name": "e", "role": "DATE"}]})",
       "s.json: columns[2] (\"e\"): a second DATE column (the first is columns[1] (\"d\"))"},
      {R"({"columns": [{"name": "a", "role": "NUMERIC"}, {"name": "s", "role": "SELECTION"},
                       {"name": "t", "role": "SELECTION"}]})",
       "s.json: columns[2] (\"t\"): a second SELECTION column (the first is columns[1] (\"s\"))"},
      {R"({"columns": [{"name": "y", "role": "LABEL"}, {"name": "i", "role": "ID"}]})",
       "s.json: no NUMERIC or CATEGORICAL column; the model needs a feature"},
      {R"({"columns": [{"name": "a"}]})",
       "s.json: columns[0] (\"a\"): \"role\" is not set (ID, DATE, NUMERIC, CATEGORICAL, "
       "LABEL, SELECTION or IGNORED)"},
      {R"({"columns": [{"name": "c", "role": "CATEGORICAL"}]})",
       "s.json: columns[0] (\"c\"): \"hash_buckets\" must be >= 2 for a CATEGORICAL column, "
       "found 0"},
      {R"({"columns": [{"name": "c", "role": "CATEGORICAL", "hash_buckets": 1}]})",
       "s.json: columns[0] (\"c\"): \"hash_buckets\" must be >= 2 for a CATEGORICAL column, "
       "found 1"},
      {R"({"columns": [{"name": "c", "role": "CATEGORICAL", "hash_buckets": 16777217}]})",
       "s.json: columns[0] (\"c\"): \"hash_buckets\" must be <= 16777216, found 16777217"},
      {R"({"columns": [{"name": "c", "role": "CATEGORICAL", "hash_buckets": 8, "log1p": true}]})",
       "s.json: columns[0] (\"c\"): \"log1p\" applies to NUMERIC columns only, not CATEGORICAL"},
      {R"({"columns": [{"name": "a", "role": "NUMERIC"}, {"name": "y", "role": "LABEL",
                       "log1p": true}]})",
       "s.json: columns[1] (\"y\"): \"log1p\" applies to NUMERIC columns only, not LABEL"},
      {R"({"columns": [{"name": "a", "role": "NUMERIC", "hash_buckets": 8}]})",
       "s.json: columns[0] (\"a\"): \"hash_buckets\" applies to CATEGORICAL columns only, not "
       "NUMERIC"},
      {R"({"columns": [{"name": "a", "role": "NUMERIC", "prefix_length": 2}]})",
       "s.json: columns[0] (\"a\"): \"prefix_length\" applies to CATEGORICAL columns only, not "
       "NUMERIC"},
      {R"({"columns": [{"name": "a", "role": "NUMERIC"}], "delimiter": ";;"})",
       "s.json: \"delimiter\" must be one ASCII character other than a quote, CR or LF, found "
       "\";;\""},
      {R"({"columns": [{"name": "a", "role": "NUMERIC"}], "delimiter": "\""})",
       "s.json: \"delimiter\" must be one ASCII character other than a quote, CR or LF, found "
       "\"\"\""},
  };
  for (const Case& c : cases) {
    auto schema = ParseDeclarationSchema(c.json, "s.json");
    ASSERT_FALSE(schema.ok()) << c.json;
    EXPECT_EQ(schema.status().code(), absl::StatusCode::kInvalidArgument) << c.json;
    EXPECT_EQ(schema.status().message(), c.error) << c.json;
  }
}

}  // namespace
}  // namespace fedcustoms::data
