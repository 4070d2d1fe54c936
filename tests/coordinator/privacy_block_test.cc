// The coordinator's side of DP: the checks on what nodes report they spent,
// and the manifest's privacy block built from the reports.
#include "coordinator/rounds/privacy_block.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/privacy/privacy_config.h"

namespace fedcustoms::coordinator {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

v1::PrivacyConfig DpTask() {
  v1::PrivacyConfig p;
  p.set_mode(v1::PrivacyConfig::DP_SGD);
  p.set_noise_multiplier(1.0);
  EXPECT_TRUE(privacy::FinalizePrivacyConfig(&p, 10000, 3).ok());
  return p;
}

v1::PrivacySpent Spent(double q, double sigma, uint64_t steps, uint64_t rounds) {
  v1::PrivacySpent s;
  auto* seg = s.add_segments();
  seg->set_sampling_rate(q);
  seg->set_noise_multiplier(sigma);
  seg->set_steps(steps);
  s.set_clip_norm(1.0);
  s.set_delta(1e-5);
  s.set_rounds(rounds);
  s.set_epsilon(*privacy::EpsilonOfSegments(s, 1e-5));
  return s;
}

// A round of 50 steps at q 0.02, σ 1 and the task's statistics query.
privacy::DpSgdPlan PlanOf(const v1::PrivacyConfig& task) {
  return {.sampling_rate = 0.02,
          .noise_multiplier = 1.0,
          .steps = 50,
          .clip_norm = 1.0,
          .delta = 1e-5,
          .stats_noise_multiplier = task.stats_noise_multiplier()};
}

TEST(PrivacyReportTest, ReportsMustMatchTheTaskAndTheirOwnSegments) {
  const v1::PrivacyConfig task = DpTask();
  v1::UpdateHeader header;
  EXPECT_THAT(std::string(CheckPrivacyReport(task, "EE", header).message()),
              HasSubstr("privacy report of EE: missing"));
  *header.mutable_privacy() = Spent(0.02, 1.0, 50, 1);
  EXPECT_TRUE(CheckPrivacyReport(task, "EE", header).ok());
  // A node understating its ε.
  header.mutable_privacy()->set_epsilon(header.privacy().epsilon() / 2);
  const absl::Status low = CheckPrivacyReport(task, "EE", header);
  EXPECT_EQ(low.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(low.message()), HasSubstr("is not what its segments give"));
  // Another δ or C than the task's.
  *header.mutable_privacy() = Spent(0.02, 1.0, 50, 1);
  header.mutable_privacy()->set_clip_norm(5);
  EXPECT_THAT(std::string(CheckPrivacyReport(task, "EE", header).message()),
              HasSubstr("clip_norm 5 is not the task's 1"));
  // A segment the accountant refuses.
  *header.mutable_privacy() = Spent(0.02, 1.0, 50, 1);
  header.mutable_privacy()->mutable_segments(0)->set_sampling_rate(2);
  EXPECT_THAT(std::string(CheckPrivacyReport(task, "EE", header).message()),
              HasSubstr("segment 0"));
  // A report on a task without DP.
  *header.mutable_privacy() = Spent(0.02, 1.0, 50, 1);
  EXPECT_FALSE(CheckPrivacyReport(v1::PrivacyConfig(), "EE", header).ok());
}

// A report must end with this round's plan and never go back on what is
// published: a node cannot claim less than it spent nor skip the round.
TEST(PrivacyReportTest, ReportsEndWithThePlanAndOnlyMoveForward) {
  const v1::PrivacyConfig task = DpTask();
  const privacy::DpSgdPlan plan = PlanOf(task);
  v1::PrivacySpent round1;
  ASSERT_TRUE(privacy::AddRound(plan, &round1).ok());
  v1::PrivacySpent round2 = round1;
  ASSERT_TRUE(privacy::AddRound(plan, &round2).ok());
  const std::string published = PrivacyBlock(task, 0, "", {{"EE", round1}});
  v1::UpdateHeader header;
  *header.mutable_privacy() = round2;
  EXPECT_TRUE(CheckPrivacyReport(task, "EE", header, &plan, published).ok());
  // Round 1's report again: not forward.
  *header.mutable_privacy() = round1;
  EXPECT_THAT(std::string(CheckPrivacyReport(task, "EE", header, &plan, published).message()),
              HasSubstr("a report only moves forward"));
  // A report that forgets a published segment (a fresh history).
  privacy::DpSgdPlan other = plan;
  other.noise_multiplier = 2.0;
  v1::PrivacySpent fresh;
  ASSERT_TRUE(privacy::AddRound(other, &fresh).ok());
  ASSERT_TRUE(privacy::AddRound(other, &fresh).ok());
  *header.mutable_privacy() = fresh;
  EXPECT_THAT(std::string(CheckPrivacyReport(task, "EE", header, &other, published).message()),
              HasSubstr("a report only moves forward"));
  // A last round other than the plan for the node's rows.
  *header.mutable_privacy() = round2;
  EXPECT_THAT(std::string(CheckPrivacyReport(task, "EE", header, &other, published).message()),
              HasSubstr("is not this round's plan"));
  // Aborted rounds in between are fine: more rounds and steps than published.
  v1::PrivacySpent round3 = round2;
  ASSERT_TRUE(privacy::AddRound(plan, &round3).ok());
  *header.mutable_privacy() = round3;
  EXPECT_TRUE(CheckPrivacyReport(task, "EE", header, &plan, published).ok());
  // Each round holds a step of the statistics query (sampling rate 1, the
  // task's σ): a report that leaves it out understates ε and is refused.
  EXPECT_EQ(round3.stats_noise_multiplier(), 20);
  ASSERT_EQ(round3.segments_size(), 2);
  EXPECT_EQ(round3.segments(1).sampling_rate(), 1);
  EXPECT_EQ(round3.segments(1).steps(), 3u);
  privacy::DpSgdPlan no_statistics = plan;
  no_statistics.stats_noise_multiplier = 0;
  v1::PrivacySpent without;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(privacy::AddRound(no_statistics, &without).ok());
  EXPECT_LT(without.epsilon(), round3.epsilon());
  *header.mutable_privacy() = without;
  EXPECT_THAT(std::string(CheckPrivacyReport(task, "EE", header, &plan, published).message()),
              HasSubstr("its statistics query (noise multiplier 0) is not the task's (20"));
}

// A report that claims the round but not all of its steps: each (q, σ) must
// hold what is published plus this round's increment, and the statistics
// query a step per round, also when both share one segment.
TEST(PrivacyReportTest, EveryRoundAddsItsStepsAndItsStatisticsQuery) {
  const v1::PrivacyConfig task = DpTask();
  const privacy::DpSgdPlan plan = PlanOf(task);
  v1::PrivacySpent round1;
  ASSERT_TRUE(privacy::AddRound(plan, &round1).ok());
  const std::string published = PrivacyBlock(task, 0, "", {{"EE", round1}});
  v1::PrivacySpent round2 = round1;
  ASSERT_TRUE(privacy::AddRound(plan, &round2).ok());
  v1::UpdateHeader header;
  *header.mutable_privacy() = round2;
  ASSERT_TRUE(CheckPrivacyReport(task, "EE", header, &plan, published).ok());
  auto reepsilon = [](v1::PrivacySpent* p) {
    p->set_epsilon(*privacy::EpsilonOfSegments(*p, p->delta()));
  };
  // Round 2 without its statistics step.
  v1::PrivacySpent cheat = round2;
  cheat.mutable_segments(1)->set_steps(1);
  reepsilon(&cheat);
  EXPECT_LT(cheat.epsilon(), round2.epsilon());
  *header.mutable_privacy() = cheat;
  EXPECT_THAT(std::string(CheckPrivacyReport(task, "EE", header, &plan, published).message()),
              HasSubstr("2 rounds but 1 steps of the statistics query"));
  // Round 2 with 10 DP-SGD steps instead of 50.
  cheat = round2;
  cheat.mutable_segments(0)->set_steps(60);
  reepsilon(&cheat);
  *header.mutable_privacy() = cheat;
  EXPECT_THAT(std::string(CheckPrivacyReport(task, "EE", header, &plan, published).message()),
              HasSubstr("60 steps at sampling rate 0.02, noise multiplier 1, but what is "
                        "published and this round's plan make at least 100"));
  // A node whose DP-SGD is itself (q 1, σ 20): one segment holds both, and
  // must grow by steps + 1 a round.
  privacy::DpSgdPlan merged = plan;
  merged.sampling_rate = 1;
  merged.noise_multiplier = task.stats_noise_multiplier();
  merged.steps = 20;
  v1::PrivacySpent m1;
  ASSERT_TRUE(privacy::AddRound(merged, &m1).ok());
  ASSERT_EQ(m1.segments_size(), 1);
  EXPECT_EQ(m1.segments(0).steps(), 21u);
  const std::string published_m = PrivacyBlock(task, 0, "", {{"LV", m1}});
  v1::PrivacySpent m2 = m1;
  ASSERT_TRUE(privacy::AddRound(merged, &m2).ok());
  *header.mutable_privacy() = m2;
  EXPECT_TRUE(CheckPrivacyReport(task, "LV", header, &merged, published_m).ok());
  m2.mutable_segments(0)->set_steps(41);  // the statistics step left out
  reepsilon(&m2);
  *header.mutable_privacy() = m2;
  EXPECT_THAT(std::string(CheckPrivacyReport(task, "LV", header, &merged, published_m).message()),
              HasSubstr("make at least 42"));
}

TEST(PrivacyBlockTest, EveryAdministrationThatContributedStaysWithItsLatestFigure) {
  const v1::PrivacyConfig task = DpTask();
  const std::string v0 = PrivacyBlock(task, 0, "", {});
  EXPECT_EQ(json::parse(v0)["epsilon"], 0.0);
  EXPECT_EQ(json::parse(v0)["mechanism"], "dp-sgd");

  const std::string v1_block = PrivacyBlock(
      task, 0, v0, {{"EE", Spent(0.02, 1.0, 50, 1)}, {"FI", Spent(0.01, 1.0, 100, 1)}});
  // Round 2 without FI: FI's figure stays, EE's grows.
  const v1::PrivacySpent ee2 = Spent(0.02, 1.0, 100, 2);
  const json v2 = json::parse(PrivacyBlock(task, 1, v1_block, {{"EE", ee2}}));
  ASSERT_TRUE(v2["administrations"].contains("FI"));
  EXPECT_EQ(v2["administrations"]["EE"]["rounds"], 2);
  EXPECT_DOUBLE_EQ(v2["delta"].get<double>(), 1e-5);
  EXPECT_DOUBLE_EQ(v2["clip_norm"].get<double>(), 1.0);
  // The block's figures recomputed independently from its own segments.
  double largest = 0;
  for (const auto& [code, entry] : v2["administrations"].items()) {
    v1::PrivacySpent s;
    for (const auto& seg : entry["segments"]) {
      auto* out = s.add_segments();
      out->set_sampling_rate(seg["sampling_rate"].get<double>());
      out->set_noise_multiplier(seg["noise_multiplier"].get<double>());
      out->set_steps(seg["steps"].get<uint64_t>());
    }
    const double eps = *privacy::EpsilonOfSegments(s, 1e-5);
    EXPECT_NEAR(entry["epsilon"].get<double>(), eps, 1e-12 * eps) << code;
    largest = std::max(largest, eps);
  }
  EXPECT_NEAR(v2["epsilon"].get<double>(), largest, 1e-12 * largest);
  EXPECT_NEAR(largest, ee2.epsilon(), 1e-12 * largest);
}

TEST(PrivacyBlockTest, AVersionBuiltOnANonPrivateOneClaimsNoEpsilon) {
  const std::string plain = PrivacyBlock(v1::PrivacyConfig(), 0, "", {});
  EXPECT_EQ(json::parse(plain)["mechanism"], "none");
  const json dp = json::parse(PrivacyBlock(DpTask(), 4, plain, {{"EE", Spent(0.02, 1, 50, 1)}}));
  EXPECT_TRUE(dp["epsilon"].is_null());
  EXPECT_THAT(dp["caveat"].get<std::string>(), HasSubstr("built on version 4"));
  // And the caveat is inherited by every later version.
  const json later = json::parse(PrivacyBlock(DpTask(), 5, dp.dump(), {}));
  EXPECT_TRUE(later["epsilon"].is_null());
  EXPECT_THAT(later["caveat"].get<std::string>(), HasSubstr("built on version 4"));
}

}  // namespace
}  // namespace fedcustoms::coordinator
