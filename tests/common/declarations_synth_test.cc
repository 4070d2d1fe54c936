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
#include "tests/support/temp_dir.h"

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
  void SetUp() override { ASSERT_FALSE(dir_.empty()) << "cannot create a temp dir"; }

  SynthOptions Options(const std::string& sub, uint64_t rows, uint64_t seed) const {
    SynthOptions o;
    o.admins = {"EE", "FI", "LV"};
    o.rows = rows;
    o.seed = seed;
    o.out_dir = dir_ + "/" + sub;
    return o;
  }

  testing_support::TempDir temp_{"declarations-synth"};
  const std::string dir_ = temp_.path();
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
      EXPECT_EQ(f[2].size(), 6u) << lines[l];                      // HS subheading
      EXPECT_EQ(f[4].substr(0, admin.size()), admin) << lines[l];  // office
      EXPECT_EQ(f[5].substr(0, admin.size()), admin) << lines[l];  // importer
      EXPECT_EQ(f[6].substr(0, admin.size()), admin) << lines[l];  // declarant
      EXPECT_TRUE(f[11] == "risk" || f[11] == "random") << lines[l];
    }
  }
}

// The ground truth lists exactly the frauds: found ones are the rows labelled
// 1. The emerging scheme leaves every row before its first day as it was and
// appears only from that day on, as new importers.
TEST_F(DeclarationsSynthTest, TruthAndEmergingScheme) {
  SynthOptions plain = Options("plain", 20000, 5);
  SynthOptions emerging = Options("emerging", 20000, 5);
  emerging.emerging_scheme = true;
  ASSERT_TRUE(SynthesizeDeclarations(plain).ok());
  ASSERT_TRUE(SynthesizeDeclarations(emerging).ok());
  const std::string admin = "EE";
  auto lines_of = [&](const SynthOptions& o) {
    std::vector<std::string> lines = absl::StrSplit(
        ReadAll(o.out_dir + "/" + admin + "/declarations.csv"), '\n', absl::SkipEmpty());
    return lines;
  };
  const std::vector<std::string> before = lines_of(plain), after = lines_of(emerging);
  auto plain_truth =
      ReadFraudTruth(plain.out_dir + "/" + admin + "/" + std::string(kTruthFileName));
  auto truth = ReadFraudTruth(emerging.out_dir + "/" + admin + "/" + std::string(kTruthFileName));
  ASSERT_TRUE(plain_truth.ok()) << plain_truth.status();
  ASSERT_TRUE(truth.ok()) << truth.status();

  std::set<std::string> old_importers;
  size_t emerging_rows = 0, found = 0, labelled = 0;
  for (size_t l = 1; l < after.size(); ++l) {
    const std::vector<std::string> f = absl::StrSplit(after[l], ',');
    ASSERT_EQ(f.size(), 13u);
    const bool early = f[1] < "2023-10-28";
    if (early) {
      ASSERT_EQ(after[l], before[l]) << "line " << l << " changed before the scheme's first day";
      old_importers.insert(f[5]);
    }
    labelled += f[12] == "1";
    auto it = truth->find(f[0]);
    if (it == truth->end()) {
      EXPECT_EQ(f[12], "0") << after[l];
      continue;
    }
    EXPECT_EQ(f[12], it->second.found ? "1" : "0") << after[l];
    found += it->second.found;
    if (it->second.pattern != "over_invoicing") continue;
    ++emerging_rows;
    EXPECT_FALSE(early) << after[l];
    EXPECT_EQ(old_importers.count(f[5]), 0u) << after[l];
    EXPECT_TRUE(f[3] == "AE" || f[3] == "HK" || f[3] == "SG") << after[l];
  }
  EXPECT_EQ(found, labelled);
  // 0.6 % of the rows of the last 65 days (about 18 % of the year).
  EXPECT_GT(emerging_rows, 10u);
  EXPECT_LT(emerging_rows, 40u);
  for (const auto& [id, t] : *plain_truth) EXPECT_NE(t.pattern, "over_invoicing") << id;
}

TEST_F(DeclarationsSynthTest, ReadFraudTruthNamesTheBadLine) {
  const std::string path = dir_ + "/truth.csv";
  std::ofstream(path) << "declaration_id,pattern,found\n23EE1,undervaluation,1\n23EE2,x,2\n";
  EXPECT_EQ(ReadFraudTruth(path).status().message(),
            path + ":3: expected declaration_id,pattern,found with found 0 or 1");
  std::ofstream(path) << "id,pattern,found\n";
  EXPECT_THAT(ReadFraudTruth(path).status().message(), HasSubstr(":1: expected the header"));
  std::ofstream(path) << "declaration_id,pattern,found\n23EE1,a,1\n23EE1,b,0\n";
  EXPECT_EQ(ReadFraudTruth(path).status().message(), path + ":3: declaration 23EE1 twice");
  EXPECT_EQ(ReadFraudTruth(dir_ + "/none.csv").status().code(), absl::StatusCode::kNotFound);
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
