#include "common/data/declarations_csv.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

#include "common/data/declaration_schema.h"
#include "tests/support/small_declaration_schema.h"

namespace fedcustoms::data {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr const char* kSchemaJson = testing_support::kSmallSchemaJson;
constexpr const char* kHeader = testing_support::kSmallSchemaHeader;

constexpr int64_t kMiB = int64_t{1} << 20;

// The peak resident memory of this process so far (ru_maxrss is in KiB on
// Linux). Its growth over a call bounds what the call held at once; if an
// earlier test in the process peaked higher, the growth is smaller, so a
// check "grew by less than N" can miss a regression but never fail wrongly.
int64_t PeakRssBytes() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return int64_t{usage.ru_maxrss} * 1024;
}

class DeclarationsCsvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "/declarations_csv_XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    auto schema = ParseDeclarationSchema(kSchemaJson, "schema.json");
    ASSERT_TRUE(schema.ok()) << schema.status();
    schema_ = *schema;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Writes `content` to a file in the temp dir and returns its path.
  std::string Write(const std::string& content, const std::string& name = "d.csv") {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }

  absl::StatusOr<DeclarationTable> Read(const std::string& content,
                                        v1::BadRowPolicy policy = v1::FAIL) {
    return ReadDeclarationsCsv(Write(content), schema_, policy);
  }

  // The error message of reading `content`, which must fail.
  std::string ErrorOf(const std::string& content, v1::BadRowPolicy policy = v1::FAIL) {
    auto table = Read(content, policy);
    EXPECT_FALSE(table.ok());
    return table.ok() ? "" : std::string(table.status().message());
  }

  std::string Path() const { return dir_ + "/d.csv"; }

  std::string dir_;
  v1::DeclarationSchema schema_;
};

TEST_F(DeclarationsCsvTest, EncodesEveryRoleFromColumnsInAnyOrder) {
  auto table = Read(
      "extra,label,hs,origin,mass,value,sel,date,id\n"
      "x,1,610910,CN,12.5,99,risk,2023-01-01,A1\n"
      "y,0,6109,TR,-3,0,random,2024-02-29,A2\n");
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->rows, 2u);
  EXPECT_THAT(table->numeric_names, ElementsAre("value", "mass"));
  EXPECT_THAT(table->categorical_names, ElementsAre("origin", "hs"));
  EXPECT_THAT(table->buckets, ElementsAre(16u, 100u));
  ASSERT_EQ(table->numeric.size(), 4u);
  EXPECT_FLOAT_EQ(table->numeric[0], std::log1p(99.0f));
  EXPECT_FLOAT_EQ(table->numeric[1], 12.5f);
  EXPECT_FLOAT_EQ(table->numeric[2], 0.0f);
  EXPECT_FLOAT_EQ(table->numeric[3], -3.0f);  // no log1p on mass
  EXPECT_THAT(table->categorical, ElementsAre(CategoricalBucket("origin", "CN", 0, 16),
                                              CategoricalBucket("hs", "6109", 0, 100),
                                              CategoricalBucket("origin", "TR", 0, 16),
                                              CategoricalBucket("hs", "6109", 0, 100)));
  EXPECT_THAT(table->labels, ElementsAre(1.0f, 0.0f));
  EXPECT_THAT(table->days, ElementsAre(19358, 19782));
  EXPECT_THAT(table->ids, ElementsAre("A1", "A2"));
  EXPECT_EQ(table->skipped_rows, 0u);
}

TEST_F(DeclarationsCsvTest, QuotedFieldsHoldDelimitersQuotesAndLineBreaks) {
  auto table = Read(std::string(kHeader) +
                    "\"A,1\",2023-01-02,\"1e3\",1,\"say \"\"hi\"\"\",\"61\n09\",risk,1\n"
                    "A2,2023-01-03,2,3,\"\",\"\",random,0\n");
  ASSERT_TRUE(table.ok()) << table.status();
  ASSERT_EQ(table->rows, 2u);
  EXPECT_THAT(table->ids, ElementsAre("A,1", "A2"));
  EXPECT_FLOAT_EQ(table->numeric[0], std::log1p(1000.0f));
  EXPECT_EQ(table->categorical[0], CategoricalBucket("origin", "say \"hi\"", 0, 16));
  EXPECT_EQ(table->categorical[1], CategoricalBucket("hs", "61\n0", 0, 100));
  // Empty categorical values are bucket 0, "missing".
  EXPECT_EQ(table->categorical[2], 0);
  EXPECT_EQ(table->categorical[3], 0);
}

TEST_F(DeclarationsCsvTest, ToleratesCrlfBomBlankLinesAndSpaces) {
  auto table = Read(
      "\xEF\xBB\xBFid,date,value,mass,origin,hs,sel,label\r\n"
      "A1, 2023-01-01 , 5 ,1,  CN ,6109,risk, 1\r\n"
      "\r\n"
      "A2,2023-01-01,5,1,CN,6109,risk,0");  // no final line break
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->rows, 2u);
  EXPECT_EQ(table->categorical[0], CategoricalBucket("origin", "CN", 0, 16));
  EXPECT_EQ(table->categorical[0], table->categorical[2]);
  EXPECT_THAT(table->labels, ElementsAre(1.0f, 0.0f));
}

TEST_F(DeclarationsCsvTest, UsesTheSchemaDelimiter) {
  schema_.set_delimiter(";");
  auto table = Read(
      "id;date;value;mass;origin;hs;sel;label\n"
      "A,1;2023-01-01;5;1;CN;6109;risk;1\n");
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_THAT(table->ids, ElementsAre("A,1"));
}

TEST_F(DeclarationsCsvTest, ReadsWithoutOptionalRoles) {
  auto schema =
      ParseDeclarationSchema(R"({"columns": [{"name": "mass", "role": "NUMERIC"}]})", "s.json");
  ASSERT_TRUE(schema.ok()) << schema.status();
  auto table = ReadDeclarationsCsv(Write("mass,other\n1,x\n2,y\n"), *schema, v1::FAIL);
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->rows, 2u);
  EXPECT_FALSE(table->has_labels());
  EXPECT_TRUE(table->days.empty());
  EXPECT_TRUE(table->ids.empty());
}

TEST(CategoricalBucket, IsReservedZeroOnlyForEmptyValues) {
  EXPECT_EQ(CategoricalBucket("origin", "", 0, 16), 0u);
  for (const char* v : {"CN", "TR", "DE", "x", "0"}) {
    const uint32_t b = CategoricalBucket("origin", v, 0, 16);
    EXPECT_GE(b, 1u);
    EXPECT_LT(b, 16u);
  }
  EXPECT_EQ(CategoricalBucket("origin", "CN", 0, 2), 1u);
}

TEST(CategoricalBucket, PrefixGroupsCodesOfOneHeading) {
  EXPECT_EQ(CategoricalBucket("hs", "610910", 4, 1024), CategoricalBucket("hs", "6109", 0, 1024));
  EXPECT_EQ(CategoricalBucket("hs", "610990", 4, 1024), CategoricalBucket("hs", "610910", 4, 1024));
  EXPECT_EQ(CategoricalBucket("hs", "61", 4, 1024), CategoricalBucket("hs", "61", 0, 1024));
  // Code points, not bytes: "äöü" cut at 2 keeps "äö".
  EXPECT_EQ(CategoricalBucket("c", "\xC3\xA4\xC3\xB6\xC3\xBC", 2, 1024),
            CategoricalBucket("c", "\xC3\xA4\xC3\xB6", 0, 1024));
}

TEST(CategoricalBucket, DependsOnTheColumnName) {
  // Same value in two columns: FNV-1a of "<column>\x1f<value>".
  EXPECT_NE(CategoricalBucket("origin", "CN", 0, 1 << 20),
            CategoricalBucket("destination", "CN", 0, 1 << 20));
}

TEST(CategoricalBucket, IsFrozenAcrossReleases) {
  // Every node must compute these; a change here breaks federations.
  // FNV-1a-64("origin\x1f" "CN") = 0x5f1c52ffcbd28f85; 1 + h mod 999 = 151.
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : std::string("origin\x1f"
                                     "CN")) {
    h ^= c;
    h *= 1099511628211ull;
  }
  EXPECT_EQ(CategoricalBucket("origin", "CN", 0, 1000), 1 + h % 999);
  EXPECT_EQ(CategoricalBucket("origin", "CN", 0, 1000), 151u);
}

TEST(DeterministicSplit, HoldsOutTheLatestDatesWithTiesByIndex) {
  DeclarationTable t;
  t.rows = 6;
  t.days = {5, 1, 5, 3, 9, 1};
  Split s = DeterministicSplit(t, 0.5);
  // Sorted by (day, index): 1,5 | 3 | 0,2 | 4 -> last three are 2, 4 and 0.
  EXPECT_THAT(s.train, ElementsAre(1, 3, 5));
  EXPECT_THAT(s.holdout, ElementsAre(0, 2, 4));
}

TEST(DeterministicSplit, HoldsOutTheLastRowsWithoutDates) {
  DeclarationTable t;
  t.rows = 10;
  Split s = DeterministicSplit(t, 0.2);
  EXPECT_THAT(s.train, ElementsAre(0, 1, 2, 3, 4, 5, 6, 7));
  EXPECT_THAT(s.holdout, ElementsAre(8, 9));
}

TEST(DeterministicSplit, CarvesTheValidationSplitOutOfTrainingNeverOutOfTheHoldOut) {
  DeclarationTable t;
  t.rows = 20;
  t.days = {9, 1, 2, 3, 4, 5, 6, 7, 8, 0, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19};
  // Hold-out: the 4 latest days (rows 16..19); validation: the 2 latest of
  // the 16 left (round(0.1 x 16) = 2: days 14 and 15, rows 14 and 15).
  Split s = DeterministicSplit(t, 0.2, 0.1);
  EXPECT_THAT(s.holdout, ElementsAre(16, 17, 18, 19));
  EXPECT_THAT(s.validation, ElementsAre(14, 15));
  EXPECT_EQ(s.train.size(), 14u);
  EXPECT_THAT(s.train, ::testing::Not(::testing::Contains(14)));
  // Without validation (the default) training keeps every row.
  EXPECT_EQ(DeterministicSplit(t, 0.2).train.size(), 16u);
  EXPECT_TRUE(DeterministicSplit(t, 0.2).validation.empty());
  // Training keeps at least 2 rows whatever the fraction.
  t.days.clear();
  t.rows = 4;
  Split small = DeterministicSplit(t, 0.25, 1.0);
  EXPECT_THAT(small.train, ElementsAre(0, 1));
  EXPECT_THAT(small.validation, ElementsAre(2));
  EXPECT_THAT(small.holdout, ElementsAre(3));
  t.rows = 2;
  EXPECT_TRUE(DeterministicSplit(t, 0.5, 0.5).validation.empty());
  EXPECT_TRUE(DeterministicSplit(t, 0.5, std::nan("")).validation.empty());
}

TEST(DeterministicSplit, KeepsBothPartsNonEmpty) {
  DeclarationTable t;
  t.rows = 2;
  for (double f : {0.0, 0.01, 0.99, 1.0, std::nan("")}) {
    Split s = DeterministicSplit(t, f);
    EXPECT_EQ(s.train.size(), 1u) << f;
    EXPECT_EQ(s.holdout.size(), 1u) << f;
  }
  t.rows = 1;
  Split one = DeterministicSplit(t, 0.5);
  EXPECT_THAT(one.train, ElementsAre(0));
  EXPECT_TRUE(one.holdout.empty());
  t.rows = 0;
  Split none = DeterministicSplit(t, 0.5);
  EXPECT_TRUE(none.train.empty() && none.holdout.empty());
}

// Tests of all the error paths follow. Each message names the file, the line
// where the record starts and, for a value, the column.

TEST_F(DeclarationsCsvTest, MissingFileIsNotFound) {
  auto table = ReadDeclarationsCsv(dir_ + "/absent.csv", schema_, v1::FAIL);
  ASSERT_FALSE(table.ok());
  EXPECT_EQ(table.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(table.status().message()), HasSubstr(dir_ + "/absent.csv: cannot open"));
}

TEST_F(DeclarationsCsvTest, EmptyFileIsRefused) {
  EXPECT_EQ(ErrorOf(""), Path() + ": empty file; expected a header line naming the columns");
  EXPECT_EQ(ErrorOf("\n\n"), Path() + ": empty file; expected a header line naming the columns");
}

TEST_F(DeclarationsCsvTest, HeaderOnlyIsRefused) {
  EXPECT_EQ(ErrorOf(kHeader), Path() + ": no data rows after the header");
  EXPECT_EQ(ErrorOf(kHeader, v1::SKIP), Path() + ": no data rows after the header");
}

TEST_F(DeclarationsCsvTest, MissingColumnIsNamed) {
  EXPECT_EQ(ErrorOf("id,date,value,mass,hs,sel,label\nA,2023-01-01,1,1,6109,risk,0\n"),
            Path() + ":1: missing column \"origin\" (CATEGORICAL in the schema)");
}

TEST_F(DeclarationsCsvTest, SelectionColumnMayBeAbsent) {
  auto table = Read("id,date,value,mass,origin,hs,label\nA,2023-01-01,1,1,CN,6109,0\n");
  EXPECT_TRUE(table.ok()) << table.status();
}

TEST_F(DeclarationsCsvTest, DuplicateHeaderColumnIsRefused) {
  EXPECT_EQ(ErrorOf("id,date,value,mass,origin,hs,sel,label,mass\n"),
            Path() + ":1: column \"mass\" appears twice in the header (fields 4 and 9)");
}

TEST_F(DeclarationsCsvTest, UnparsableNumberNamesLineAndColumn) {
  EXPECT_EQ(ErrorOf(std::string(kHeader) + "A,2023-01-01,1,1,CN,6109,risk,0\n" +
                    "B,2023-01-01,\"12,5\",1,CN,6109,risk,0\n"),
            Path() + ":3: column \"value\": \"12,5\" is not a number");
  EXPECT_EQ(ErrorOf(std::string(kHeader) + "A,2023-01-01,1,1kg,CN,6109,risk,0\n"),
            Path() + ":2: column \"mass\": \"1kg\" is not a number");
}

TEST_F(DeclarationsCsvTest, EmptyNumberIsRefused) {
  EXPECT_EQ(ErrorOf(std::string(kHeader) + "A,2023-01-01,1, ,CN,6109,risk,0\n"),
            Path() + ":2: column \"mass\": empty value");
}

TEST_F(DeclarationsCsvTest, NanInfAndOverflowAreRefused) {
  for (const char* v : {"nan", "NaN", "inf", "-Infinity"}) {
    EXPECT_EQ(ErrorOf(std::string(kHeader) + "A,2023-01-01," + v + ",1,CN,6109,risk,0\n"),
              Path() + ":2: column \"value\": \"" + v + "\" is not a finite number");
  }
  EXPECT_EQ(ErrorOf(std::string(kHeader) + "A,2023-01-01,1e39,1,CN,6109,risk,0\n"),
            Path() + ":2: column \"value\": \"1e39\" is not a finite number");
  EXPECT_EQ(ErrorOf(std::string(kHeader) + "A,2023-01-01,1e999,1,CN,6109,risk,0\n"),
            Path() + ":2: column \"value\": \"1e999\" is out of range");
}

TEST_F(DeclarationsCsvTest, LabelMustBeZeroOrOne) {
  for (const char* v : {"2", "0.0", "yes", "", "-1"}) {
    EXPECT_EQ(ErrorOf(std::string(kHeader) + "A,2023-01-01,1,1,CN,6109,risk," + v + "\n"),
              Path() + ":2: column \"label\": \"" + v + "\" is not a label (0 or 1)");
  }
}

TEST_F(DeclarationsCsvTest, InvalidDateIsRefused) {
  for (const char* v : {"2023-02-29", "2023-13-01", "23-01-01", "2023/01/01", "2023-1-01"}) {
    EXPECT_EQ(ErrorOf(std::string(kHeader) + "A," + v + ",1,1,CN,6109,risk,0\n"),
              Path() + ":2: column \"date\": \"" + v + "\" is not a date (YYYY-MM-DD)");
  }
}

TEST_F(DeclarationsCsvTest, WrongFieldCountNamesTheLine) {
  EXPECT_EQ(ErrorOf(std::string(kHeader) + "A,2023-01-01,1,1,CN,6109,risk,0\n" +
                    "B,2023-01-01,1,1,CN,6109,0\n"),
            Path() + ":3: expected 8 fields, found 7");
  EXPECT_EQ(ErrorOf(std::string(kHeader) + "A,2023-01-01,1,1,CN,6109,risk,0,\n"),
            Path() + ":2: expected 8 fields, found 9");
}

TEST_F(DeclarationsCsvTest, LineNumbersCountLineBreaksInsideQuotes) {
  EXPECT_EQ(ErrorOf(std::string(kHeader) + "A,2023-01-01,1,1,\"C\nN\",6109,risk,0\n" +
                    "B,2023-01-01,1,1,CN,6109,risk,2\n"),
            Path() + ":4: column \"label\": \"2\" is not a label (0 or 1)");
}

TEST_F(DeclarationsCsvTest, NonUtf8NamesLineAndColumn) {
  EXPECT_EQ(ErrorOf(std::string(kHeader) + "A,2023-01-01,1,1,C\xff,6109,risk,0\n"),
            Path() + ":2: column \"origin\": invalid UTF-8 at byte 2");
  // Overlong encoding of '/' and a lone continuation byte.
  EXPECT_EQ(ErrorOf(std::string(kHeader) + "\xC0\xAF,2023-01-01,1,1,CN,6109,risk,0\n"),
            Path() + ":2: column \"id\": invalid UTF-8 at byte 1");
  EXPECT_EQ(ErrorOf("id,date,value,mass,origin,hs,sel,\x80label\n"),
            Path() + ":1: header field 8: invalid UTF-8 at byte 1");
}

TEST_F(DeclarationsCsvTest, OverlongRecordNamesTheLine) {
  const std::string long_id(kMaxCsvRecordBytes + 10, 'x');
  EXPECT_EQ(ErrorOf(std::string(kHeader) + "A,2023-01-01,1,1,CN,6109,risk,0\n" + long_id +
                    ",2023-01-01,1,1,CN,6109,risk,0\n"),
            Path() + ":3: record longer than 1048576 bytes");
}

TEST_F(DeclarationsCsvTest, CommaFloodIsRefusedWithoutAFieldPerComma) {
  // 8 Mi delimiters on line 3: one string each would be 8 Mi strings (over
  // 256 MiB with the vector's growth) built before the record is refused.
  const std::string good = "A,2023-01-01,1,1,CN,6109,risk,0\n";
  const std::string flood(size_t{8} << 20, ',');
  Write(std::string(kHeader) + good + flood + "\n");
  const int64_t peak_before = PeakRssBytes();
  auto table = ReadDeclarationsCsv(Path(), schema_, v1::FAIL);
  const int64_t grown = PeakRssBytes() - peak_before;
  ASSERT_FALSE(table.ok());
  EXPECT_EQ(table.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(table.status().message()), Path() + ":3: record longer than 1048576 bytes");
  // About 1 Mi fields up to the cap (~64 MiB of vector at most), then none.
  EXPECT_LT(grown, 160 * kMiB);

  // Scanning goes on to the end of the refused record: the next row is read.
  auto skipped = Read(
      std::string(kHeader) + good + flood + "\n" + "E,2023-01-02,2,2,TR,6110,risk,1\n", v1::SKIP);
  ASSERT_TRUE(skipped.ok()) << skipped.status();
  EXPECT_EQ(skipped->rows, 2u);
  EXPECT_EQ(skipped->skipped_rows, 1u);
  EXPECT_THAT(skipped->ids, ElementsAre("A", "E"));
}

TEST_F(DeclarationsCsvTest, TwoGibLineIsRefusedWithoutHoldingIt) {
  const std::string path = Write(std::string(kHeader) + "A,2023-01-01,1,1,CN,6109,risk,0\n");
  // Line 3 is 2 GiB + 1 NUL bytes without a line break; the file is sparse,
  // so it takes no disk.
  std::error_code ec;
  const std::uintmax_t rows_bytes = std::filesystem::file_size(path, ec);
  ASSERT_FALSE(ec) << ec.message();
  std::filesystem::resize_file(path, rows_bytes + (std::uintmax_t{2} << 30) + 1, ec);
  ASSERT_FALSE(ec) << ec.message();
  const int64_t peak_before = PeakRssBytes();
  auto table = ReadDeclarationsCsv(path, schema_, v1::FAIL);
  const int64_t grown = PeakRssBytes() - peak_before;
  ASSERT_FALSE(table.ok());
  EXPECT_EQ(table.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(table.status().message()), Path() + ":3: record longer than 1048576 bytes");
  // One record of at most the cap is held, not the line.
  EXPECT_LT(grown, 64 * kMiB);
}

TEST_F(DeclarationsCsvTest, UnterminatedQuoteFailsEvenWhenSkipping) {
  const std::string csv = std::string(kHeader) + "A,2023-01-01,1,1,CN,6109,risk,0\n" +
                          "\"B,2023-01-01,1,1,CN,6109,risk,0\nC,2023-01-01,1,1,CN,6109,risk,0\n";
  const std::string expected =
      Path() + ":3: unterminated quoted field (no closing quote before the end of the file)";
  EXPECT_EQ(ErrorOf(csv), expected);
  EXPECT_EQ(ErrorOf(csv, v1::SKIP), expected);
}

TEST_F(DeclarationsCsvTest, TextAfterClosingQuoteIsRefused) {
  EXPECT_EQ(ErrorOf(std::string(kHeader) + "\"A\"x,2023-01-01,1,1,CN,6109,risk,0\n"),
            Path() + ":2: field 1: unexpected character after a closing quote");
}

TEST_F(DeclarationsCsvTest, SkipPolicyDropsAndCountsBadRows) {
  const std::string long_id(kMaxCsvRecordBytes + 1, 'x');
  auto table = Read(std::string(kHeader) +
                        "A,2023-01-01,1,1,CN,6109,risk,0\n"  // good
                        "B,2023-01-01,x,1,CN,6109,risk,0\n"  // not a number
                        "C,2023-01-01,1,1,CN,6109,risk\n" +  // 7 fields
                        long_id +
                        ",2023-01-01,1,1,CN,6109,risk,0\n" +
                        "D,2023-01-01,1,1,CN,6109,risk,9\n"   // label 9
                        "E,2023-01-02,2,2,TR,6110,risk,1\n",  // good
                    v1::SKIP);
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->rows, 2u);
  EXPECT_EQ(table->skipped_rows, 4u);
  EXPECT_THAT(table->ids, ElementsAre("A", "E"));
  EXPECT_THAT(table->labels, ElementsAre(0.0f, 1.0f));
  EXPECT_EQ(table->numeric.size(), 4u);
  EXPECT_EQ(table->categorical.size(), 4u);
}

TEST_F(DeclarationsCsvTest, SkipPolicyStillFailsOnHeaderErrors) {
  EXPECT_EQ(ErrorOf("id,date,value,origin,hs,sel,label\nA,2023-01-01,1,CN,6109,risk,0\n", v1::SKIP),
            Path() + ":1: missing column \"mass\" (NUMERIC in the schema)");
}

TEST_F(DeclarationsCsvTest, SkipPolicyFailsWhenEveryRowIsBad) {
  EXPECT_EQ(ErrorOf(std::string(kHeader) + "A,2023-01-01,x,1,CN,6109,risk,0\n" +
                        "B,2023-01-01,1,1,CN,6109,risk,3\n",
                    v1::SKIP),
            Path() + ": no usable rows: all 2 data rows are bad; the first: " + Path() +
                ":2: column \"value\": \"x\" is not a number");
}

}  // namespace
}  // namespace fedcustoms::data
