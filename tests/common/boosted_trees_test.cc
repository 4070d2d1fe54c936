// Histogram gradient-boosted trees (common/trees/): bins from a federated
// sketch, split finding, the level-by-level builder, tree-path contributions,
// and the property federated boosting rests on: the trees grown from the sum
// of the parties' vectors are the trees grown on the pooled rows.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "common/trees/boosted_trees_trainer.h"
#include "common/trees/gradient_histogram.h"
#include "common/trees/split_finder.h"
#include "common/trees/tree_builder.h"

namespace fedcustoms::trees {
namespace {

using ::testing::HasSubstr;

// Rows with two numeric features (x0 uniform in [0, 10], x1 normal) and one
// categorical of 8 buckets; the label is an interaction a linear model cannot
// learn: positive when (x0 > 5) xor (bucket is odd), flipped with
// probability `noise`.
data::DeclarationTable MakeTable(size_t rows, uint64_t seed, double noise = 0.05) {
  data::DeclarationTable t;
  t.rows = rows;
  t.numeric_names = {"x0", "x1"};
  t.categorical_names = {"c"};
  t.buckets = {8};
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> uniform(0, 10);
  std::normal_distribution<double> normal(3, 2);
  std::uniform_int_distribution<int64_t> bucket(0, 7);
  std::bernoulli_distribution flip(noise);
  for (size_t i = 0; i < rows; ++i) {
    const double x0 = uniform(rng);
    const int64_t c = bucket(rng);
    t.numeric.push_back(static_cast<float>(x0));
    t.numeric.push_back(static_cast<float>(normal(rng)));
    t.categorical.push_back(c);
    const bool y = (x0 > 5) != (c % 2 == 1);
    t.labels.push_back(y != flip(rng) ? 1.0f : 0.0f);
  }
  return t;
}

std::vector<int64_t> Range(int64_t from, int64_t to) {
  std::vector<int64_t> v;
  for (int64_t i = from; i < to; ++i) v.push_back(i);
  return v;
}

TEST(FeatureBins, QuantileEdgesFromTheSketchSplitTheRowsEvenly) {
  const data::DeclarationTable t = MakeTable(20000, 1);
  const std::vector<SketchGrid> grids =
      GridsFromMoments(std::vector<double>{5, 3}, std::vector<double>{2.9, 2});
  const std::vector<int64_t> rows = Range(0, 20000);
  auto bins = BinsFromSketch(grids, SketchCounts(t, rows, grids), t.buckets, 16);
  ASSERT_TRUE(bins.ok()) << bins.status();
  EXPECT_EQ(bins->numeric_edges[0].size(), 15u);
  EXPECT_EQ(bins->bins(2), 8u);  // the categorical feature: its buckets
  const std::vector<uint16_t> binned = BinRows(*bins, t, rows);
  std::vector<int> per_bin(16, 0);
  for (size_t i = 0; i < rows.size(); ++i) ++per_bin[binned[i * 3]];
  for (int count : per_bin) EXPECT_NEAR(count, 20000 / 16, 120);
  for (size_t i = 0; i < rows.size(); ++i) EXPECT_EQ(binned[i * 3 + 2], t.categorical[i]);
}

TEST(SplitFinder, TheNumericSplitIsTheOneOfHighestGainAndRespectsMinChildWeight) {
  FeatureBins bins;
  bins.numeric_edges = {{1.0f, 2.0f, 3.0f}};  // 4 bins
  // Bins 0-1: gradient -10 each (positives), bins 2-3: +10 each; hessian 5.
  std::vector<double> node;
  for (double g : {-10.0, -10.0, 10.0, 10.0}) node.insert(node.end(), {g, 5.0, 20.0});
  TreeParams params;
  params.l2 = 1;
  Split s = BestSplit(bins, node, params);
  ASSERT_TRUE(s.valid);
  EXPECT_EQ(s.feature, 0u);
  EXPECT_FALSE(s.categorical);
  EXPECT_EQ(s.threshold_bin, 1u);
  // 0.5 (20^2/11 + 20^2/11 - 0/21).
  EXPECT_NEAR(s.gain, 0.5 * (400.0 / 11 + 400.0 / 11), 1e-9);
  EXPECT_DOUBLE_EQ(s.left_gradient, -20);
  EXPECT_DOUBLE_EQ(s.right_hessian, 10);
  params.min_child_weight = 10.5;  // no child can reach it
  EXPECT_FALSE(BestSplit(bins, node, params).valid);
}

TEST(SplitFinder, ACategoricalSplitGroupsTheBinsByGradientRatio) {
  FeatureBins bins;
  bins.categorical_bins = {5};
  // Bins 1 and 3 are risky (negative gradient), 0 and 4 safe, 2 never seen.
  std::vector<double> node;
  for (double g : {8.0, -9.0, 0.0, -7.0, 6.0}) {
    node.insert(node.end(), {g, g == 0 ? 0.0 : 4.0, g == 0 ? 0.0 : 10.0});
  }
  Split s = BestSplit(bins, node, TreeParams{});
  ASSERT_TRUE(s.valid);
  EXPECT_TRUE(s.categorical);
  EXPECT_THAT(s.left_bins, ::testing::ElementsAre(0, 1, 0, 1, 0));
  EXPECT_DOUBLE_EQ(s.left_gradient, -16);
  EXPECT_DOUBLE_EQ(s.right_count, 20);
}

TEST(BoostedTrees, LearnAnInteractionThatNoLinearModelCanAndStopEarlyOnValidation) {
  const data::DeclarationTable t = MakeTable(6000, 2, 0.1);
  BoostingRows rows(t, Range(0, 4000), Range(4000, 5000));
  BoostingParams params;
  params.trees = 200;
  params.tree.max_depth = 3;
  params.tree.learning_rate = 0.3;
  params.early_stopping_trees = 5;
  BoostingRows* parties[] = {&rows};
  auto result = TrainBoostedTrees(parties, params);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_LT(result->ensemble.trees.size(), 200u);  // stopped early
  EXPECT_GE(result->validation_loss.size(), result->ensemble.trees.size());
  // Accuracy on rows it never saw: the noise (10 %) is the limit.
  const std::vector<int64_t> test = Range(5000, 6000);
  const std::vector<uint16_t> binned = BinRows(result->ensemble.bins, t, test);
  int correct = 0;
  for (size_t i = 0; i < test.size(); ++i) {
    const double logit = result->ensemble.PredictLogit(&binned[i * 3]);
    correct += (logit > 0) == (t.labels[static_cast<size_t>(test[i])] > 0.5f);
  }
  EXPECT_GT(correct, 850);
}

// The property the federation rests on: the coordinator only ever needs the
// sums of the parties' vectors, so three administrations holding a third of
// the rows each grow exactly the trees one party holding all of them grows.
TEST(BoostedTrees, TheSumOfThreePartiesGrowsThePooledTrees) {
  const data::DeclarationTable t = MakeTable(3000, 3);
  BoostingParams params;
  params.trees = 8;
  params.tree.max_depth = 4;
  params.early_stopping_trees = 0;
  BoostingRows pooled(t, Range(0, 3000), {});
  BoostingRows* one[] = {&pooled};
  auto alone = TrainBoostedTrees(one, params);
  ASSERT_TRUE(alone.ok()) << alone.status();
  BoostingRows a(t, Range(0, 700), {}), b(t, Range(700, 2100), {}), c(t, Range(2100, 3000), {});
  BoostingRows* three[] = {&a, &b, &c};
  auto federated = TrainBoostedTrees(three, params);
  ASSERT_TRUE(federated.ok()) << federated.status();
  EXPECT_EQ(federated->ensemble.bins.numeric_edges, alone->ensemble.bins.numeric_edges);
  EXPECT_DOUBLE_EQ(federated->ensemble.base_score, alone->ensemble.base_score);
  ASSERT_EQ(federated->ensemble.trees.size(), alone->ensemble.trees.size());
  for (size_t k = 0; k < alone->ensemble.trees.size(); ++k) {
    const Tree& x = alone->ensemble.trees[k];
    const Tree& y = federated->ensemble.trees[k];
    ASSERT_EQ(x.nodes.size(), y.nodes.size()) << "tree " << k;
    for (size_t n = 0; n < x.nodes.size(); ++n) {
      EXPECT_EQ(x.nodes[n].feature, y.nodes[n].feature);
      EXPECT_EQ(x.nodes[n].threshold_bin, y.nodes[n].threshold_bin);
      EXPECT_EQ(x.nodes[n].left_bins, y.nodes[n].left_bins);
      // Each party's vector is rounded to 2^-24 in the fixed point a
      // session sums in (boosting::FixedPointSum): three roundings, not one.
      EXPECT_NEAR(x.nodes[n].value, y.nodes[n].value, 1e-6);
    }
  }
}

TEST(BoostedTrees, TreePathContributionsAddUpToTheLogit) {
  const data::DeclarationTable t = MakeTable(2000, 4);
  BoostingRows rows(t, Range(0, 2000), {});
  BoostingParams params;
  params.trees = 20;
  params.early_stopping_trees = 0;
  BoostingRows* parties[] = {&rows};
  auto result = TrainBoostedTrees(parties, params);
  ASSERT_TRUE(result.ok()) << result.status();
  const std::vector<uint16_t> binned = BinRows(result->ensemble.bins, t, Range(0, 200));
  bool categorical_mattered = false;
  for (size_t i = 0; i < 200; ++i) {
    std::vector<double> contributions;
    double bias = 0;
    result->ensemble.Contributions(&binned[i * 3], &contributions, &bias);
    ASSERT_EQ(contributions.size(), 3u);
    double sum = bias;
    for (double c : contributions) sum += c;
    EXPECT_NEAR(sum, result->ensemble.PredictLogit(&binned[i * 3]), 1e-9);
    categorical_mattered |= std::abs(contributions[2]) > 0.1;
  }
  EXPECT_TRUE(categorical_mattered);
}

// Tests of all the error paths follow.

TEST(TreeBuilder, AMalformedLevelSumIsRefusedAndTheTreeStaysUnchanged) {
  FeatureBins bins;
  bins.numeric_edges = {{1.0f}};  // 2 bins: 6 values per open node
  TreeBuilder builder(bins, TreeParams{});
  absl::Status wrong_size = builder.AddLevel(std::vector<double>(5, 1.0));
  EXPECT_TRUE(absl::IsInvalidArgument(wrong_size));
  EXPECT_THAT(std::string(wrong_size.message()), HasSubstr("has 6 values, not 5"));
  for (std::vector<double> bad :
       {std::vector<double>{-1, 2, 3, NAN, 2, 3}, std::vector<double>{-1, -2, 3, 1, 2, 3},
        std::vector<double>{-1, 2, -3, 1, 2, 3}}) {
    const absl::Status s = builder.AddLevel(bad);
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  }
  EXPECT_EQ(builder.tree().nodes.size(), 1u);
  EXPECT_EQ(builder.open(), (std::vector<int32_t>{0}));
  ASSERT_TRUE(builder.AddLevel(std::vector<double>{-10, 5, 20, 10, 5, 20}).ok());
  EXPECT_EQ(builder.tree().nodes.size(), 3u);
}

TEST(FeatureBins, AMalformedSketchIsRefusedNamingTheFeature) {
  const std::vector<SketchGrid> grids = {{0, 1, 4}, {0, 1, 4}};
  std::vector<double> counts(8, 1.0);
  counts[6] = -1;
  absl::Status s = BinsFromSketch(grids, counts, {}, 16).status();
  EXPECT_THAT(std::string(s.message()), HasSubstr("numeric feature 1 has count -1 in cell 2"));
  s = BinsFromSketch(grids, std::vector<double>(7, 1.0), {}, 16).status();
  EXPECT_THAT(std::string(s.message()), HasSubstr("has 7 counts; its grids need 8"));
  s = BinsFromSketch(grids, std::vector<double>(8, 1.0), {}, 300).status();
  EXPECT_THAT(std::string(s.message()), HasSubstr("max_bins 300 is not in 2..256"));
}

TEST(BoostedTrees, NoTrainingRowIsAnError) {
  const data::DeclarationTable t = MakeTable(10, 5);
  BoostingRows empty(t, {}, {});
  BoostingRows* parties[] = {&empty};
  const absl::Status s = TrainBoostedTrees(parties, BoostingParams{}).status();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("nothing to train on"));
}

}  // namespace
}  // namespace fedcustoms::trees
