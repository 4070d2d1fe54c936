#include "common/synth/declarations_synth.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "absl/strings/str_split.h"
#include "common/data/declaration_schema.h"
#include "common/data/declarations_csv.h"

namespace fedcustoms::synth {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class DeclarationsSynthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "/declarations_synth_XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }

  SynthOptions Options(const std::string& sub, uint64_t rows, uint64_t seed) const {
    SynthOptions o;
    o.admins = {"EE", "FI", "LV"};
    o.rows = rows;
    o.seed = seed;
    o.out_dir = dir_ + "/" + sub;
    return o;
  }

  std::string dir_;
};

TEST_F(DeclarationsSynthTest, SameSeedGivesIdenticalBytes) {
  ASSERT_TRUE(SynthesizeDeclarations(Options("a", 3000, 11)).ok());
  ASSERT_TRUE(SynthesizeDeclarations(Options("b", 3000, 11)).ok());
  for (const char* admin : {"EE", "FI", "LV"}) {
    for (const char* file : {"declarations.csv", "declarations.schema.json"}) {
      const std::string a = ReadAll(dir_ + "/a/" + admin + "/" + file);
      EXPECT_FALSE(a.empty());
      EXPECT_EQ(a, ReadAll(dir_ + "/b/" + admin + "/" + file)) << admin << "/" << file;
    }
  }
}

TEST_F(DeclarationsSynthTest, DifferentSeedGivesDifferentData) {
  ASSERT_TRUE(SynthesizeDeclarations(Options("a", 3000, 11)).ok());
  ASSERT_TRUE(SynthesizeDeclarations(Options("b", 3000, 12)).ok());
  for (const char* admin : {"EE", "FI", "LV"}) {
    const std::string csv = std::string(admin) + "/declarations.csv";
    EXPECT_NE(ReadAll(dir_ + "/a/" + csv), ReadAll(dir_ + "/b/" + csv)) << admin;
  }
}

TEST(AdministrationRows, ShrinksAfterTheFirst) {
  EXPECT_EQ(AdministrationRows(40000, 0), 40000u);
  EXPECT_EQ(AdministrationRows(40000, 1), 24000u);
  EXPECT_EQ(AdministrationRows(40000, 2), 4000u);
  EXPECT_EQ(AdministrationRows(40000, 8), AdministrationRows(40000, 1));
  EXPECT_EQ(AdministrationRows(100, 2), 10u);
}

TEST(SyntheticDeclarationSchema, IsValid) {
  EXPECT_TRUE(data::ValidateDeclarationSchema(SyntheticDeclarationSchema(), "synth").ok());
}

// The main properties at the default size: every file parses with its
// schema, all share one feature schema, positives are 1-3 %, and the small
// administration has few positives to learn from.
TEST_F(DeclarationsSynthTest, FilesParseWithRareLabelsAndOneSmallAdministration) {
  const SynthOptions options = Options("d", 40000, 7);
  ASSERT_TRUE(SynthesizeDeclarations(options).ok());
  std::set<std::string> hashes;
  std::set<std::string> importers_seen;
  for (size_t i = 0; i < options.admins.size(); ++i) {
    const std::string& admin = options.admins[i];
    const std::string base = options.out_dir + "/" + admin + "/declarations";
    auto schema = data::LoadDeclarationSchema(base + ".schema.json");
    ASSERT_TRUE(schema.ok()) << schema.status();
    hashes.insert(data::FeatureSchemaHash(*schema));
    auto table = data::ReadDeclarationsCsv(base + ".csv", *schema, v1::FAIL);
    ASSERT_TRUE(table.ok()) << table.status();
    EXPECT_EQ(table->rows, AdministrationRows(options.rows, i));
    EXPECT_EQ(table->numeric_width(), 3u);
    EXPECT_EQ(table->categorical_width(), 6u);

    double positives = 0;
    for (float y : table->labels) positives += y;
    const double rate = positives / static_cast<double>(table->rows);
    EXPECT_GE(rate, 0.01) << admin;
    EXPECT_LE(rate, 0.03) << admin;

    // Dates cover about a year and are in order.
    EXPECT_TRUE(std::is_sorted(table->days.begin(), table->days.end()));
    EXPECT_GT(table->days.back() - table->days.front(), 350);

    const data::Split split = data::DeterministicSplit(*table, 0.2);
    double train_positives = 0, holdout_positives = 0;
    for (int64_t r : split.train) train_positives += table->labels[r];
    for (int64_t r : split.holdout) holdout_positives += table->labels[r];
    EXPECT_GT(holdout_positives, 5) << admin;
    if (admin == "LV") {
      EXPECT_GE(train_positives, 15);
      EXPECT_LE(train_positives, 80);  // few positives to learn from alone
    } else {
      EXPECT_GT(train_positives, 300) << admin;
    }
  }
  EXPECT_EQ(hashes.size(), 1u);
}

TEST_F(DeclarationsSynthTest, VocabulariesBelongToTheirAdministration) {
  const SynthOptions options = Options("v", 2000, 3);
  ASSERT_TRUE(SynthesizeDeclarations(options).ok());
  for (const std::string& admin : options.admins) {
    const std::string csv = ReadAll(options.out_dir + "/" + admin + "/declarations.csv");
    std::vector<std::string> lines = absl::StrSplit(csv, '\n', absl::SkipEmpty());
    ASSERT_GT(lines.size(), 1u);
    EXPECT_EQ(lines[0],
              "declaration_id,date,hs_code,origin_country,office,importer,declarant,"
              "transport_mode,declared_value,gross_mass_kg,quantity,selection,control_result");
    for (size_t l = 1; l < lines.size(); ++l) {
      std::vector<std::string> f = absl::StrSplit(lines[l], ',');
      ASSERT_EQ(f.size(), 13u) << lines[l];
      EXPECT_EQ(f[2].size(), 6u) << lines[l];                   // HS subheading
      EXPECT_EQ(f[4].substr(0, admin.size()), admin) << lines[l];  // office
      EXPECT_EQ(f[5].substr(0, admin.size()), admin) << lines[l];  // importer
      EXPECT_EQ(f[6].substr(0, admin.size()), admin) << lines[l];  // declarant
      EXPECT_TRUE(f[11] == "risk" || f[11] == "random") << lines[l];
    }
  }
}

// Tests of all the error paths follow.

TEST_F(DeclarationsSynthTest, RefusesBadOptions) {
  SynthOptions o = Options("x", 1000, 1);
  o.admins = {};
  EXPECT_EQ(SynthesizeDeclarations(o).message(), "synth: admins is empty; give at least one code");
  o.admins = {"EE", "ee"};
  EXPECT_EQ(SynthesizeDeclarations(o).message(),
            "synth: admins: \"ee\" is not an administration code (2-3 letters A-Z)");
  o.admins = {"EE", "../X"};
  EXPECT_EQ(SynthesizeDeclarations(o).code(), absl::StatusCode::kInvalidArgument);
  o.admins = {"EE", "FI", "EE"};
  EXPECT_EQ(SynthesizeDeclarations(o).message(), "synth: admins: \"EE\" twice");
  o.admins = {"EE"};
  o.rows = 99;
  EXPECT_EQ(SynthesizeDeclarations(o).message(),
            "synth: rows must be in [100, 20000000], found 99");
  o.rows = 1000;
  o.out_dir = "";
  EXPECT_EQ(SynthesizeDeclarations(o).message(), "synth: out_dir is empty");
  EXPECT_FALSE(fs::exists(dir_ + "/x"));
}

TEST_F(DeclarationsSynthTest, UnwritableOutputNamesThePath) {
  std::ofstream(dir_ + "/file") << "not a directory";
  SynthOptions o = Options("file", 1000, 1);
  absl::Status s = SynthesizeDeclarations(o);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(s.message()), HasSubstr(dir_ + "/file/EE"));
}

}  // namespace
}  // namespace fedcustoms::synth
