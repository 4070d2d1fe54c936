// A node that trains with differential privacy evaluates without reading a
// training row: the anomaly task's flagging threshold, otherwise a quantile
// of the training rows' scores, comes from the hold-out.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/synth/declarations_synth.h"
#include "common/task/task_model.h"
#include "node/config/node_config.h"
#include "node/learner/local_learner.h"
#include "tests/support/federation_dir.h"
#include "tests/support/loopback_federation.h"

namespace fedcustoms::node {
namespace {

TEST(DpEvaluation, TheAnomalyThresholdComesFromTheHoldoutOnceTrainingRowsArePrivate) {
  auto root = testing_support::MakeFederationDir("dp-eval", {"EE"});
  ASSERT_TRUE(root.ok()) << root.status();
  synth::SynthOptions synth;
  synth.admins = {"EE"};
  synth.rows = 3000;
  ASSERT_TRUE(testing_support::AddSyntheticData(*root, synth).ok());
  auto config = FinalizeNodeConfig(
      testing_support::LoopbackNodeConfig(*root, "EE", 1, "eval", "anomaly"), "test", "");
  ASSERT_TRUE(config.ok()) << config.status();
  auto learner = CreateLocalLearner(*config);
  ASSERT_TRUE(learner.ok()) << learner.status();
  v1::TaskAssignment assignment;
  assignment.set_task("anomaly");
  assignment.set_task_kind(v1::TASK_ANOMALY);
  const task::ModelSpec spec = (*learner)->SpecOf(assignment);
  auto state = task::InitialState(spec, 3);
  ASSERT_TRUE(state.ok()) << state.status();
  auto before = (*learner)->Evaluate(spec, *state);
  ASSERT_TRUE(before.ok()) << before.status();
  (*learner)->KeepTrainingRowsOutOfEvaluation();
  auto after = (*learner)->Evaluate(spec, *state);
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
