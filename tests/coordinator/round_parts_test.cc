// The pure parts of a round that TaskRunner composes: who is available
// (NodeRoster), which phase accepts which round (RoundState), what an update
// header may claim (CheckUpdateHeader), which step a polling node gets
// (AssignmentFor) and what every manifest states (ManifestTemplate). No
// threads, no files: each rule is checked on its own.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <functional>
#include <limits>
#include <map>

#include "common/task/task_model.h"
#include "coordinator/aggregation/tensor_source.h"
#include "coordinator/rounds/assignment.h"
#include "coordinator/rounds/candidate_check.h"
#include "coordinator/rounds/manifest_template.h"
#include "coordinator/rounds/metrics_check.h"
#include "coordinator/rounds/node_roster.h"
#include "coordinator/rounds/round_state.h"
#include "coordinator/rounds/update_header_check.h"

namespace fedcustoms::coordinator {
namespace {

using std::chrono::seconds;
using Kind = v1::TaskAssignment::Kind;

const Clock::time_point kT0 = Clock::time_point() + std::chrono::hours(1);

TEST(NodeRoster, OnlyJoinedNodesHeardFromWithinTheWindowAreAvailable) {
  NodeRoster roster(1000, {});
  roster.Seen("EE", kT0);  // called, never joined (e.g. after a restart)
  ASSERT_TRUE(roster.Join("FI", 100, kT0).ok());
  ASSERT_TRUE(roster.Join("LV", 50, kT0).ok());
  EXPECT_EQ(roster.Available(kT0), (std::set<std::string>{"FI", "LV"}));
  EXPECT_FALSE(roster.HasJoined("EE"));

  roster.Seen("LV", kT0 + seconds(20));
  const Clock::time_point later = kT0 + NodeRoster::kAvailableWindow + seconds(1);
  EXPECT_EQ(roster.Available(later), (std::set<std::string>{"LV"}));

  ASSERT_TRUE(roster.Join("EE", 7, later).ok());
  EXPECT_EQ(roster.Available(later), (std::set<std::string>{"EE", "LV"}));
}

TEST(NodeRoster, DeclaredRowsAreTheLastJoinsAndUnknownNodesCountZero) {
  NodeRoster roster(1000, {});
  ASSERT_TRUE(roster.Join("FI", 100, kT0).ok());
  ASSERT_TRUE(roster.Join("FI", 40, kT0).ok());
  ASSERT_TRUE(roster.Join("LV", 60, kT0).ok());
  EXPECT_EQ(roster.DeclaredRows("FI"), 40u);
  EXPECT_EQ(roster.DeclaredRows("EE"), std::nullopt);
  EXPECT_EQ(roster.RowsOf({"FI", "LV", "EE"}),
            (std::map<std::string, uint64_t>{{"EE", 0}, {"FI", 40}, {"LV", 60}}));
}

// The attacker of point 4 claims 2^33 rows (or any weight above its cap):
// refused, and the roster keeps what it had.
TEST(NodeRoster, RowsAboveTheNodesCapAreRefusedAndChangeNothing) {
  NodeRoster roster(1000, {{"FI", 200}, {"LV", 5000}});
  ASSERT_TRUE(roster.Join("FI", 150, kT0).ok());
  absl::Status s = roster.Join("FI", 201, kT0);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "node FI declared 201 training rows; the task takes 1..200 from this administration "
            "(max_train_rows_by_node)");
  EXPECT_EQ(roster.DeclaredRows("FI"), 150u);
  // A per-node entry above the task's cap does not raise it.
  EXPECT_EQ(roster.Join("LV", 1001, kT0).message(),
            "node LV declared 1001 training rows; the task takes 1..1000 from an administration "
            "(max_train_rows)");
  EXPECT_TRUE(absl::IsInvalidArgument(roster.Join("EE", uint64_t{1} << 33, kT0)));
  EXPECT_TRUE(absl::IsInvalidArgument(roster.Join("EE", 0, kT0)));
  EXPECT_FALSE(roster.HasJoined("EE"));
  EXPECT_EQ(roster.Available(kT0), (std::set<std::string>{"FI"}));
}

TEST(NodeRoster, SelectDrawsAtMostMaxNodesAndEveryNodeGetsDrawn) {
  NodeRoster roster(1000, {});
  const std::set<std::string> available = {"AT", "BE", "DE", "EE", "FI"};
  EXPECT_EQ(roster.Select(available, 5), available);
  std::map<std::string, int> drawn;
  for (int i = 0; i < 200; ++i) {
    const std::set<std::string> round = roster.Select(available, 2);
    ASSERT_EQ(round.size(), 2u);
    for (const std::string& node : round) {
      ASSERT_TRUE(available.contains(node));
      ++drawn[node];
    }
  }
  // 80 draws each expected; a node never drawn would mean a fixed choice.
  for (const std::string& node : available) EXPECT_GT(drawn[node], 30) << node;
}

TEST(RoundState, OpenStartsTheNextRoundWithEmptySets) {
  RoundState round;
  round.id = 4;
  round.submitted["FI"] = 10;
  round.uploading.insert("LV");
  round.reported["FI"] = v1::EvaluationMetrics();
  round.rejected_updates = 2;
  RoundRecord record;
  record.round_id = 5;
  round.Open({{"EE", 30}, {"FI", 70}}, record);
  EXPECT_EQ(round.id, 5u);
  EXPECT_EQ(round.selected, (std::set<std::string>{"EE", "FI"}));
  EXPECT_EQ(round.RowsOf("FI"), 70u);
  EXPECT_EQ(round.RowsOf("LV"), 0u);
  EXPECT_EQ(round.TotalRows(), 100u);
  EXPECT_TRUE(round.submitted.empty());
  EXPECT_TRUE(round.uploading.empty());
  EXPECT_TRUE(round.reported.empty());
  EXPECT_EQ(round.rejected_updates, 0u);
  EXPECT_EQ(round.record.round_id, 5u);
}

TEST(RoundState, CheckPhaseNamesTheCurrentRoundAndPhase) {
  RoundState round;
  round.id = 3;
  round.phase = RoundPhase::kTraining;
  EXPECT_TRUE(round.CheckPhase("risk", 3, RoundPhase::kTraining).ok());

  absl::Status s = round.CheckPhase("risk", 4, RoundPhase::kTraining);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(), "unknown round 4 of task risk (current round 3)");
  s = round.CheckPhase("risk", 0, RoundPhase::kTraining);
  EXPECT_EQ(s.message(), "unknown round 0 of task risk (current round 3)");
  s = round.CheckPhase("risk", 2, RoundPhase::kTraining);
  EXPECT_EQ(s.message(), "round 2 of task risk is closed (current round 3)");
  s = round.CheckPhase("risk", 3, RoundPhase::kSharing);
  EXPECT_EQ(s.message(), "round 3 of task risk is training, not sharing keys");
}

v1::UpdateHeader Header(uint64_t samples, double loss) {
  v1::UpdateHeader h;
  h.set_round_id(1);
  h.set_sample_count(samples);
  h.set_train_loss(loss);
  return h;
}

TEST(CheckUpdateHeader, TrustedModeBoundsTheSampleCountAndTheLoss) {
  const UpdateHeaderLimits limits{false, 1000, 200};
  EXPECT_TRUE(CheckUpdateHeader("risk", "FI", Header(200, 0.5), limits).ok());

  absl::Status s = CheckUpdateHeader("risk", "FI", Header(0, 0.5), limits);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "sample_count 0 is outside 1..1000");
  s = CheckUpdateHeader("risk", "FI", Header(1001, 0.5), limits);
  EXPECT_EQ(s.message(), "sample_count 1001 is outside 1..1000");
  s = CheckUpdateHeader("risk", "FI", Header(201, 0.5), limits);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "sample_count 201 exceeds the 200 training rows node FI declared when it joined");
  s = CheckUpdateHeader("risk", "FI", Header(10, std::nan("")), limits);
  EXPECT_EQ(s.message(), "train_loss is NaN or Inf");
  s = CheckUpdateHeader("risk", "FI", Header(10, std::numeric_limits<double>::infinity()), limits);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
}

TEST(CheckUpdateHeader, ANodeThatHasNotJoinedIsAPreconditionNotARejection) {
  absl::Status s =
      CheckUpdateHeader("risk", "EE", Header(10, 0.5), UpdateHeaderLimits{false, 1000, {}});
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(), "node EE has not joined task risk since the coordinator started");
}

TEST(CheckUpdateHeader, SecureModeRefusesClearCounts) {
  const UpdateHeaderLimits limits{true, 1000, 200};
  EXPECT_TRUE(CheckUpdateHeader("risk", "FI", Header(0, 0), limits).ok());
  EXPECT_EQ(CheckUpdateHeader("risk", "FI", Header(10, 0), limits).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckUpdateHeader("risk", "FI", Header(0, 0.25), limits).code(),
            absl::StatusCode::kInvalidArgument);
}

class AssignmentForTest : public ::testing::Test {
 protected:
  AssignmentForTest() {
    config_.set_name("risk");
    config_.mutable_training()->set_local_epochs(3);
    global_.version = 7;
    global_.manifest = {"{\"version\":7}", "sig7"};
    candidate_.version = 8;
    candidate_.manifest = {"{\"version\":8}", "sig8"};
    round_.id = 12;
    round_.selected = {"EE", "FI", "LV"};
    round_.deadline = kT0 + seconds(30);
  }
  v1::TaskAssignment For(const std::string& node, Clock::time_point now = kT0) {
    return AssignmentFor(round_, node,
                         AssignmentContext{config_, model_, global_, &candidate_, now});
  }

  v1::TaskConfig config_;
  task::ModelSpec model_;
  ModelSnapshot global_;
  ModelSnapshot candidate_;
  RoundState round_;
};

TEST_F(AssignmentForTest, SelectedNodesTrainTheGlobalModelOnce) {
  round_.phase = RoundPhase::kTraining;
  round_.submitted["EE"] = 10;
  round_.uploading.insert("FI");
  v1::TaskAssignment a = For("LV", kT0 + seconds(10));
  EXPECT_EQ(a.kind(), v1::TaskAssignment::TRAIN);
  EXPECT_EQ(a.task(), "risk");
  EXPECT_EQ(a.round_id(), 12u);
  EXPECT_EQ(a.model_version(), 7u);
  EXPECT_EQ(a.deadline_seconds(), 20u);
  EXPECT_EQ(a.training().local_epochs(), 3u);
  EXPECT_EQ(a.manifest_json(), "{\"version\":7}");
  EXPECT_EQ(a.manifest_signature(), "sig7");
  EXPECT_FALSE(a.has_secure());

  EXPECT_EQ(For("EE").kind(), v1::TaskAssignment::WAIT);           // already folded in
  EXPECT_EQ(For("FI").kind(), v1::TaskAssignment::WAIT);           // upload in progress
  EXPECT_EQ(For("SE").kind(), v1::TaskAssignment::WAIT);           // not selected
  EXPECT_EQ(For("LV", kT0 + seconds(90)).deadline_seconds(), 0u);  // past: 0, not negative
}

TEST_F(AssignmentForTest, ContributorsEvaluateTheCandidateOnce) {
  round_.phase = RoundPhase::kEvaluating;
  round_.submitted = {{"EE", 10}, {"FI", 20}};
  // SE no longer trains (its privacy budget is spent) but evaluates.
  round_.evaluators = {"EE", "FI", "SE"};
  round_.reported["FI"] = v1::EvaluationMetrics();
  EXPECT_EQ(For("SE").kind(), v1::TaskAssignment::EVALUATE);
  v1::TaskAssignment a = For("EE");
  EXPECT_EQ(a.kind(), v1::TaskAssignment::EVALUATE);
  EXPECT_EQ(a.model_version(), 8u);
  EXPECT_EQ(a.manifest_signature(), "sig8");
  EXPECT_FALSE(a.has_training());
  EXPECT_EQ(For("FI").kind(), v1::TaskAssignment::WAIT);  // reported
  EXPECT_EQ(For("LV").kind(), v1::TaskAssignment::WAIT);  // neither contributes nor evaluates
}

TEST_F(AssignmentForTest, OtherPhasesWaitAndAFinishedTaskSaysSo) {
  for (RoundPhase phase : {RoundPhase::kGathering, RoundPhase::kAggregating,
                           RoundPhase::kAdvertising, RoundPhase::kUnmasking}) {
    round_.phase = phase;
    EXPECT_EQ(For("EE").kind(), v1::TaskAssignment::WAIT) << RoundPhaseName(phase);
  }
  round_.phase = RoundPhase::kFinished;
  EXPECT_EQ(For("SE").kind(), v1::TaskAssignment::FINISHED);
}

TEST(ManifestTemplate, StatesTheTaskAndChainsVersionsToTheirParent) {
  v1::TaskConfig config;
  config.set_name("risk");
  config.mutable_training()->set_local_epochs(2);
  config.mutable_robust_aggregation()->set_kind(v1::RobustAggregationConfig::TRIMMED_MEAN);
  config.mutable_robust_aggregation()->set_norm_bound(5);
  const task::ModelSpec model;
  ManifestTemplate manifests(config, model, v1::SECURE, "fedadam");

  manifest::ModelManifest v0 = manifests.For(0);
  EXPECT_EQ(v0.task, "risk");
  EXPECT_FALSE(v0.has_parent);
  manifest::ModelManifest v5 = manifests.For(5);
  EXPECT_TRUE(v5.has_parent);
  EXPECT_EQ(v5.parent, 4u);
  EXPECT_EQ(v5.aggregation_mode, "secure");
  EXPECT_EQ(v5.strategy, "fedadam");
  EXPECT_EQ(v5.aggregator, "trimmed_mean+norm_bound");
  EXPECT_EQ(v5.architecture, std::string(task::ArchitectureName(model.kind)));
  EXPECT_EQ(v5.feature_schema_hash, task::InputHash(model));
  EXPECT_NE(v5.training_json.find("\"local_epochs\":2"), std::string::npos) << v5.training_json;
  EXPECT_FALSE(v5.created_at.empty());
  EXPECT_EQ(AggregationModeName(v1::TRUSTED), std::string("trusted"));
}

tensor::NamedTensors Model(float weight, float var) {
  return {{"fc.weight", torch::full({4, 25}, weight)},
          {"fc.bias", torch::zeros({4})},
          {"standardize.running_mean", torch::zeros({3})},
          {"standardize.running_var", torch::full({3}, var, torch::kFloat64)},
          {"standardize.num_batches_tracked", torch::zeros({}, torch::kInt64)}};
}

TEST(CheckCandidate, AnHonestStepPassesAndReportsItsLargestChange) {
  const tensor::NamedTensors global = Model(0.5f, 1.0f);
  tensor::NamedTensors next = Model(0.55f, 4.0f);  // weights +10 %; variances move freely
  next[1].second += 0.05f;                         // the bias, from 0: 0.05 over the 0.1 floor
  absl::StatusOr<CandidateReport> r = CheckCandidate(next, InMemoryTensors(global), {50});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NEAR(r->max_relative_change, 0.5, 1e-6);
  EXPECT_EQ(r->tensor, "fc.bias");
}

TEST(CheckCandidate, NaNANonPositiveVarianceOrATooLargeStepIsRefused) {
  const tensor::NamedTensors global = Model(0.5f, 1.0f);
  tensor::NamedTensors nan = Model(0.5f, 1.0f);
  nan[0].second[1][2] = std::nanf("");
  absl::Status s = CheckCandidate(nan, InMemoryTensors(global), {50}).status();
  EXPECT_EQ(s,
            absl::FailedPreconditionError("candidate tensor fc.weight has NaN or infinite values"));

  tensor::NamedTensors negative = Model(0.5f, 1.0f);
  negative[3].second[1] = -0.5;  // the attack: a variance pushed below 0 (float64 buffer)
  s = CheckCandidate(negative, InMemoryTensors(global), {50}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("candidate tensor standardize.running_var has a variance <= 0 (min "
                             "-0.5)"),
            std::string::npos)
      << s;

  // Weights scaled 100 times (a boosted update): 99 x their RMS of 0.5.
  s = CheckCandidate(Model(50.0f, 1.0f), InMemoryTensors(global), {50}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("candidate tensor fc.weight moved 99 times its scale"),
            std::string::npos)
      << s;
  // Unbounded when the limit is 0.
  EXPECT_TRUE(CheckCandidate(Model(50.0f, 1.0f), InMemoryTensors(global), {0}).ok());
}

TEST(CheckCandidate, ALayoutThatDiffersFromTheGlobalModelIsRefused) {
  const tensor::NamedTensors global = Model(0.5f, 1.0f);
  tensor::NamedTensors missing = Model(0.5f, 1.0f);
  missing.erase(missing.begin());
  EXPECT_EQ(
      CheckCandidate(missing, InMemoryTensors(global), {50}).status(),
      absl::FailedPreconditionError("the global model's tensor fc.weight is not in the candidate"));
  tensor::NamedTensors resized = Model(0.5f, 1.0f);
  resized[0].second = torch::full({4, 24}, 0.5f);
  EXPECT_EQ(CheckCandidate(resized, InMemoryTensors(global), {50}).status(),
            absl::FailedPreconditionError(
                "candidate tensor fc.weight has 96 values, the global one 100"));
  tensor::NamedTensors twice = Model(0.5f, 1.0f);
  twice.push_back(twice[0]);
  EXPECT_EQ(CheckCandidate(twice, InMemoryTensors(global), {50}).status(),
            absl::FailedPreconditionError("the candidate has two tensors named fc.weight"));
}

v1::EvaluationMetrics PrAuc(double pr_auc) {
  v1::EvaluationMetrics m;
  m.set_pr_auc(pr_auc);
  m.set_roc_auc(0.5);
  m.set_examples(100);
  return m;
}

// One budget listed twice would count the node twice in that budget's mean.
TEST(CheckMetrics, ABudgetListedTwiceIsRefused) {
  v1::EvaluationMetrics m;
  m.set_roc_auc(0.8);
  m.set_pr_auc(0.4);
  m.set_examples(100);
  for (uint32_t percent : {5u, 10u}) {
    v1::AtBudget* b = m.add_at_budget();
    b->set_percent(percent);
    b->set_precision(0.5);
    b->set_recall(0.5);
  }
  EXPECT_TRUE(CheckMetrics(m).ok());
  *m.add_at_budget() = m.at_budget(0);
  absl::Status s = CheckMetrics(m);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_EQ(s.message(), "metrics: at_budget lists percent 5 twice");
}

// The validation figures choose the released version: they are held to the
// same rules as the hold-out's.
TEST(CheckMetrics, MalformedValidationMetricsAreRefused) {
  auto base = [] {
    v1::EvaluationMetrics m = PrAuc(0.3);
    v1::ValidationMetrics* v = m.mutable_validation();
    v->set_pr_auc(0.2);
    v->set_roc_auc(0.6);
    v->set_loss(0.4);
    v->set_examples(50);
    v->set_positives(5);
    return m;
  };
  EXPECT_TRUE(CheckMetrics(base()).ok());
  struct Case {
    std::function<void(v1::ValidationMetrics*)> spoil;
    const char* expected;
  };
  const Case cases[] = {
      {[](auto* v) { v->set_pr_auc(1.5); },
       "metrics: validation.roc_auc and validation.pr_auc must be within [0, 1]"},
      {[](auto* v) { v->set_roc_auc(std::nan("")); },
       "metrics: validation.roc_auc and validation.pr_auc must be within [0, 1]"},
      {[](auto* v) { v->set_loss(-1); }, "metrics: validation.loss must be finite and >= 0"},
      {[](auto* v) { v->set_positives(51); }, "validation.positives <= validation.examples"},
      {[](auto* v) { v->set_examples(0); }, "need 0 < validation.examples <= 1000000000"},
      {[](auto* v) { v->set_examples(uint64_t{1} << 62); },
       "need 0 < validation.examples <= 1000000000"},
  };
  for (const Case& c : cases) {
    v1::EvaluationMetrics m = base();
    c.spoil(m.mutable_validation());
    const absl::Status s = CheckMetrics(m);
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << c.expected;
    EXPECT_NE(s.message().find(c.expected), std::string::npos) << s;
  }
}

// The released version is chosen on the lower median validation PR-AUC,
// over the reports whose validation split has positives, when at least three
// such figures are a majority of the reports.
TEST(SummarizeReports, TheMedianValidationPrAucIgnoresSplitsWithoutPositives) {
  auto with = [](double pr_auc, uint64_t positives) {
    v1::EvaluationMetrics m = PrAuc(0.3);
    m.mutable_validation()->set_pr_auc(pr_auc);
    m.mutable_validation()->set_examples(50);
    m.mutable_validation()->set_positives(positives);
    return m;
  };
  std::map<std::string, v1::EvaluationMetrics> reported = {
      {"EE", with(0.2, 3)}, {"FI", with(0.4, 2)}, {"LV", with(0.0, 0)}, {"SE", with(0.9, 4)}};
  RoundMetrics m = SummarizeReports(1, reported);
  ASSERT_TRUE(m.median_validation_pr_auc.has_value());
  EXPECT_DOUBLE_EQ(*m.median_validation_pr_auc, 0.4);  // of 0.2, 0.4, 0.9
  // Fewer than three figures, or figures from a minority: none.
  reported = {{"EE", with(0.2, 3)}, {"FI", with(0.4, 2)}, {"LV", PrAuc(0.3)}};
  EXPECT_FALSE(SummarizeReports(1, reported).median_validation_pr_auc.has_value());
  reported = {{"EE", with(0.2, 3)}, {"FI", with(0.4, 2)}, {"LV", with(0.5, 2)},
              {"SE", PrAuc(0.3)},   {"PL", PrAuc(0.3)},   {"DE", PrAuc(0.3)}};
  EXPECT_FALSE(SummarizeReports(1, reported).median_validation_pr_auc.has_value());
  // Four figures: the lower of the two middle ones, which one liar above
  // cannot raise.
  reported = {
      {"EE", with(0.2, 3)}, {"FI", with(0.4, 2)}, {"LV", with(0.3, 2)}, {"SE", with(1.0, 9)}};
  EXPECT_DOUBLE_EQ(*SummarizeReports(1, reported).median_validation_pr_auc, 0.3);
}

TEST(SummarizeReports, TheMedianPrAucResistsOneLiar) {
  // Three honest reports near 0.30 and one that claims 1.0 with a billion
  // examples: the weighted mean follows the liar, the median does not.
  std::map<std::string, v1::EvaluationMetrics> reported = {
      {"EE", PrAuc(0.29)}, {"FI", PrAuc(0.31)}, {"LV", PrAuc(0.30)}, {"SE", PrAuc(1.0)}};
  reported["SE"].set_examples(1000000000);
  RoundMetrics m = SummarizeReports(4, reported);
  ASSERT_TRUE(m.mean.has_value());
  EXPECT_GT(m.mean->pr_auc(), 0.99);
  ASSERT_TRUE(m.median_pr_auc.has_value());
  EXPECT_DOUBLE_EQ(*m.median_pr_auc, 0.31);
  EXPECT_FALSE(SummarizeReports(4, {}).median_pr_auc.has_value());
}

TEST(CheckEvaluation, QuorumAndRegressionGate) {
  v1::PublishGate gate;
  gate.set_min_reports(2);
  RoundMetrics m = SummarizeReports(2, {{"EE", PrAuc(0.28)}, {"FI", PrAuc(0.30)}});
  EXPECT_TRUE(CheckEvaluation(m, 2, 3, 0.40, gate).ok());  // no drop limit set
  EXPECT_EQ(CheckEvaluation(m, 1, 3, std::nullopt, gate),
            absl::FailedPreconditionError("only 1 of 3 contributors reported metrics on the "
                                          "candidate by the deadline; min_reports is 2"));
  gate.set_max_pr_auc_drop(0.05);
  EXPECT_TRUE(CheckEvaluation(m, 2, 3, 0.34, gate).ok());          // 0.30 >= 0.34 - 0.05
  EXPECT_TRUE(CheckEvaluation(m, 2, 3, std::nullopt, gate).ok());  // nothing to compare with
  absl::Status s = CheckEvaluation(m, 2, 3, 0.40, gate);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(),
            "the candidate's median hold-out PR-AUC 0.3 is more than 0.05 below the published "
            "version's 0.4 (max_pr_auc_drop)");
}

}  // namespace
}  // namespace fedcustoms::coordinator
