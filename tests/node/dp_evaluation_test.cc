// A node that trains with differential privacy evaluates without reading a
// training row: the anomaly task's flagging threshold, otherwise a quantile
// of the training rows' scores, comes from the hold-out.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tests/support/synthetic_learner.h"

namespace fedcustoms::node {
namespace {

TEST(DpEvaluation, TheAnomalyThresholdComesFromTheHoldoutOnceTrainingRowsArePrivate) {
  auto made = testing_support::MakeSyntheticLearner("dp-eval", v1::TASK_ANOMALY, 3000);
  ASSERT_TRUE(made.ok()) << made.status();
  auto& learner = made->learner;
  const task::ModelSpec& spec = made->spec;
  auto state = task::InitialState(spec, 3);
  ASSERT_TRUE(state.ok()) << state.status();
  auto before = learner->Evaluate(spec, *state);
  ASSERT_TRUE(before.ok()) << before.status();
  learner->KeepTrainingRowsOutOfEvaluation();
  auto after = learner->Evaluate(spec, *state);
  ASSERT_TRUE(after.ok()) << after.status();
  // With the hold-out's own 99th percentile, 1 % of it is above (to one row).
  const double holdout = static_cast<double>(after->examples());
  EXPECT_NEAR(static_cast<double>(after->flagged()), 0.01 * holdout, 1.5);
  EXPECT_EQ(after->examples(), before->examples());
  // The scores are the same; only the threshold moved.
  EXPECT_DOUBLE_EQ(after->loss(), before->loss());
  EXPECT_NE(after->flagged(), before->flagged());
}

}  // namespace
}  // namespace fedcustoms::node
