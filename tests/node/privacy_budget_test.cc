// The node's privacy budget: what it accepts, what it records before an
// update leaves, and that a restart (or a hand-edited file) never resets it.
#include "node/privacy/privacy_budget.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>

#include "common/io/atomic_file.h"
#include "common/privacy/rdp_accountant.h"
#include "tests/support/temp_dir.h"

namespace fedcustoms::node {
namespace {

using ::testing::HasSubstr;

v1::PrivacyConfig DpTask(double sigma = 1.1) {
  v1::PrivacyConfig p;
  p.set_mode(v1::PrivacyConfig::DP_SGD);
  p.set_noise_multiplier(sigma);
  EXPECT_TRUE(privacy::FinalizePrivacyConfig(&p, /*max_train_rows=*/10000, /*rounds=*/5).ok());
  return p;
}

v1::TrainingConfig Training() {
  v1::TrainingConfig t;
  t.set_batch_size(100);
  t.set_local_epochs(1);
  return t;
}

TEST(PrivacyBudgetTest, ANodeWithoutBudgetTrainsPlainTasksAndOneWithABudgetRefusesThem) {
  testing_support::TempDir dir("budget_plain");
  v1::NodePrivacyConfig none;
  auto open = PrivacyBudget::Open(dir.path(), "risk", none, 5000);
  ASSERT_TRUE(open.ok()) << open.status();
  auto plain = open->Check(v1::PrivacyConfig(), Training());
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->has_value());

  v1::NodePrivacyConfig limits;
  limits.set_max_epsilon(3);
  auto strict = PrivacyBudget::Open(dir.path(), "risk", limits, 5000);
  ASSERT_TRUE(strict.ok());
  const absl::Status refused = strict->Check(v1::PrivacyConfig(), Training()).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(refused.message()), HasSubstr("max_epsilon 3"));
}

TEST(PrivacyBudgetTest, ADeltaAboveTheNodesLimitIsRefused) {
  testing_support::TempDir dir("budget_delta");
  // 5000 rows: the node's default max_delta is 1e-4 (below 1/5000); the
  // task's default (10 000-row cap) is 1e-5, so it passes; 1e-3 does not.
  auto budget = PrivacyBudget::Open(dir.path(), "risk", v1::NodePrivacyConfig(), 5000);
  ASSERT_TRUE(budget.ok());
  v1::PrivacyConfig task = DpTask();
  EXPECT_DOUBLE_EQ(task.delta(), 1e-5);
  EXPECT_TRUE(budget->Check(task, Training()).ok());
  task.set_delta(1e-3);
  const absl::Status refused = budget->Check(task, Training()).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(refused.message()), HasSubstr("above this node's max_delta 0.0001"));
}

// ε at δ 1e-5 of `rounds` rounds of `steps` DP-SGD steps (q, σ) and one
// step of the statistics query (sampling rate 1, σ_s) each, recomputed here
// with the accountant.
double RoundsEpsilon(double q, double sigma, uint64_t steps, uint64_t rounds, double stats_sigma) {
  privacy::RdpAccountant accountant;
  accountant.Step(q, sigma, steps * rounds);
  accountant.Step(1, stats_sigma, rounds);
  return accountant.Spent(1e-5, privacy::Orders::kOpacus, privacy::Conversion::kImproved)->epsilon;
}

TEST(PrivacyBudgetTest, SpendingIsRecordedSurvivesARestartAndStopsAtTheBudget) {
  testing_support::TempDir dir("budget_spend");
  const v1::PrivacyConfig task = DpTask(1.1);
  // One round: 5000 rows, batch 100 → q = 0.02, 50 steps, and a step of the
  // statistics query.
  const double one = RoundsEpsilon(0.02, 1.1, 50, 1, task.stats_noise_multiplier());
  const double two = RoundsEpsilon(0.02, 1.1, 50, 2, task.stats_noise_multiplier());
  const double three = RoundsEpsilon(0.02, 1.1, 50, 3, task.stats_noise_multiplier());
  ASSERT_LT(one, two);
  ASSERT_LT(two, three);
  v1::NodePrivacyConfig limits;
  limits.set_max_epsilon((two + three) / 2);  // room for two rounds, not three
  {
    auto budget = PrivacyBudget::Open(dir.path(), "risk", limits, 5000);
    ASSERT_TRUE(budget.ok());
    for (int round = 0; round < 2; ++round) {
      auto plan = budget->Check(task, Training());
      ASSERT_TRUE(plan.ok()) << plan.status();
      ASSERT_TRUE(plan->has_value());
      EXPECT_DOUBLE_EQ((*plan)->sampling_rate, 0.02);
      EXPECT_EQ((*plan)->steps, 50u);
      EXPECT_DOUBLE_EQ((*plan)->noise_multiplier, 1.1);
      ASSERT_TRUE(budget->Record(**plan).ok());
    }
    EXPECT_NEAR(budget->spent().epsilon(), two, 1e-12 * two);
    EXPECT_EQ(budget->spent().rounds(), 2u);
    EXPECT_THAT(budget->DeclineReason(), HasSubstr("privacy budget spent"));
  }
  // A restart reads the same spending back.
  auto restarted = PrivacyBudget::Open(dir.path(), "risk", limits, 5000);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  EXPECT_NEAR(restarted->spent().epsilon(), two, 1e-12 * two);
  ASSERT_EQ(restarted->spent().segments_size(), 2);
  EXPECT_EQ(restarted->spent().segments(0).steps(), 100u);
  EXPECT_EQ(restarted->spent().segments(1).sampling_rate(), 1);
  EXPECT_EQ(restarted->spent().segments(1).steps(), 2u);
  const absl::Status third = restarted->Check(task, Training()).status();
  EXPECT_EQ(third.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(third.message()), HasSubstr("above this node's max_epsilon"));
  EXPECT_FALSE(restarted->DeclineReason().empty());
  // Another task has its own budget.
  auto other = PrivacyBudget::Open(dir.path(), "anomaly", limits, 5000);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->spent().epsilon(), 0);
  EXPECT_TRUE(other->DeclineReason().empty());
}

// A coordinator's config outside the bounds is refused before the node
// plans or spends anything on it: a NaN or huge target (the calibration
// would not end), statistics noise below 1, a numeric range that overflows.
TEST(PrivacyBudgetTest, AHostileTaskConfigIsRefusedBeforeAnythingIsSpent) {
  testing_support::TempDir dir("budget_hostile");
  auto budget = PrivacyBudget::Open(dir.path(), "risk", v1::NodePrivacyConfig(), 5000);
  ASSERT_TRUE(budget.ok());
  v1::PrivacyConfig calibrated;
  calibrated.set_mode(v1::PrivacyConfig::DP_SGD);
  calibrated.set_target_epsilon(3);
  ASSERT_TRUE(privacy::FinalizePrivacyConfig(&calibrated, 10000, 5).ok());
  struct Case {
    const char* what;
    std::function<void(v1::PrivacyConfig*)> edit;
    const char* expected;
  };
  const std::vector<Case> cases = {
      {"NaN target", [](v1::PrivacyConfig* p) { p->set_target_epsilon(std::nan("")); },
       "privacy.target_epsilon"},
      {"huge target", [](v1::PrivacyConfig* p) { p->set_target_epsilon(1e300); },
       "privacy.target_epsilon"},
      {"weak statistics noise", [](v1::PrivacyConfig* p) { p->set_stats_noise_multiplier(0.5); },
       "privacy.stats_noise_multiplier"},
      {"overflowing range",
       [](v1::PrivacyConfig* p) {
         p->set_numeric_low(-1e308);
         p->set_numeric_high(1e308);
       },
       "privacy.numeric_high"},
  };
  for (const Case& c : cases) {
    v1::PrivacyConfig hostile = calibrated;
    c.edit(&hostile);
    const absl::Status refused = budget->Check(hostile, Training()).status();
    EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument) << c.what;
    EXPECT_THAT(std::string(refused.message()), HasSubstr(c.expected)) << c.what;
  }
  EXPECT_EQ(budget->spent().rounds(), 0u);
  EXPECT_FALSE(std::filesystem::exists(budget->path()));
}

TEST(PrivacyBudgetTest, AnEditedOrDamagedRecordIsRefusedNotReset) {
  testing_support::TempDir dir("budget_tamper");
  const v1::PrivacyConfig task = DpTask(1.1);
  {
    auto budget = PrivacyBudget::Open(dir.path(), "risk", v1::NodePrivacyConfig(), 5000);
    ASSERT_TRUE(budget.ok());
    auto plan = budget->Check(task, Training());
    ASSERT_TRUE(plan.ok() && plan->has_value());
    ASSERT_TRUE(budget->Record(**plan).ok());
    EXPECT_EQ(std::filesystem::status(budget->path()).permissions() & std::filesystem::perms::all,
              std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  }
  const std::string path = dir.path() + "/privacy_risk.json";
  auto text = io::ReadFile(path);
  ASSERT_TRUE(text.ok());
  // Lowering the recorded ε by hand.
  std::string edited = *text;
  const size_t at = edited.find("\"epsilon\":");
  ASSERT_NE(at, std::string::npos);
  edited.replace(at, edited.find_first_of(",}", at) - at, "\"epsilon\":0.01");
  ASSERT_TRUE(io::WriteFileAtomically(path, edited).ok());
  auto opened = PrivacyBudget::Open(dir.path(), "risk", v1::NodePrivacyConfig(), 5000);
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(opened.status().message()), HasSubstr("is not what its segments give"));
  // A truncated file.
  ASSERT_TRUE(io::WriteFileAtomically(path, text->substr(0, text->size() / 2)).ok());
  opened = PrivacyBudget::Open(dir.path(), "risk", v1::NodePrivacyConfig(), 5000);
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(opened.status().message()), HasSubstr("privacy_risk.json"));
}

TEST(PrivacyBudgetTest, TheNoiseIsCalibratedToTheTargetOverThePlannedRounds) {
  testing_support::TempDir dir("budget_calibrate");
  v1::PrivacyConfig task;
  task.set_mode(v1::PrivacyConfig::DP_SGD);
  task.set_target_epsilon(3);
  ASSERT_TRUE(privacy::FinalizePrivacyConfig(&task, 10000, /*rounds=*/4).ok());
  EXPECT_EQ(task.planned_rounds(), 4u);
  auto budget = PrivacyBudget::Open(dir.path(), "risk", v1::NodePrivacyConfig(), 5000);
  ASSERT_TRUE(budget.ok());
  auto plan = budget->Check(task, Training());
  ASSERT_TRUE(plan.ok() && plan->has_value()) << plan.status();
  const double sigma = (*plan)->noise_multiplier;
  // Four rounds of 50 steps and of the statistics query reach the target
  // within Opacus's tolerance...
  const double eps = RoundsEpsilon(0.02, sigma, 50, 4, task.stats_noise_multiplier());
  EXPECT_LE(eps, 3.0);
  EXPECT_GT(eps, 3.0 - 0.011);
  // ...and a fifth would pass it.
  EXPECT_GT(RoundsEpsilon(0.02, sigma, 50, 5, task.stats_noise_multiplier()), 3.0);
}

TEST(PrivacyConfigTest, DefaultsAndRefusalsNameTheField) {
  EXPECT_DOUBLE_EQ(privacy::DefaultDelta(10000), 1e-5);
  EXPECT_DOUBLE_EQ(privacy::DefaultDelta(10001), 1e-6);
  EXPECT_DOUBLE_EQ(privacy::DefaultDelta(1), 0.1);
  EXPECT_DOUBLE_EQ(privacy::DefaultDelta(10000000), 1e-8);
  EXPECT_DOUBLE_EQ(privacy::DefaultMaxDelta(64000), 1e-5);
  EXPECT_DOUBLE_EQ(privacy::DefaultMaxDelta(10000), 1e-5);
  EXPECT_DOUBLE_EQ(privacy::DefaultMaxDelta(9999), 1e-4);
  v1::PrivacyConfig none;
  EXPECT_TRUE(privacy::FinalizePrivacyConfig(&none, 10000, 0).ok());
  EXPECT_EQ(none.mode(), v1::PrivacyConfig::NONE);
  v1::PrivacyConfig p;
  p.set_mode(v1::PrivacyConfig::DP_SGD);
  absl::Status s = privacy::FinalizePrivacyConfig(&p, 10000, 5);
  EXPECT_THAT(std::string(s.message()), HasSubstr("privacy.target_epsilon: must be in (0, 100]"));
  p.set_target_epsilon(2);
  p.set_planned_rounds(0);  // the call above filled it from the task's rounds
  s = privacy::FinalizePrivacyConfig(&p, 10000, 0);
  EXPECT_THAT(std::string(s.message()), HasSubstr("privacy.planned_rounds: required"));
  p.set_delta(0.01);
  s = privacy::FinalizePrivacyConfig(&p, 10000, 5);
  EXPECT_THAT(std::string(s.message()), HasSubstr("privacy.delta: must be in (0, 1e-3]"));
  p.set_delta(0);
  p.set_clip_norm(-1);
  s = privacy::FinalizePrivacyConfig(&p, 10000, 5);
  EXPECT_THAT(std::string(s.message()), HasSubstr("privacy.clip_norm"));
}

}  // namespace
}  // namespace fedcustoms::node
