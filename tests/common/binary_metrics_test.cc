#include "common/metrics/binary_metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace fedcustoms::metrics {
namespace {

v1::EvaluationMetrics Compute(const std::vector<float>& scores, const std::vector<float>& labels,
                              double loss = 0) {
  return ComputeBinaryMetrics(scores, labels, loss);
}

TEST(BinaryMetrics, MatchesHandComputedValuesWithoutTies) {
  // Ranked: + - + - - +. Pairs won: 3 + 2 + 0 of 9.
  // AP = 1/3 * 1 + 1/3 * 2/3 + 1/3 * 1/2 = 13/18.
  const auto m = Compute({0.9f, 0.8f, 0.7f, 0.6f, 0.5f, 0.4f}, {1, 0, 1, 0, 0, 1}, 0.25);
  EXPECT_DOUBLE_EQ(m.roc_auc(), 5.0 / 9.0);
  EXPECT_DOUBLE_EQ(m.pr_auc(), 13.0 / 18.0);
  EXPECT_EQ(m.examples(), 6u);
  EXPECT_EQ(m.positives(), 3u);
  EXPECT_DOUBLE_EQ(m.loss(), 0.25);
}

TEST(BinaryMetrics, HandlesTiesWithMidranksAndGroupedThresholds) {
  // Groups: {0.8: +,-}, {0.5: +,+,-}, {0.1: -}.
  // ROC: the 0.8 positive beats 2 negatives and ties 1 -> 2.5; each 0.5
  //      positive beats 1 and ties 1 -> 1.5; (2.5 + 3) / 9.
  // AP:  1/3 * (1/2) + 2/3 * (3/5) = 17/30 (scikit-learn's value).
  const auto m = Compute({0.8f, 0.8f, 0.5f, 0.5f, 0.5f, 0.1f}, {1, 0, 1, 1, 0, 0});
  EXPECT_DOUBLE_EQ(m.roc_auc(), 5.5 / 9.0);
  EXPECT_DOUBLE_EQ(m.pr_auc(), 17.0 / 30.0);
}

TEST(BinaryMetrics, ConstantScoresGiveHalfAucAndThePositiveRate) {
  const auto m = Compute({0.3f, 0.3f, 0.3f, 0.3f}, {0, 1, 0, 0});
  EXPECT_DOUBLE_EQ(m.roc_auc(), 0.5);
  EXPECT_DOUBLE_EQ(m.pr_auc(), 0.25);
}

TEST(BinaryMetrics, PerfectAndInvertedRankings) {
  const auto perfect = Compute({0.9f, 0.8f, 0.2f, 0.1f}, {1, 1, 0, 0});
  EXPECT_DOUBLE_EQ(perfect.roc_auc(), 1.0);
  EXPECT_DOUBLE_EQ(perfect.pr_auc(), 1.0);
  const auto inverted = Compute({0.1f, 0.2f, 0.8f, 0.9f}, {1, 1, 0, 0});
  EXPECT_DOUBLE_EQ(inverted.roc_auc(), 0.0);
  // Positives found at ranks 3 and 4: 1/2 * 1/3 + 1/2 * 2/4.
  EXPECT_DOUBLE_EQ(inverted.pr_auc(), 1.0 / 6.0 + 1.0 / 4.0);
}

TEST(BinaryMetrics, PrecisionAndRecallAtBudgets) {
  // 200 rows, scores falling with the index; positives at ranks 0, 2, 5, 15, 150.
  std::vector<float> scores(200), labels(200, 0);
  for (int i = 0; i < 200; ++i) scores[i] = 1.0f - static_cast<float>(i) / 200.0f;
  for (int i : {0, 2, 5, 15, 150}) labels[i] = 1;
  const auto m = Compute(scores, labels);
  ASSERT_EQ(m.at_budget_size(), 4);
  // k:  top m = ceil(k% * 200):  1% -> 2, 2% -> 4, 5% -> 10, 10% -> 20.
  const double precision[] = {1.0 / 2, 2.0 / 4, 3.0 / 10, 4.0 / 20};
  const double recall[] = {1.0 / 5, 2.0 / 5, 3.0 / 5, 4.0 / 5};
  const uint32_t percent[] = {1, 2, 5, 10};
  for (int b = 0; b < 4; ++b) {
    EXPECT_EQ(m.at_budget(b).percent(), percent[b]);
    EXPECT_DOUBLE_EQ(m.at_budget(b).precision(), precision[b]) << percent[b];
    EXPECT_DOUBLE_EQ(m.at_budget(b).recall(), recall[b]) << percent[b];
  }
}

TEST(BinaryMetrics, BudgetRoundsUpAndBreaksTiesByIndex) {
  // 150 equal scores: 1% of 150 is 1.5 -> the first 2 rows by index.
  std::vector<float> scores(150, 0.5f), labels(150, 0);
  labels[1] = 1;
  labels[2] = 1;
  const auto m = Compute(scores, labels);
  EXPECT_DOUBLE_EQ(m.at_budget(0).precision(), 0.5);  // rows 0 and 1
  EXPECT_DOUBLE_EQ(m.at_budget(0).recall(), 0.5);
  EXPECT_DOUBLE_EQ(m.at_budget(1).precision(), 2.0 / 3.0);  // 2% -> 3 rows
  // A single row is its own top 1 %.
  const auto one = Compute({0.1f}, {1});
  EXPECT_DOUBLE_EQ(one.at_budget(0).precision(), 1.0);
  EXPECT_DOUBLE_EQ(one.at_budget(0).recall(), 1.0);
}

TEST(BinaryMetrics, NanScoresRankLast) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const auto m = Compute({nan, 0.1f, nan}, {0, 1, 0});
  EXPECT_DOUBLE_EQ(m.roc_auc(), 1.0);
  EXPECT_DOUBLE_EQ(m.pr_auc(), 1.0);
}

TEST(WeightedMeanMetrics, WeighsByExamplesAndSumsCounts) {
  v1::EvaluationMetrics a, b;
  a.set_examples(100);
  a.set_positives(3);
  a.set_roc_auc(0.6);
  a.set_pr_auc(0.2);
  a.set_loss(0.4);
  auto* ab = a.add_at_budget();
  ab->set_percent(5);
  ab->set_precision(0.1);
  ab->set_recall(0.5);
  b.set_examples(300);
  b.set_positives(9);
  b.set_roc_auc(0.8);
  b.set_pr_auc(0.6);
  b.set_loss(0.2);
  auto* bb = b.add_at_budget();
  bb->set_percent(5);
  bb->set_precision(0.3);
  bb->set_recall(0.9);
  auto* only_b = b.add_at_budget();
  only_b->set_percent(10);
  only_b->set_precision(0.2);
  only_b->set_recall(1.0);
  const auto m = WeightedMeanMetrics({a, b});
  EXPECT_EQ(m.examples(), 400u);
  EXPECT_EQ(m.positives(), 12u);
  EXPECT_DOUBLE_EQ(m.roc_auc(), 0.75);
  EXPECT_DOUBLE_EQ(m.pr_auc(), 0.5);
  EXPECT_DOUBLE_EQ(m.loss(), 0.25);
  ASSERT_EQ(m.at_budget_size(), 2);
  EXPECT_EQ(m.at_budget(0).percent(), 5u);
  EXPECT_DOUBLE_EQ(m.at_budget(0).precision(), 0.25);
  EXPECT_DOUBLE_EQ(m.at_budget(0).recall(), 0.8);
  EXPECT_EQ(m.at_budget(1).percent(), 10u);
  EXPECT_DOUBLE_EQ(m.at_budget(1).precision(), 0.2);
  EXPECT_DOUBLE_EQ(m.at_budget(1).recall(), 1.0);
}

// A validation split without positives has no precision-recall curve: its
// PR-AUC weighs nothing, while its rows still count in ROC-AUC and loss.
TEST(WeightedMeanMetrics, ValidationPrAucWeighsByPositivesTheRestByExamples) {
  v1::EvaluationMetrics a, b, none;
  a.set_examples(100);
  a.mutable_validation()->set_examples(10);
  a.mutable_validation()->set_positives(1);
  a.mutable_validation()->set_pr_auc(0.2);
  a.mutable_validation()->set_roc_auc(0.6);
  a.mutable_validation()->set_loss(0.5);
  b.set_examples(100);
  b.mutable_validation()->set_examples(30);
  b.mutable_validation()->set_positives(0);
  b.mutable_validation()->set_pr_auc(0.0);
  b.mutable_validation()->set_roc_auc(0.8);
  b.mutable_validation()->set_loss(0.1);
  none.set_examples(100);  // a node without a validation split
  const auto m = WeightedMeanMetrics({a, b, none});
  ASSERT_TRUE(m.has_validation());
  EXPECT_EQ(m.validation().examples(), 40u);
  EXPECT_EQ(m.validation().positives(), 1u);
  EXPECT_DOUBLE_EQ(m.validation().pr_auc(), 0.2);
  EXPECT_DOUBLE_EQ(m.validation().roc_auc(), 0.75);
  EXPECT_DOUBLE_EQ(m.validation().loss(), 0.2);
  EXPECT_FALSE(WeightedMeanMetrics({none}).has_validation());
}

TEST(WeightedMeanMetrics, EqualWeightsWhenNoReportHasExamples) {
  v1::EvaluationMetrics a, b;
  a.set_roc_auc(0.5);
  b.set_roc_auc(0.7);
  EXPECT_DOUBLE_EQ(WeightedMeanMetrics({a, b}).roc_auc(), 0.6);
  EXPECT_EQ(WeightedMeanMetrics({}).examples(), 0u);
}

// Tests of all the error paths follow: degenerate sets are defined, never NaN.

TEST(BinaryMetrics, NoPositivesGivesHalfAucAndZeroPrecision) {
  const auto m = Compute({0.9f, 0.1f, 0.4f}, {0, 0, 0});
  EXPECT_DOUBLE_EQ(m.roc_auc(), 0.5);
  EXPECT_DOUBLE_EQ(m.pr_auc(), 0.0);
  EXPECT_EQ(m.positives(), 0u);
  for (const auto& b : m.at_budget()) {
    EXPECT_DOUBLE_EQ(b.precision(), 0.0);
    EXPECT_DOUBLE_EQ(b.recall(), 0.0);
  }
}

TEST(BinaryMetrics, AllPositivesGivesHalfAucAndFullPrecision) {
  const auto m = Compute({0.9f, 0.1f}, {1, 1});
  EXPECT_DOUBLE_EQ(m.roc_auc(), 0.5);
  EXPECT_DOUBLE_EQ(m.pr_auc(), 1.0);
  EXPECT_DOUBLE_EQ(m.at_budget(0).precision(), 1.0);
  EXPECT_DOUBLE_EQ(m.at_budget(0).recall(), 0.5);
}

TEST(BinaryMetrics, EmptySetGivesZeros) {
  const auto m = Compute({}, {});
  EXPECT_EQ(m.examples(), 0u);
  EXPECT_DOUBLE_EQ(m.roc_auc(), 0.5);
  EXPECT_DOUBLE_EQ(m.pr_auc(), 0.0);
  ASSERT_EQ(m.at_budget_size(), 4);
  EXPECT_DOUBLE_EQ(m.at_budget(3).precision(), 0.0);
}

TEST(BinaryMetrics, PerfectRankingsNeverRoundAboveOne) {
  // The average precision of a perfect ranking is a sum of P terms of 1/P,
  // which rounds above 1 for some P (it did for a node's 97-item hold-out,
  // and the coordinator refused the report).
  int above_before_clamp = 0;
  for (int positives = 1; positives <= 200; ++positives) {
    std::vector<float> scores, labels;
    double unclamped = 0;
    for (int i = 0; i < positives; ++i) {
      scores.push_back(1000.0f - static_cast<float>(i));
      labels.push_back(1);
      unclamped += (1.0 / positives) * 1.0;
    }
    scores.push_back(0);
    labels.push_back(0);
    above_before_clamp += unclamped > 1.0 ? 1 : 0;
    const v1::EvaluationMetrics m = ComputeBinaryMetrics(scores, labels);
    EXPECT_LE(m.pr_auc(), 1.0) << positives;
    EXPECT_NEAR(m.pr_auc(), 1.0, 1e-12) << positives;
    EXPECT_EQ(m.roc_auc(), 1.0) << positives;
  }
  EXPECT_GT(above_before_clamp, 0) << "the case this guards against exists";
}

}  // namespace
}  // namespace fedcustoms::metrics
