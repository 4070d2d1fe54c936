#include "analyst/report/group_report.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "analyst/report/proportion_interval.h"
#include "analyst/report/report_html.h"

namespace fedcustoms::report {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr double kZ2 = kZ95 * kZ95;  // 3.841459...

// Flagged row indices, for readable expectations.
std::vector<size_t> FlaggedRows(const std::vector<bool>& flags) {
  std::vector<size_t> rows;
  for (size_t i = 0; i < flags.size(); ++i) {
    if (flags[i]) rows.push_back(i);
  }
  return rows;
}

void ExpectProportion(const Proportion& p, uint64_t successes, uint64_t trials) {
  const Proportion w = WilsonInterval(successes, trials);
  EXPECT_EQ(p.successes, successes);
  EXPECT_EQ(p.trials, trials);
  EXPECT_DOUBLE_EQ(p.value, w.value);
  EXPECT_DOUBLE_EQ(p.low, w.low);
  EXPECT_DOUBLE_EQ(p.high, w.high);
}

void ExpectRatio(const std::optional<Ratio>& r, double value, const Proportion& group,
                 double overall) {
  ASSERT_TRUE(r.has_value());
  EXPECT_NEAR(r->value, value, 1e-12);
  EXPECT_DOUBLE_EQ(r->low, group.low / overall);
  EXPECT_DOUBLE_EQ(r->high, group.high / overall);
}

// The hand-computed table of most tests below. Budget 0.3 of 10 rows flags m = 3.
//
//   row score label country office selection
//    0  0.9    1    FR      A      risk         flagged (1st)
//    1  0.8    0    FR      B      risk         flagged (2nd)
//    2  0.7    1    DE      A      random       flagged (3rd: ties row 3, lower index first)
//    3  0.7    0    DE      B      Random       not flagged
//    4  0.6    1    FR      A      random
//    5  0.5    0    ""      B      risk
//    6  0.4    0    DE      A      ""           (unknown selection)
//    7  0.3    1    FR      B      random
//    8  NaN    0    FR      A      risk         (ranks last)
//    9  0.2    0    DE      B      " random "
//
// Overall: rows 10, positives 4 (0 2 4 7), negatives 6, flagged 3, TP 2 (0 2), FP 1 (1).
//   flag rate 3/10, precision 2/3, recall 2/4, FPR 1/6.
// Minimums for this table: 5 rows, 1 positive, 2 negatives.
ScoredDeclarations SmallTable() {
  ScoredDeclarations in;
  in.scores = {0.9f, 0.8f, 0.7f, 0.7f, 0.6f, 0.5f, 0.4f, 0.3f, kNaN, 0.2f};
  in.labels = {1, 0, 1, 0, 1, 0, 0, 1, 0, 0};
  in.group_columns = {
      {"origin_country", {"FR", "FR", "DE", "DE", "FR", "", "DE", "FR", "FR", "DE"}},
      {"office", {"A", "B", "A", "B", "A", "B", "A", "B", "A", "B"}}};
  in.selection = {"risk", "risk", "random", "Random", "random",
                  "risk", "",     "random", "risk",   " random "};
  in.options.budget = 0.3;
  in.options.min_group_rows = 5;
  in.options.min_group_positives = 1;
  in.options.min_group_negatives = 2;
  return in;
}

const GroupStats* FindGroup(const GroupReport& r, const std::string& column,
                            const std::string& value) {
  for (const GroupColumnReport& c : r.columns) {
    if (c.name != column) continue;
    for (const GroupStats& g : c.groups) {
      if (g.value == value) return &g;
    }
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Wilson interval

TEST(WilsonInterval, MatchesPublishedValuesForHalf) {
  // p = 0.5, n = 10: center = 0.5; half = z / (1 + z²/10) * sqrt(0.025 + z²/400)
  //   = 1.95996 / 1.384146 * sqrt(0.034604) = 0.263408 -> [0.236592, 0.763408].
  const Proportion p = WilsonInterval(5, 10);
  EXPECT_EQ(p.successes, 5u);
  EXPECT_EQ(p.trials, 10u);
  EXPECT_DOUBLE_EQ(p.value, 0.5);
  EXPECT_NEAR(p.low, 0.2366, 5e-5);
  EXPECT_NEAR(p.high, 0.7634, 5e-5);
  EXPECT_NEAR(p.low + p.high, 1.0, 1e-15);  // symmetric around 1/2
}

TEST(WilsonInterval, ZeroSuccessesStartsAtZero) {
  // p = 0: center = half = z² / (2 (n + z²)), so low = 0 and high = z² / (n + z²)
  //   = 3.841459 / 13.841459 = 0.277533.
  const Proportion p = WilsonInterval(0, 10);
  EXPECT_EQ(p.value, 0.0);
  EXPECT_EQ(p.low, 0.0);
  EXPECT_NEAR(p.high, kZ2 / (10 + kZ2), 1e-15);
  EXPECT_NEAR(p.high, 0.2775, 5e-5);
}

TEST(WilsonInterval, AllSuccessesEndsAtOne) {
  // Mirror of 0/10: [1 - 0.277533, 1] = [0.722467, 1].
  const Proportion p = WilsonInterval(10, 10);
  EXPECT_EQ(p.value, 1.0);
  EXPECT_NEAR(p.low, 10 / (10 + kZ2), 1e-15);
  EXPECT_NEAR(p.low, 0.7225, 5e-5);
  EXPECT_EQ(p.high, 1.0);
}

TEST(WilsonInterval, ZeroTrialsMeansNothingKnown) {
  const Proportion p = WilsonInterval(0, 0);
  EXPECT_EQ(p.trials, 0u);
  EXPECT_EQ(p.value, 0.0);
  EXPECT_EQ(p.low, 0.0);
  EXPECT_EQ(p.high, 1.0);
}

TEST(WilsonInterval, StaysInsideTheUnitIntervalAndAroundTheEstimate) {
  for (uint64_t n : {1u, 2u, 7u, 100u, 100000u}) {
    for (uint64_t k = 0; k <= n; k += (n > 10 ? n / 7 : 1)) {
      const Proportion p = WilsonInterval(k, n);
      EXPECT_LE(0.0, p.low);
      EXPECT_LE(p.low, p.value);
      EXPECT_LE(p.value, p.high);
      EXPECT_LE(p.high, 1.0);
    }
  }
}

TEST(WilsonInterval, CutsSuccessesBeyondTrials) {
  const Proportion p = WilsonInterval(12, 10);
  EXPECT_EQ(p.successes, 10u);
  EXPECT_EQ(p.value, 1.0);
  EXPECT_EQ(p.high, 1.0);
}

// ---------------------------------------------------------------------------------------------
// Flagging

TEST(FlagTopShare, BreaksTiesByLowerIndexAndRanksNaNLast) {
  // m = ceil(0.5 * 6) = 3. Order: row 1 (0.9), then the 0.5 ties rows 0, 3, 5 by index.
  const std::vector<float> scores = {0.5f, 0.9f, kNaN, 0.5f, 0.1f, 0.5f};
  EXPECT_EQ(FlaggedRows(FlagTopShare(scores, 0.5)), (std::vector<size_t>{0, 1, 3}));
  // m = ceil(0.9 * 6) = ceil(5.4) = 6: everything, NaN included, once numbers run out.
  EXPECT_EQ(FlaggedRows(FlagTopShare(scores, 0.9)), (std::vector<size_t>{0, 1, 2, 3, 4, 5}));
  // m = ceil(0.7 * 6) = ceil(4.2) = 5: every number, NaN is the one left out.
  EXPECT_EQ(FlaggedRows(FlagTopShare(scores, 0.7)), (std::vector<size_t>{0, 1, 3, 4, 5}));
}

TEST(FlagTopShare, NaNRanksBelowNegativeInfinity) {
  // NaN is keyed as -inf and -inf ties it; the lower index wins the tie.
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(FlaggedRows(FlagTopShare(std::vector<float>{kNaN, -inf, 0.0f}, 0.6)),
            (std::vector<size_t>{0, 2}));
}

TEST(FlagTopShare, RoundsTheCountUpLikeTheMetrics) {
  const std::vector<float> ten(10, 0.5f);
  EXPECT_EQ(FlaggedRows(FlagTopShare(ten, 0.01)).size(), 1u);  // ceil(0.1)
  EXPECT_EQ(FlaggedRows(FlagTopShare(ten, 0.25)).size(), 3u);  // ceil(2.5)
  EXPECT_EQ(FlaggedRows(FlagTopShare(ten, 1.0)).size(), 10u);
  // 0.07 * 100 is 7.000000000000001 in binary; metrics' (7 * 100 + 99) / 100 = 7.
  const std::vector<float> hundred(100, 0.5f);
  EXPECT_EQ(FlaggedRows(FlagTopShare(hundred, 0.07)).size(), 7u);
  EXPECT_EQ(FlaggedRows(FlagTopShare(hundred, 0.05)).size(), 5u);
  EXPECT_TRUE(FlagTopShare(std::vector<float>{}, 0.05).empty());
}

TEST(FlagTopShare, OutOfRangeBudgetsFlagNothingOrEverything) {
  const std::vector<float> scores = {0.1f, 0.2f};
  EXPECT_TRUE(FlaggedRows(FlagTopShare(scores, 0)).empty());
  EXPECT_TRUE(FlaggedRows(FlagTopShare(scores, -1)).empty());
  EXPECT_TRUE(FlaggedRows(FlagTopShare(scores, std::nan(""))).empty());
  EXPECT_EQ(FlaggedRows(FlagTopShare(scores, 2)).size(), 2u);
}

// ---------------------------------------------------------------------------------------------
// Group report on the hand-computed table

TEST(GroupReport, OverallCountsAndRates) {
  const absl::StatusOr<GroupReport> r = BuildGroupReport(SmallTable());
  ASSERT_TRUE(r.ok()) << r.status();
  const Counts& o = r->overall;
  EXPECT_EQ(o.rows, 10u);
  EXPECT_EQ(o.positives, 4u);
  EXPECT_EQ(o.negatives, 6u);
  EXPECT_EQ(o.flagged, 3u);
  EXPECT_EQ(o.true_positives, 2u);
  EXPECT_EQ(o.false_positives, 1u);
  ExpectProportion(r->overall_rates.flag_rate, 3, 10);
  ExpectProportion(r->overall_rates.precision, 2, 3);
  ExpectProportion(r->overall_rates.recall, 2, 4);
  ExpectProportion(r->overall_rates.false_positive_rate, 1, 6);
}

TEST(GroupReport, CountsEveryGroupOfTheFirstColumnByHand) {
  // origin_country:
  //   FR rows 0 1 4 7 8: positives 0 4 7 = 3, negatives 1 8 = 2, flagged 0 1 = 2, TP 0 = 1,
  //      FP 1 = 1. flag 2/5, precision 1/2, recall 1/3, FPR 1/2.
  //      ratios: 0.4 / 0.3 = 4/3, 0.5 / (2/3) = 3/4, (1/3) / (1/2) = 2/3, (1/2) / (1/6) = 3.
  //   DE rows 2 3 6 9: positives 2 = 1, negatives 3, flagged 2 = 1, TP 1, FP 0.
  //      flag 1/4, precision 1/1, recall 1/1, FPR 0/3.
  //      ratios: 0.25 / 0.3 = 5/6, 1 / (2/3) = 3/2, 1 / (1/2) = 2, 0.
  //   "" row 5: positives 0, negatives 1, flagged 0. flag 0/1, precision 0/0, recall 0/0,
  //      FPR 0/1. ratios: 0, none (0 flagged), none (0 positives), 0.
  // Order by rows descending: FR (5), DE (4), "" (1).
  const absl::StatusOr<GroupReport> r = BuildGroupReport(SmallTable());
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->columns.size(), 2u);
  const GroupColumnReport& country = r->columns[0];
  EXPECT_EQ(country.name, "origin_country");
  ASSERT_EQ(country.groups.size(), 3u);
  EXPECT_EQ(country.groups[0].value, "FR");
  EXPECT_EQ(country.groups[1].value, "DE");
  EXPECT_EQ(country.groups[2].value, "");

  const GroupStats& fr = country.groups[0];
  EXPECT_EQ(fr.counts.rows, 5u);
  EXPECT_EQ(fr.counts.positives, 3u);
  EXPECT_EQ(fr.counts.negatives, 2u);
  EXPECT_EQ(fr.counts.flagged, 2u);
  EXPECT_EQ(fr.counts.true_positives, 1u);
  EXPECT_EQ(fr.counts.false_positives, 1u);
  ExpectProportion(fr.rates.flag_rate, 2, 5);
  ExpectProportion(fr.rates.precision, 1, 2);
  ExpectProportion(fr.rates.recall, 1, 3);
  ExpectProportion(fr.rates.false_positive_rate, 1, 2);
  ExpectRatio(fr.ratios.flag_rate, 4.0 / 3.0, fr.rates.flag_rate, 0.3);
  ExpectRatio(fr.ratios.precision, 0.75, fr.rates.precision, 2.0 / 3.0);
  ExpectRatio(fr.ratios.recall, 2.0 / 3.0, fr.rates.recall, 0.5);
  ExpectRatio(fr.ratios.false_positive_rate, 3.0, fr.rates.false_positive_rate, 1.0 / 6.0);
  EXPECT_FALSE(fr.too_small);
  EXPECT_EQ(fr.too_small_reason, "");

  const GroupStats& de = country.groups[1];
  EXPECT_EQ(de.counts.rows, 4u);
  EXPECT_EQ(de.counts.positives, 1u);
  EXPECT_EQ(de.counts.negatives, 3u);
  EXPECT_EQ(de.counts.flagged, 1u);
  EXPECT_EQ(de.counts.true_positives, 1u);
  EXPECT_EQ(de.counts.false_positives, 0u);
  ExpectProportion(de.rates.flag_rate, 1, 4);
  ExpectProportion(de.rates.precision, 1, 1);
  ExpectProportion(de.rates.recall, 1, 1);
  ExpectProportion(de.rates.false_positive_rate, 0, 3);
  ExpectRatio(de.ratios.flag_rate, 5.0 / 6.0, de.rates.flag_rate, 0.3);
  ExpectRatio(de.ratios.precision, 1.5, de.rates.precision, 2.0 / 3.0);
  ExpectRatio(de.ratios.recall, 2.0, de.rates.recall, 0.5);
  ExpectRatio(de.ratios.false_positive_rate, 0.0, de.rates.false_positive_rate, 1.0 / 6.0);

  const GroupStats& empty = country.groups[2];
  EXPECT_EQ(empty.counts.rows, 1u);
  EXPECT_EQ(empty.counts.positives, 0u);
  EXPECT_EQ(empty.counts.negatives, 1u);
  EXPECT_EQ(empty.counts.flagged, 0u);
  ExpectProportion(empty.rates.flag_rate, 0, 1);
  ExpectProportion(empty.rates.precision, 0, 0);
  ExpectProportion(empty.rates.recall, 0, 0);
  ExpectProportion(empty.rates.false_positive_rate, 0, 1);
  ExpectRatio(empty.ratios.flag_rate, 0.0, empty.rates.flag_rate, 0.3);
  EXPECT_FALSE(empty.ratios.precision.has_value());
  EXPECT_FALSE(empty.ratios.recall.has_value());
  ExpectRatio(empty.ratios.false_positive_rate, 0.0, empty.rates.false_positive_rate, 1.0 / 6.0);
}

TEST(GroupReport, CountsTheSecondColumnAndOrdersEqualSizesByValue) {
  // office: A rows 0 2 4 6 8: positives 0 2 4 = 3, negatives 6 8 = 2, flagged 0 2 = 2, TP 2, FP 0.
  //         B rows 1 3 5 7 9: positives 7 = 1, negatives 1 3 5 9 = 4, flagged 1 = 1, TP 0, FP 1.
  // Both have 5 rows, so A comes before B. Sums match overall: 4 positives, 3 flagged.
  const absl::StatusOr<GroupReport> r = BuildGroupReport(SmallTable());
  ASSERT_TRUE(r.ok()) << r.status();
  const GroupColumnReport& office = r->columns[1];
  EXPECT_EQ(office.name, "office");
  ASSERT_EQ(office.groups.size(), 2u);
  const GroupStats& a = office.groups[0];
  const GroupStats& b = office.groups[1];
  EXPECT_EQ(a.value, "A");
  EXPECT_EQ(b.value, "B");
  EXPECT_EQ(a.counts.rows, 5u);
  EXPECT_EQ(a.counts.positives, 3u);
  EXPECT_EQ(a.counts.negatives, 2u);
  EXPECT_EQ(a.counts.flagged, 2u);
  EXPECT_EQ(a.counts.true_positives, 2u);
  EXPECT_EQ(a.counts.false_positives, 0u);
  EXPECT_EQ(b.counts.rows, 5u);
  EXPECT_EQ(b.counts.positives, 1u);
  EXPECT_EQ(b.counts.negatives, 4u);
  EXPECT_EQ(b.counts.flagged, 1u);
  EXPECT_EQ(b.counts.true_positives, 0u);
  EXPECT_EQ(b.counts.false_positives, 1u);
  // A: precision 2/2 over 2/3 = 1.5, recall 2/3 over 1/2 = 4/3, FPR 0 over 1/6 = 0.
  ExpectRatio(a.ratios.precision, 1.5, a.rates.precision, 2.0 / 3.0);
  ExpectRatio(a.ratios.recall, 4.0 / 3.0, a.rates.recall, 0.5);
  ExpectRatio(a.ratios.false_positive_rate, 0.0, a.rates.false_positive_rate, 1.0 / 6.0);
  // B: flag 1/5 over 3/10 = 2/3, precision 0/1 over 2/3 = 0, FPR 1/4 over 1/6 = 1.5.
  ExpectRatio(b.ratios.flag_rate, 2.0 / 3.0, b.rates.flag_rate, 0.3);
  ExpectRatio(b.ratios.precision, 0.0, b.rates.precision, 2.0 / 3.0);
  ExpectRatio(b.ratios.false_positive_rate, 1.5, b.rates.false_positive_rate, 1.0 / 6.0);
  EXPECT_FALSE(a.too_small);
  EXPECT_FALSE(b.too_small);
}

TEST(GroupReport, MarksSmallGroupsWithEveryReasonAndKeepsThem) {
  // Minimums 5 rows, 1 positive, 2 negatives. DE has 4 rows; "" has 1 row, 0 positives and
  // 1 negative.
  const absl::StatusOr<GroupReport> r = BuildGroupReport(SmallTable());
  ASSERT_TRUE(r.ok()) << r.status();
  const GroupStats* de = FindGroup(*r, "origin_country", "DE");
  ASSERT_NE(de, nullptr);
  EXPECT_TRUE(de->too_small);
  EXPECT_EQ(de->too_small_reason, "4 rows < 5");
  const GroupStats* empty = FindGroup(*r, "origin_country", "");
  ASSERT_NE(empty, nullptr);
  EXPECT_TRUE(empty->too_small);
  EXPECT_EQ(empty->too_small_reason, "1 rows < 5; 0 positives < 1; 1 negatives < 2");
}

TEST(GroupReport, DefaultMinimumsMarkEveryGroupOfATinyTable) {
  ScoredDeclarations in = SmallTable();
  in.options = ReportOptions{};
  in.options.budget = 0.3;
  const absl::StatusOr<GroupReport> r = BuildGroupReport(in);
  ASSERT_TRUE(r.ok()) << r.status();
  const GroupStats* b = FindGroup(*r, "office", "B");
  ASSERT_NE(b, nullptr);
  EXPECT_TRUE(b->too_small);
  EXPECT_EQ(b->too_small_reason, "5 rows < 50; 1 positives < 5; 4 negatives < 5");
  EXPECT_EQ(r->columns[0].groups.size(), 3u);
  EXPECT_EQ(r->columns[1].groups.size(), 2u);
}

TEST(GroupReport, RatioDividesTheGroupIntervalByTheOverallEstimate) {
  const Proportion group = WilsonInterval(2, 5);     // 0.4 [0.1176, 0.7693]
  const Proportion overall = WilsonInterval(3, 10);  // 0.3, treated as fixed
  const std::optional<Ratio> r = RatioToOverall(group, overall);
  ASSERT_TRUE(r.has_value());
  EXPECT_DOUBLE_EQ(r->value, 0.4 / 0.3);
  EXPECT_DOUBLE_EQ(r->low, group.low / 0.3);
  EXPECT_DOUBLE_EQ(r->high, group.high / 0.3);
  EXPECT_NEAR(r->low, 0.1176 / 0.3, 1e-3);
  EXPECT_NEAR(r->high, 0.7693 / 0.3, 1e-3);
}

TEST(GroupReport, RatioIsAbsentWithoutAnOverallRateOrGroupTrials) {
  EXPECT_FALSE(RatioToOverall(WilsonInterval(1, 4), WilsonInterval(0, 10)).has_value());
  EXPECT_FALSE(RatioToOverall(WilsonInterval(0, 0), WilsonInterval(3, 10)).has_value());
  EXPECT_TRUE(RatioToOverall(WilsonInterval(0, 4), WilsonInterval(3, 10)).has_value());
}

TEST(GroupReport, NoPositivesAnywhereGivesNoRecallRatios) {
  ScoredDeclarations in;
  in.scores = {0.9f, 0.1f, 0.5f, 0.4f};
  in.labels = {0, 0, 0, 0};
  in.group_columns = {{"office", {"A", "A", "B", "B"}}};
  in.options.budget = 0.5;
  const absl::StatusOr<GroupReport> r = BuildGroupReport(in);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->overall.positives, 0u);
  for (const GroupStats& g : r->columns[0].groups) {
    EXPECT_FALSE(g.ratios.recall.has_value());
    EXPECT_FALSE(g.ratios.precision.has_value());  // overall precision 0/2 = 0
    EXPECT_TRUE(g.ratios.flag_rate.has_value());
  }
  EXPECT_FALSE(r->selection.has_value());
}

// ---------------------------------------------------------------------------------------------
// Random controls versus risk-selected controls

TEST(SelectionComparison, CountsRandomAndRiskSelectedRowsByHand) {
  // Selection after trimming and lower-casing: random = rows 2 3 4 7 9, risk = 0 1 5 8,
  // unknown = row 6.
  //   random scores 0.7 0.7 0.6 0.3 0.2: their own top ceil(0.3 * 5) = 2 are rows 2 and 3,
  //           so the threshold is 0.7.
  //   random: rows 5, positives 2 4 7 = 3, flagged 2 3 = 2, flagged positives 2 = 1.
  //           non-compliance 3/5, recall 1/3, precision 1/2.
  //   risk:   scores 0.9 0.8 0.5 NaN; >= 0.7: rows 0 1.
  //           rows 4, positives 0 = 1, flagged 0 1 = 2, flagged positives 0 = 1.
  //           non-compliance 1/4, recall 1/1, precision 1/2.
  const absl::StatusOr<GroupReport> r = BuildGroupReport(SmallTable());
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->selection.has_value());
  const SelectionComparison& s = *r->selection;
  EXPECT_EQ(s.unknown_rows, 1u);
  EXPECT_EQ(s.note, "");
  ASSERT_TRUE(s.random.has_value());
  ASSERT_TRUE(s.risk_selected.has_value());
  const SelectionEstimate& random = *s.random;
  EXPECT_EQ(random.counts.rows, 5u);
  EXPECT_EQ(random.counts.positives, 3u);
  EXPECT_EQ(random.counts.flagged, 2u);
  EXPECT_EQ(random.counts.flagged_positives, 1u);
  ExpectProportion(random.non_compliance_rate, 3, 5);
  ExpectProportion(random.recall, 1, 3);
  ExpectProportion(random.precision, 1, 2);
  ASSERT_TRUE(s.threshold.has_value());
  EXPECT_FLOAT_EQ(*s.threshold, 0.7f);
  const SelectionEstimate& risk = *s.risk_selected;
  EXPECT_EQ(risk.counts.rows, 4u);
  EXPECT_EQ(risk.counts.positives, 1u);
  EXPECT_EQ(risk.counts.flagged, 2u);
  EXPECT_EQ(risk.counts.flagged_positives, 1u);
  ExpectProportion(risk.non_compliance_rate, 1, 4);
  ExpectProportion(risk.recall, 1, 1);
  ExpectProportion(risk.precision, 1, 2);
}

TEST(SelectionComparison, NoRandomRowsGivesANoteInsteadOfNumbers) {
  ScoredDeclarations in = SmallTable();
  in.selection.assign(in.scores.size(), "risk");
  in.selection[3] = "  ";  // whitespace only: unknown
  const absl::StatusOr<GroupReport> r = BuildGroupReport(in);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->selection.has_value());
  EXPECT_FALSE(r->selection->random.has_value());
  ASSERT_TRUE(r->selection->risk_selected.has_value());
  EXPECT_EQ(r->selection->risk_selected->counts.rows, 9u);
  EXPECT_EQ(r->selection->unknown_rows, 1u);
  EXPECT_NE(r->selection->note.find("no randomly selected controls"), std::string::npos);
}

TEST(SelectionComparison, HonoursAnotherRandomValue) {
  ScoredDeclarations in = SmallTable();
  in.options.random_value = "RISK";  // now rows 0 1 5 8 are the "random" ones
  const absl::StatusOr<GroupReport> r = BuildGroupReport(in);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->selection->random->counts.rows, 4u);
  EXPECT_EQ(r->selection->risk_selected->counts.rows, 5u);
}

TEST(EstimateFromCounts, GivesWilsonIntervalsOfTheThreeRates) {
  const SelectionEstimate e =
      EstimateFromCounts({.rows = 200, .positives = 20, .flagged = 10, .flagged_positives = 6});
  EXPECT_EQ(e.counts.rows, 200u);
  ExpectProportion(e.non_compliance_rate, 20, 200);
  ExpectProportion(e.recall, 6, 20);
  ExpectProportion(e.precision, 6, 10);
  // Summed counts from two nodes give the pooled estimate, as the coordinator will compute it.
  const SelectionEstimate pooled = EstimateFromCounts({300, 30, 15, 9});
  EXPECT_DOUBLE_EQ(pooled.recall.value, 0.3);
}

TEST(EstimateFromCounts, ZeroCountsKnowNothing) {
  const SelectionEstimate e = EstimateFromCounts({});
  for (const Proportion* p : {&e.non_compliance_rate, &e.recall, &e.precision}) {
    EXPECT_EQ(p->value, 0.0);
    EXPECT_EQ(p->low, 0.0);
    EXPECT_EQ(p->high, 1.0);
  }
}

TEST(EstimateFromCounts, InconsistentCountsStayFinite) {
  const SelectionEstimate e = EstimateFromCounts({3, 5, 1, 4});
  EXPECT_EQ(e.non_compliance_rate.value, 1.0);
  EXPECT_EQ(e.precision.value, 1.0);
  EXPECT_TRUE(std::isfinite(e.recall.low) && std::isfinite(e.recall.high));
}

// ---------------------------------------------------------------------------------------------
// Error paths

void ExpectInvalid(const ScoredDeclarations& in, const std::string& fragment) {
  const absl::StatusOr<GroupReport> r = BuildGroupReport(in);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find(fragment), std::string::npos)
      << "message: " << r.status().message() << "\nexpected to contain: " << fragment;
}

TEST(GroupReportErrors, EmptyInput) { ExpectInvalid(ScoredDeclarations{}, "scores: empty input"); }

TEST(GroupReportErrors, LabelsOfAnotherLength) {
  ScoredDeclarations in = SmallTable();
  in.labels.pop_back();
  ExpectInvalid(in, "labels has 9 values but scores has 10");
}

TEST(GroupReportErrors, GroupColumnOfAnotherLengthIsNamed) {
  ScoredDeclarations in = SmallTable();
  in.group_columns[1].values.push_back("C");
  ExpectInvalid(in, "group column 'office' has 11 values but scores has 10");
}

TEST(GroupReportErrors, SelectionOfAnotherLength) {
  ScoredDeclarations in = SmallTable();
  in.selection.resize(3);
  ExpectInvalid(in, "selection has 3 values but scores has 10");
}

TEST(GroupReportErrors, EmptyOrRepeatedColumnName) {
  ScoredDeclarations in = SmallTable();
  in.group_columns[1].name = "";
  ExpectInvalid(in, "group_columns[1]: the column name is empty");
  in.group_columns[1].name = "origin_country";
  ExpectInvalid(in, "group_columns[1]: column 'origin_country' is listed twice");
}

TEST(GroupReportErrors, BudgetOutsideZeroToOne) {
  for (double budget : {0.0, -0.1, 1.5, std::nan("")}) {
    ScoredDeclarations in = SmallTable();
    in.options.budget = budget;
    ExpectInvalid(in, "options.budget must be in (0, 1]");
  }
  ScoredDeclarations in = SmallTable();
  in.options.budget = 1.0;  // the upper end is allowed: inspect everything
  EXPECT_TRUE(BuildGroupReport(in).ok());
}

TEST(GroupReportErrors, EmptyRandomValue) {
  ScoredDeclarations in = SmallTable();
  in.options.random_value = " ";
  ExpectInvalid(in, "options.random_value is empty");
}

TEST(GroupReportErrors, LabelThatIsNotZeroOrOneNamesTheRow) {
  ScoredDeclarations in = SmallTable();
  in.labels[4] = 0.5f;
  ExpectInvalid(in, "labels[4] is 0.5");
  in.labels[4] = kNaN;
  ExpectInvalid(in, "labels[4] is nan");
  in.labels[4] = 2;
  ExpectInvalid(in, "labels[4] is 2; a label must be 0 or 1");
}

TEST(SelectionCountsErrors, EachInconsistencyNamesItsField) {
  EXPECT_TRUE(CheckSelectionCounts({10, 4, 3, 2}).ok());
  const absl::Status positives = CheckSelectionCounts({3, 4, 0, 0});
  EXPECT_EQ(positives.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(positives.message(), "positives (4) exceeds rows (3)");
  EXPECT_EQ(CheckSelectionCounts({3, 1, 4, 0}).message(), "flagged (4) exceeds rows (3)");
  EXPECT_EQ(CheckSelectionCounts({10, 4, 3, 4}).message(),
            "flagged_positives (4) exceeds positives (4) or flagged (3)");
}

// ---------------------------------------------------------------------------------------------
// JSON

TEST(GroupReportJson, HasEveryDocumentedField) {
  const absl::StatusOr<GroupReport> r = BuildGroupReport(SmallTable());
  ASSERT_TRUE(r.ok()) << r.status();
  const nlohmann::json j = GroupReportToJson(*r);
  EXPECT_EQ(j["format"], "fedcustoms.group_report.v1");
  for (const char* k :
       {"budget", "random_value", "min_group_rows", "min_group_positives", "min_group_negatives"}) {
    EXPECT_TRUE(j["options"].contains(k)) << k;
  }
  const char* kCounts[] = {"rows",    "positives",      "negatives",
                           "flagged", "true_positives", "false_positives"};
  const char* kRates[] = {"flag_rate", "precision", "recall", "false_positive_rate"};
  const char* kProportion[] = {"successes", "trials", "value", "low", "high"};
  for (const char* k : kCounts) EXPECT_TRUE(j["overall"].contains(k)) << k;
  for (const char* rate : kRates) {
    for (const char* k : kProportion) EXPECT_TRUE(j["overall"][rate].contains(k)) << rate << k;
    EXPECT_FALSE(j["overall"][rate].contains("ratio"));
  }
  EXPECT_EQ(j["overall"]["flagged"], 3);
  EXPECT_EQ(j["overall"]["recall"]["successes"], 2);
  EXPECT_EQ(j["overall"]["recall"]["trials"], 4);

  ASSERT_EQ(j["group_columns"].size(), 2u);
  EXPECT_EQ(j["group_columns"][0]["name"], "origin_country");
  const nlohmann::json& groups = j["group_columns"][0]["groups"];
  ASSERT_EQ(groups.size(), 3u);
  for (const nlohmann::json& g : groups) {
    for (const char* k : {"value", "label", "too_small", "too_small_reason"}) {
      EXPECT_TRUE(g.contains(k)) << k;
    }
    for (const char* k : kCounts) EXPECT_TRUE(g.contains(k)) << k;
    for (const char* rate : kRates) {
      for (const char* k : kProportion) EXPECT_TRUE(g[rate].contains(k)) << rate << k;
      EXPECT_TRUE(g[rate].contains("ratio")) << rate;
    }
  }
  EXPECT_EQ(groups[0]["value"], "FR");
  EXPECT_EQ(groups[0]["label"], "FR");
  EXPECT_DOUBLE_EQ(groups[0]["false_positive_rate"]["ratio"]["value"].get<double>(), 3.0);
  for (const char* k : {"value", "low", "high"}) {
    EXPECT_TRUE(groups[0]["flag_rate"]["ratio"].contains(k)) << k;
  }
  EXPECT_EQ(groups[2]["value"], "");
  EXPECT_EQ(groups[2]["label"], "(empty)");
  EXPECT_TRUE(groups[2]["precision"]["ratio"].is_null());
  EXPECT_EQ(groups[2]["too_small"], true);
  EXPECT_EQ(groups[2]["too_small_reason"], "1 rows < 5; 0 positives < 1; 1 negatives < 2");

  const nlohmann::json& s = j["selection"];
  for (const char* k : {"random", "risk_selected", "unknown_rows", "note", "interpretation"}) {
    EXPECT_TRUE(s.contains(k)) << k;
  }
  for (const char* side : {"random", "risk_selected"}) {
    for (const char* k : {"rows", "positives", "flagged", "flagged_positives", "unbiased",
                          "non_compliance_rate", "recall", "precision"}) {
      EXPECT_TRUE(s[side].contains(k)) << side << k;
    }
  }
  EXPECT_EQ(s["random"]["unbiased"], true);
  EXPECT_EQ(s["risk_selected"]["unbiased"], false);
  EXPECT_EQ(s["random"]["rows"], 5);
  EXPECT_EQ(s["unknown_rows"], 1);
}

TEST(GroupReportJson, SelectionIsNullWithoutTheColumnAndSidesNullWithoutRows) {
  ScoredDeclarations in = SmallTable();
  in.selection.clear();
  absl::StatusOr<GroupReport> r = BuildGroupReport(in);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(GroupReportToJson(*r)["selection"].is_null());

  in.selection.assign(in.scores.size(), "risk");
  r = BuildGroupReport(in);
  ASSERT_TRUE(r.ok()) << r.status();
  const nlohmann::json s = GroupReportToJson(*r)["selection"];
  EXPECT_TRUE(s["random"].is_null());
  EXPECT_FALSE(s["risk_selected"].is_null());
  EXPECT_NE(s["note"].get<std::string>().find("no randomly selected controls"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// HTML

ReportPageInfo PageInfo() {
  return {"Group report", "risk v5", "declarations.csv", "2024-10-01 14:03 UTC"};
}

TEST(GroupReportHtml, EscapesDataAndHasNoScriptOrUrl) {
  ScoredDeclarations in = SmallTable();
  in.group_columns[1].values[0] = "<script>&\"'";
  in.group_columns[1].name = "office <b>";
  const absl::StatusOr<GroupReport> r = BuildGroupReport(in);
  ASSERT_TRUE(r.ok()) << r.status();
  ReportPageInfo info = PageInfo();
  info.model = "risk v5 <img src=x>";
  const std::string html = RenderGroupReportHtml(*r, info);
  EXPECT_NE(html.find("&lt;script&gt;&amp;&quot;&#39;"), std::string::npos);
  EXPECT_NE(html.find("office &lt;b&gt;"), std::string::npos);
  EXPECT_NE(html.find("risk v5 &lt;img src=x&gt;"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<img"), std::string::npos);
  EXPECT_EQ(html.find("http"), std::string::npos);
  EXPECT_EQ(html.find("office <b>"), std::string::npos);
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
}

TEST(GroupReportHtml, ShowsEveryGroupFigureAndReason) {
  const absl::StatusOr<GroupReport> r = BuildGroupReport(SmallTable());
  ASSERT_TRUE(r.ok()) << r.status();
  const std::string html = RenderGroupReportHtml(*r, PageInfo());
  for (const char* s :
       {"<th class=\"group\">FR</th>", "<th class=\"group\">DE</th>", "<em>(empty)</em>",
        "<th class=\"group\">A</th>", "<th class=\"group\">B</th>", "By origin_country",
        "By office", "risk v5", "declarations.csv", "2024-10-01 14:03 UTC",
        // The too-small reasons, escaped ("<" is data-free text but escaped all the same).
        "too small: 4 rows &lt; 5",
        "too small: 1 rows &lt; 5; 0 positives &lt; 1; 1 negatives "
        "&lt; 2",
        // The budget line: ceil(0.3 * 10) = 3 of 10.
        "30 % of rows by score: the top 3 of 10 are flagged",
        // Overall flag rate 3/10: center (0.3 + z²/20) / (1 + z²/10) = 0.355507, half-width
        // 1.416006 * sqrt(0.021 + z²/400) = 0.247716 -> [0.107791, 0.603223].
        "0.300 [0.108, 0.603]",
        // FR's FPR ratio (1/2) / (1/6) = 3, above 1.25: highlighted with an up mark.
        "class=\"out\">&#9650; 3.000 [", "four-fifths rule", "unbiased",
        "biased by the selection"}) {
    EXPECT_NE(html.find(s), std::string::npos) << s;
  }
  EXPECT_NE(html.find("<tr class=\"small\"><th class=\"group\">DE</th>"), std::string::npos);
  // The comparison comes before the first group table.
  EXPECT_LT(html.find("Random-control evaluation"), html.find("By origin_country"));
}

TEST(GroupReportHtml, IsDeterministic) {
  const absl::StatusOr<GroupReport> r = BuildGroupReport(SmallTable());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(RenderGroupReportHtml(*r, PageInfo()), RenderGroupReportHtml(*r, PageInfo()));
}

TEST(GroupReportHtml, ExplainsAMissingSelectionColumnAndMissingRandomRows) {
  ScoredDeclarations in = SmallTable();
  in.selection.clear();
  absl::StatusOr<GroupReport> r = BuildGroupReport(in);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NE(RenderGroupReportHtml(*r, PageInfo()).find("no SELECTION column"), std::string::npos);

  in.selection.assign(in.scores.size(), "risk");
  r = BuildGroupReport(in);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NE(RenderGroupReportHtml(*r, PageInfo()).find("no randomly selected controls"),
            std::string::npos);
}

TEST(HtmlEscape, ReplacesTheFiveCharactersAndControls) {
  EXPECT_EQ(HtmlEscape("a&b<c>d\"e'f"), "a&amp;b&lt;c&gt;d&quot;e&#39;f");
  EXPECT_EQ(HtmlEscape(std::string("x\0y\tz", 5)), "x&#xFFFD;y\tz");
  EXPECT_EQ(HtmlEscape("Côte d’Ivoire"), "Côte d’Ivoire");  // UTF-8 passes through
}

}  // namespace
}  // namespace fedcustoms::report
