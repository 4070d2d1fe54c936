// A node's validation split (NodeConfig.validation_fraction): carved out of
// the training rows, never trained on, never the hold-out, and reported with
// each evaluation so the coordinator can choose the version it releases.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "node/learner/declaration_learner.h"
#include "tests/support/synthetic_learner.h"

namespace fedcustoms::node {
namespace {

TEST(ValidationSplit, ARiskNodeKeepsItOutOfTrainingAndReportsItsMetrics) {
  auto made = testing_support::MakeSyntheticLearner("validation-split", v1::TASK_RISK, 3000, 0.2);
  ASSERT_TRUE(made.ok()) << made.status();
  auto* learner = dynamic_cast<DeclarationLearner*>(made->learner.get());
  ASSERT_NE(learner, nullptr);
  const data::Split& split = learner->data().split;
  const size_t rows = learner->data().table.rows;
  // Hold-out 20 % of the rows, validation 20 % of the rest, training the rest.
  EXPECT_EQ(split.holdout.size(), static_cast<size_t>(std::llround(0.2 * rows)));
  EXPECT_EQ(split.validation.size(),
            static_cast<size_t>(std::llround(0.2 * (rows - split.holdout.size()))));
  EXPECT_EQ(split.train.size() + split.validation.size() + split.holdout.size(), rows);
  EXPECT_EQ(learner->data_summary().train_rows(), split.train.size());
  uint64_t positives = 0;
  for (int64_t row : split.validation) positives += learner->data().table.labels[row] > 0.5f;
  ASSERT_GT(positives, 0u);

  auto state = task::InitialState(made->spec, 3);
  ASSERT_TRUE(state.ok()) << state.status();
  v1::TrainingConfig training;
  training.set_local_epochs(1);
  auto trained = learner->Train(made->spec, *state, training, nullptr);
  ASSERT_TRUE(trained.ok()) << trained.status();
  EXPECT_EQ(trained->samples, split.train.size());  // validation rows do not train

  auto metrics = learner->Evaluate(made->spec, *state);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(metrics->examples(), split.holdout.size());
  ASSERT_TRUE(metrics->has_validation());
  EXPECT_EQ(metrics->validation().examples(), split.validation.size());
  EXPECT_EQ(metrics->validation().positives(), positives);
  EXPECT_GT(metrics->validation().pr_auc(), 0.0);
  EXPECT_GT(metrics->validation().loss(), 0.0);
}

TEST(ValidationSplit, NoneByDefaultAndNoneForTheAnomalyTask) {
  auto risk = testing_support::MakeSyntheticLearner("validation-none", v1::TASK_RISK, 1000);
  ASSERT_TRUE(risk.ok()) << risk.status();
  auto state = task::InitialState(risk->spec, 3);
  ASSERT_TRUE(state.ok()) << state.status();
  auto metrics = risk->learner->Evaluate(risk->spec, *state);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_FALSE(metrics->has_validation());

  auto anomaly =
      testing_support::MakeSyntheticLearner("validation-anomaly", v1::TASK_ANOMALY, 1000, 0.2);
  ASSERT_TRUE(anomaly.ok()) << anomaly.status();
  auto* learner = dynamic_cast<DeclarationLearner*>(anomaly->learner.get());
  ASSERT_NE(learner, nullptr);
  EXPECT_TRUE(learner->data().split.validation.empty());
  EXPECT_EQ(learner->data().split.train.size() + learner->data().split.holdout.size(),
            learner->data().table.rows);
}

}  // namespace
}  // namespace fedcustoms::node
