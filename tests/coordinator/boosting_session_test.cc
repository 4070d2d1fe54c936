// The coordinator's side of a boosting session without a network: the
// members' vectors are computed in this process (trees::BoostingRows) and
// handed to the session as their parts would arrive.
#include "coordinator/boosting/boosting_session.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "common/boosting/masked_vector.h"
#include "common/models/boosted_trees_state.h"
#include "common/task/risk_task.h"
#include "common/tensor/tensor_codec.h"
#include "common/trees/boosted_trees_trainer.h"
#include "node/learner/declaration_learner.h"
#include "tests/support/synthetic_learner.h"

namespace fedcustoms::coordinator {
namespace {

using ::testing::HasSubstr;
using v1::BoostingStep;

const std::vector<std::string> kMembers = {"EE", "FI", "LV"};

class BoostingSessionUnitTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto made = testing_support::MakeSyntheticLearner("boosting_unit", v1::TASK_RISK, 1500, 0.1);
    ASSERT_TRUE(made.ok()) << made.status();
    learner_ = made->learner.release();
  }
  static void TearDownTestSuite() {
    delete learner_;
    learner_ = nullptr;
  }

  static const node::LocalData& Data() {
    return dynamic_cast<const node::DeclarationLearner&>(*learner_).data();
  }

  // EE's rows dealt to three members in turn.
  void SetUp() override {
    const node::LocalData& d = Data();
    for (size_t m = 0; m < kMembers.size(); ++m) {
      std::vector<int64_t> train, validation;
      for (size_t i = m; i < d.split.train.size(); i += kMembers.size()) {
        train.push_back(d.split.train[i]);
      }
      for (size_t i = m; i < d.split.validation.size(); i += kMembers.size()) {
        validation.push_back(d.split.validation[i]);
      }
      rows_.push_back(std::make_unique<trees::BoostingRows>(d.table, train, validation));
    }
  }

  static v1::BoostedTreesConfig Config() {
    v1::RiskModelConfig c;
    c.set_kind(v1::RiskModelConfig::BOOSTED_TREES);
    c.mutable_trees()->set_trees(5);
    c.mutable_trees()->set_max_depth(3);
    c.mutable_trees()->set_early_stopping_trees(0);
    EXPECT_TRUE(task::FinalizeRiskModelConfig(&c).ok());
    return c.trees();
  }

  std::unique_ptr<BoostingSession> MakeSession(const v1::BoostedTreesConfig& config) {
    BoostingSession::Options o;
    o.task = "risk";
    o.round_id = 1;
    o.secure = false;
    o.config = config;
    o.numeric_width = Data().table.numeric_width();
    o.categorical_buckets = Data().table.buckets;
    o.min_members = 3;
    return std::make_unique<BoostingSession>(
        o, std::set<std::string>(kMembers.begin(), kMembers.end()));
  }

  // What member `m` computes for its step (the node's side, as
  // BoostingParticipant does it without the checks).
  std::vector<double> VectorOf(size_t m, const v1::BoostingStep& step) {
    trees::BoostingRows& r = *rows_[m];
    switch (step.kind()) {
      case BoostingStep::MOMENTS:
        return r.Moments();
      case BoostingStep::SKETCH: {
        std::vector<trees::SketchGrid> grids;
        for (int j = 0; j < step.grid_low_size(); ++j) {
          grids.push_back({step.grid_low(j), step.grid_high(j), step.grid_cells()});
        }
        return r.Sketch(grids);
      }
      default: {
        auto state = tensor::DecodeFromString(step.ensemble());
        EXPECT_TRUE(state.ok());
        auto e = models::BoostedTreesFromState(*state);
        EXPECT_TRUE(e.ok()) << e.status();
        if (!bins_[m]) {
          bins_[m] = std::make_unique<trees::FeatureBins>(e->bins);
          r.Start(*bins_[m], e->base_score);
        }
        if (step.kind() == BoostingStep::VALIDATION) {
          r.EndTree(e->trees[0]);
          const auto [loss, n] = r.ValidationLoss();
          began_[m] = false;
          return {loss, n};
        }
        if (!began_[m]) {
          r.BeginTree();
          began_[m] = true;
        }
        return r.LevelHistogram(
            e->trees[0], std::vector<int32_t>(step.open_nodes().begin(), step.open_nodes().end()));
      }
    }
  }

  absl::Status Send(BoostingSession& s, size_t m, const v1::BoostingStep& step,
                    const std::vector<double>& values) {
    for (uint64_t p = 0; p < boosting::PartsOf(values.size()); ++p) {
      v1::SubmitBoostingVectorRequest part;
      part.set_task("risk");
      part.set_round_id(1);
      part.set_step(step.step());
      part.set_part(static_cast<uint32_t>(p));
      const uint64_t begin = p * boosting::kPartValues;
      const uint64_t end = std::min<uint64_t>(values.size(), begin + boosting::kPartValues);
      for (uint64_t i = begin; i < end; ++i) part.add_values(values[i]);
      if (absl::Status st = s.Submit(kMembers[m], part); !st.ok()) return st;
    }
    return absl::OkStatus();
  }

  inline static node::LocalLearner* learner_ = nullptr;
  std::vector<std::unique_ptr<trees::BoostingRows>> rows_;
  std::unique_ptr<trees::FeatureBins> bins_[3];
  bool began_[3] = {false, false, false};
};

TEST_F(BoostingSessionUnitTest, GrowsTheTreesOfThePooledRows) {
  auto session = MakeSession(Config());
  while (!session->done()) {
    for (size_t m = 0; m < kMembers.size(); ++m) {
      std::optional<v1::BoostingStep> step = session->StepFor(kMembers[m]);
      ASSERT_TRUE(step.has_value()) << session->StepName();
      ASSERT_TRUE(Send(*session, m, *step, VectorOf(m, *step)).ok());
      EXPECT_FALSE(session->StepFor(kMembers[m]).has_value()) << "sent everything";
    }
    ASSERT_TRUE(session->StepComplete());
    ASSERT_TRUE(session->Advance().ok()) << session->StepName();
  }
  // The same rows in this process, as one party each.
  SetUp();
  std::vector<trees::BoostingRows*> parties;
  for (size_t m = 0; m < 3; ++m) parties.push_back(rows_[3 + m].get());
  trees::BoostingParams params;
  params.trees = 5;
  params.tree.max_depth = 3;
  params.early_stopping_trees = 0;
  auto pooled = trees::TrainBoostedTrees(parties, params);
  ASSERT_TRUE(pooled.ok()) << pooled.status();
  ASSERT_EQ(session->ensemble().trees.size(), 5u);
  EXPECT_EQ(session->validation_loss().size(), 5u);
  for (size_t t = 0; t < 5; ++t) {
    ASSERT_EQ(session->ensemble().trees[t].nodes.size(), pooled->ensemble.trees[t].nodes.size());
    for (size_t k = 0; k < pooled->ensemble.trees[t].nodes.size(); ++k) {
      EXPECT_EQ(session->ensemble().trees[t].nodes[k].feature,
                pooled->ensemble.trees[t].nodes[k].feature);
      EXPECT_DOUBLE_EQ(session->ensemble().trees[t].nodes[k].value,
                       pooled->ensemble.trees[t].nodes[k].value);
    }
  }
}

TEST_F(BoostingSessionUnitTest, RefusesPartsThatDoNotBelong) {
  auto session = MakeSession(Config());
  std::optional<v1::BoostingStep> step = session->StepFor("EE");
  ASSERT_TRUE(step.has_value());
  ASSERT_EQ(step->kind(), BoostingStep::MOMENTS);
  EXPECT_FALSE(session->StepFor("XX").has_value());
  std::vector<double> moments = VectorOf(0, *step);
  v1::SubmitBoostingVectorRequest part;
  part.set_task("risk");
  part.set_round_id(1);
  part.set_step(step->step() + 1);
  for (double v : moments) part.add_values(v);
  absl::Status s = session->Submit("EE", part);
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("is not the session's current vector step"));
  part.set_step(step->step());
  s = session->Submit("XX", part);
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("XX is not a member of this session"));
  v1::SubmitBoostingVectorRequest short_part = part;
  short_part.mutable_values()->RemoveLast();
  s = session->Submit("EE", short_part);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("field values: expected"));
  v1::SubmitBoostingVectorRequest masked = part;
  masked.set_masked_words(std::string(16, 'x'));
  s = session->Submit("EE", masked);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  v1::SubmitBoostingVectorRequest nan = part;
  nan.set_values(0, std::nan(""));
  s = session->Submit("EE", nan);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("is not finite"));
  // The first good part counts; the same bytes again are a no-op, other
  // bytes are refused.
  ASSERT_TRUE(session->Submit("EE", part).ok());
  EXPECT_TRUE(session->Submit("EE", part).ok());
  v1::SubmitBoostingVectorRequest other = part;
  other.set_values(0, part.values(0) + 1);
  s = session->Submit("EE", other);
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("with other content"));
  // Keys are for mode SECURE's first step only.
  EXPECT_TRUE(absl::IsFailedPrecondition(session->AdvertiseKey("EE", v1::BoostingKey())));
}

TEST_F(BoostingSessionUnitTest, AMemberMissingAStepEndsTheSessionWithTheFinishedTrees) {
  auto session = MakeSession(Config());
  size_t finished = 0;
  while (!session->done()) {
    const bool drop_lv = finished == 2 && session->StepName().find("level 1") != std::string::npos;
    for (size_t m = 0; m < kMembers.size(); ++m) {
      if (drop_lv && kMembers[m] == "LV") continue;
      std::optional<v1::BoostingStep> step = session->StepFor(kMembers[m]);
      ASSERT_TRUE(step.has_value());
      ASSERT_TRUE(Send(*session, m, *step, VectorOf(m, *step)).ok());
    }
    if (drop_lv) {
      EXPECT_FALSE(session->StepComplete());
      EXPECT_EQ(session->Missing(), std::set<std::string>{"LV"});
      ASSERT_TRUE(session->CloseStepIncomplete().ok());
      EXPECT_THAT(session->ended_early(), HasSubstr("missed step tree 2 level 1"));
      break;
    }
    const bool validation = session->StepName().rfind("validation", 0) == 0;
    ASSERT_TRUE(session->Advance().ok());
    if (validation) ++finished;
  }
  EXPECT_TRUE(session->done());
  EXPECT_EQ(session->ensemble().trees.size(), 2u);
}

}  // namespace
}  // namespace fedcustoms::coordinator
