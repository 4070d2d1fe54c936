// Robust aggregation rules (median, trimmed mean, Krum, Multi-Krum, norm
// bounding) against direct per-coordinate computations in double.
#include "coordinator/aggregation/robust_aggregator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>

#include "coordinator/config/coordinator_config.h"
#include "coordinator/service/peer_call_limiter.h"
#include "tests/support/loopback_federation.h"

namespace fedcustoms::coordinator {
namespace {

using Kind = v1::RobustAggregationConfig;

tensor::NamedTensors Shapes() {
  return {{"a.weight", torch::zeros({6, 5})}, {"b.bias", torch::zeros({7})}};
}

// Update i: honest ones scatter around a common direction; `outlier` ones are
// far away (scaled by 50 and sign-flipped).
tensor::NamedTensors UpdateOf(int i, bool outlier = false) {
  torch::manual_seed(1000 + i);
  const float s = outlier ? -50.0f : 1.0f;
  return {{"a.weight", (torch::ones({6, 5}) * 0.3f + torch::randn({6, 5}) * 0.05f) * s},
          {"b.bias", (torch::ones({7}) * -0.1f + torch::randn({7}) * 0.05f) * s}};
}

std::vector<double> Flat(const tensor::NamedTensors& t) {
  std::vector<double> out;
  for (const auto& [name, x] : t) {
    at::Tensor d = x.to(torch::kFloat64).contiguous().view(-1);
    out.insert(out.end(), d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
  }
  return out;
}

v1::RobustAggregationConfig Config(Kind::Kind kind) {
  v1::RobustAggregationConfig c;
  c.set_kind(kind);
  c.set_trim_fraction(0.2);
  c.set_byzantine_nodes(2);
  return c;
}

struct Round {
  std::vector<std::vector<double>> updates;
  std::vector<uint64_t> samples;
};

absl::StatusOr<std::vector<double>> Combine(const v1::RobustAggregationConfig& config,
                                            const std::vector<tensor::NamedTensors>& updates,
                                            Round* round = nullptr,
                                            std::vector<uint32_t>* chosen = nullptr) {
  RobustAggregator aggregator(config, UpdateSpec::Of(Shapes()),
                              static_cast<uint32_t>(updates.size()));
  for (size_t i = 0; i < updates.size(); ++i) {
    const uint64_t samples = 100 * (i + 1);
    EXPECT_TRUE(aggregator.Add(InMemoryTensors(updates[i]), samples).ok());
    if (round != nullptr) {
      round->updates.push_back(Flat(updates[i]));
      round->samples.push_back(samples);
    }
  }
  absl::StatusOr<at::Tensor> out = aggregator.Aggregate();
  if (!out.ok()) return out.status();
  if (chosen != nullptr) *chosen = aggregator.chosen();
  at::Tensor d = out->to(torch::kFloat64);
  return std::vector<double>(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
}

std::vector<double> Column(const Round& r, size_t j) {
  std::vector<double> c;
  for (const auto& u : r.updates) c.push_back(u[j]);
  std::sort(c.begin(), c.end());
  return c;
}

TEST(RobustAggregator, MedianOfOddAndEvenCountsIsThePerCoordinateMedian) {
  for (int n : {5, 6, 17, 32, 40, 100, 128, 129, 130}) {  // network up to 128, selection above
    std::vector<tensor::NamedTensors> updates;
    for (int i = 0; i < n; ++i) updates.push_back(UpdateOf(i, i == 0));
    Round round;
    auto got = Combine(Config(Kind::MEDIAN), updates, &round);
    ASSERT_TRUE(got.ok()) << got.status();
    for (size_t j = 0; j < got->size(); ++j) {
      const std::vector<double> c = Column(round, j);
      const double median = n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
      ASSERT_NEAR((*got)[j], median, 1e-6) << "n=" << n << " j=" << j;
    }
  }
}

TEST(RobustAggregator, TrimmedMeanDropsTheExtremesOfEachCoordinate) {
  // Sorting network (10, 128) and per-coordinate sort (129): trim 0.2 drops
  // floor(0.2 n) values at each end.
  for (int n : {10, 128, 129}) {
    std::vector<tensor::NamedTensors> updates;
    for (int i = 0; i < n; ++i) updates.push_back(UpdateOf(i, i < 2));
    Round round;
    auto got = Combine(Config(Kind::TRIMMED_MEAN), updates, &round);
    ASSERT_TRUE(got.ok()) << got.status();
    const int trim = n / 5;
    for (size_t j = 0; j < got->size(); ++j) {
      const std::vector<double> c = Column(round, j);
      const double mean = std::accumulate(c.begin() + trim, c.end() - trim, 0.0) / (n - 2 * trim);
      ASSERT_NEAR((*got)[j], mean, 1e-5) << "n=" << n << " j=" << j;
    }
  }
}

// Krum written out: scores from pairwise squared distances.
std::vector<double> ReferenceKrumScores(const Round& r, int f) {
  const size_t n = r.updates.size();
  std::vector<double> scores;
  for (size_t i = 0; i < n; ++i) {
    std::vector<double> d;
    for (size_t j = 0; j < n; ++j) {
      if (j == i) continue;
      double s = 0;
      for (size_t k = 0; k < r.updates[i].size(); ++k) {
        s += (r.updates[i][k] - r.updates[j][k]) * (r.updates[i][k] - r.updates[j][k]);
      }
      d.push_back(s);
    }
    std::sort(d.begin(), d.end());
    scores.push_back(std::accumulate(d.begin(), d.begin() + (n - f - 2), 0.0));
  }
  return scores;
}

TEST(RobustAggregator, KrumAndMultiKrumChooseTheUpdatesWithTheBestScores) {
  std::vector<tensor::NamedTensors> updates;
  for (int i = 0; i < 9; ++i) updates.push_back(UpdateOf(i, i == 3 || i == 7));
  Round round;
  std::vector<uint32_t> chosen;
  auto krum = Combine(Config(Kind::KRUM), updates, &round, &chosen);
  ASSERT_TRUE(krum.ok()) << krum.status();
  const std::vector<double> scores = ReferenceKrumScores(round, 2);
  const size_t best = std::min_element(scores.begin(), scores.end()) - scores.begin();
  ASSERT_EQ(chosen, std::vector<uint32_t>{static_cast<uint32_t>(best)});
  for (size_t j = 0; j < krum->size(); ++j) ASSERT_NEAR((*krum)[j], round.updates[best][j], 1e-6);

  v1::RobustAggregationConfig multi = Config(Kind::MULTI_KRUM);
  multi.set_multi_krum_m(4);
  auto mk = Combine(multi, updates, nullptr, &chosen);
  ASSERT_TRUE(mk.ok()) << mk.status();
  std::vector<uint32_t> order(9);
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(),
                   [&](uint32_t a, uint32_t b) { return scores[a] < scores[b]; });
  std::vector<uint32_t> expected(order.begin(), order.begin() + 4);
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(chosen, expected);
  for (uint32_t outlier : {3u, 7u}) {
    EXPECT_EQ(std::count(chosen.begin(), chosen.end(), outlier), 0) << outlier;
  }
  for (size_t j = 0; j < mk->size(); ++j) {
    double mean = 0;
    for (uint32_t i : expected) mean += round.updates[i][j] / 4;
    ASSERT_NEAR((*mk)[j], mean, 1e-6);
  }
}

TEST(RobustAggregator, KrumRefusesTooFewUpdatesForItsF) {
  std::vector<tensor::NamedTensors> updates;
  for (int i = 0; i < 6; ++i) updates.push_back(UpdateOf(i));
  auto got = Combine(Config(Kind::KRUM), updates);  // f = 2 needs n > 6
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().message(),
            "KRUM with byzantine_nodes 2 needs more than 6 updates; "
            "the round has 6");
}

TEST(RobustAggregator, NormBoundScalesLargeUpdatesBeforeTheWeightedMean) {
  std::vector<tensor::NamedTensors> updates = {UpdateOf(0), UpdateOf(1, true), UpdateOf(2)};
  v1::RobustAggregationConfig config = Config(Kind::MEAN);
  config.set_norm_bound(1.0);
  Round round;
  auto got = Combine(config, updates, &round);
  ASSERT_TRUE(got.ok()) << got.status();
  const double total = 100 + 200 + 300;
  for (size_t j = 0; j < got->size(); ++j) {
    double expected = 0;
    for (size_t i = 0; i < 3; ++i) {
      double norm = 0;
      for (double v : round.updates[i]) norm += v * v;
      norm = std::sqrt(norm);
      expected += round.updates[i][j] * std::min(1.0, 1.0 / norm) * round.samples[i] / total;
    }
    ASSERT_NEAR((*got)[j], expected, 1e-6) << j;
  }
}

TEST(RobustAggregator, MoreUpdatesThanSelectedNodesAreRefused) {
  RobustAggregator aggregator(Config(Kind::MEDIAN), UpdateSpec::Of(Shapes()), 1);
  ASSERT_TRUE(aggregator.Add(InMemoryTensors(UpdateOf(0)), 10).ok());
  EXPECT_EQ(aggregator.Add(InMemoryTensors(UpdateOf(1)), 10).code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(RobustAggregator::MemoryBytes(UpdateSpec::Of(Shapes()), 10), 10u * 37 * 4);
}

// Finalizing checks fields only; none of these files needs to exist.
v1::CoordinatorConfig MinimalConfig(v1::AggregationMode mode) {
  return testing_support::LoopbackCoordinatorConfig("pki", "dir", "schema.json", mode);
}

TEST(RobustAggregator, ConfigRefusesRulesThatNeedIndividualUpdatesInSecureMode) {
  v1::CoordinatorConfig c = MinimalConfig(v1::SECURE);
  c.mutable_tasks(0)->mutable_robust_aggregation()->set_kind(Kind::MEDIAN);
  auto bad = FinalizeCoordinatorConfig(c, "coordinator.json", "");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "coordinator.json: tasks[0].robust_aggregation: MEDIAN needs each node's update, "
            "which the coordinator never sees in aggregation_mode SECURE (it learns only the "
            "sum); choose aggregation_mode TRUSTED explicitly to use it");

  c = MinimalConfig(v1::TRUSTED);
  c.mutable_tasks(0)->set_min_nodes(4);
  c.mutable_tasks(0)->mutable_robust_aggregation()->set_kind(Kind::KRUM);
  bad = FinalizeCoordinatorConfig(c, "coordinator.json", "");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "coordinator.json: tasks[0].min_nodes: 4 is too few for KRUM with byzantine_nodes 1: "
            "it needs more than 4 updates");
  c.mutable_tasks(0)->set_min_nodes(5);
  auto ok = FinalizeCoordinatorConfig(c, "coordinator.json", "");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->tasks(0).robust_aggregation().max_memory_mib(), 4096u);
}

// The limits that keep a coordinator alive under hostile peers: a stalled
// stream is cut after stream_idle_seconds (default 60), and sample counts stay
// where float sums are exact.
TEST(CoordinatorConfigLimits, StreamIdleAndSampleCountBoundsNameTheField) {
  v1::CoordinatorConfig c = MinimalConfig(v1::SECURE);
  auto ok = FinalizeCoordinatorConfig(c, "coordinator.json", "");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->stream_idle_seconds(), 60u);

  c.set_stream_idle_seconds(3601);
  auto bad = FinalizeCoordinatorConfig(c, "coordinator.json", "");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(),
            "coordinator.json: stream_idle_seconds: must be in 1..3600, found 3601");

  c.set_stream_idle_seconds(5);
  c.mutable_tasks(0)->set_max_sample_count(uint64_t{1} << 63);
  bad = FinalizeCoordinatorConfig(c, "coordinator.json", "");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "coordinator.json: tasks[0].max_sample_count: must be at most 2^53 "
            "(9007199254740992), found 9223372036854775808");
}

// Secure rounds: at least three nodes, and a threshold of 2/3 by default (the
// floor nodes hold to by default).
TEST(CoordinatorConfigLimits, SecureRoundsNeedThreeNodesAndTwoThirdsByDefault) {
  v1::CoordinatorConfig c = MinimalConfig(v1::SECURE);
  c.mutable_tasks(0)->clear_min_nodes();
  auto ok = FinalizeCoordinatorConfig(c, "coordinator.json", "");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->tasks(0).min_nodes(), 3u);
  EXPECT_DOUBLE_EQ(ok->tasks(0).secure_aggregation().threshold_fraction(), 2.0 / 3.0);
  c.mutable_tasks(0)->set_min_nodes(2);
  auto two = FinalizeCoordinatorConfig(c, "coordinator.json", "");
  ASSERT_FALSE(two.ok());
  EXPECT_THAT(std::string(two.status().message()),
              ::testing::StartsWith("coordinator.json: tasks[0].min_nodes: 2 is below 3 in mode "
                                    "SECURE: with two nodes each learns the other's update"));
  v1::CoordinatorConfig trusted = MinimalConfig(v1::TRUSTED);
  trusted.mutable_tasks(0)->clear_min_nodes();
  auto trusted_ok = FinalizeCoordinatorConfig(trusted, "coordinator.json", "");
  ASSERT_TRUE(trusted_ok.ok()) << trusted_ok.status();
  EXPECT_EQ(trusted_ok->tasks(0).min_nodes(), 2u);
}

// Boosted trees take neither DP-SGD nor a robust rule over updates: a config
// asking for them is refused, naming the field.
TEST(CoordinatorConfigLimits, BoostedTreesRefuseDpSgdAndRobustRules) {
  v1::CoordinatorConfig c = MinimalConfig(v1::TRUSTED);
  c.mutable_tasks(0)->mutable_model()->set_kind(v1::RiskModelConfig::BOOSTED_TREES);
  auto ok = FinalizeCoordinatorConfig(c, "coordinator.json", "");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->tasks(0).model().trees().trees(), 100u);
  v1::CoordinatorConfig dp = c;
  dp.mutable_tasks(0)->mutable_privacy()->set_mode(v1::PrivacyConfig::DP_SGD);
  dp.mutable_tasks(0)->mutable_privacy()->set_noise_multiplier(1.0);
  auto refused = FinalizeCoordinatorConfig(dp, "coordinator.json", "");
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.status().message()),
              ::testing::HasSubstr("tasks[0].privacy.mode: DP_SGD does not apply to model kind "
                                   "BOOSTED_TREES"));
  v1::CoordinatorConfig median = c;
  median.mutable_tasks(0)->mutable_robust_aggregation()->set_kind(
      v1::RobustAggregationConfig::MEDIAN);
  refused = FinalizeCoordinatorConfig(median, "coordinator.json", "");
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.status().message()),
              ::testing::HasSubstr("tasks[0].robust_aggregation.kind: MEDIAN does not apply"));
  v1::CoordinatorConfig mlp_settings = c;
  mlp_settings.mutable_tasks(0)->mutable_model()->add_hidden_units(8);
  refused = FinalizeCoordinatorConfig(mlp_settings, "coordinator.json", "");
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.status().message()),
              ::testing::HasSubstr("kind BOOSTED_TREES has no hidden_units"));
  for (auto [field, set] :
       std::vector<std::pair<std::string, std::function<void(v1::BoostedTreesConfig*)>>>{
           {"trees.max_depth: 9 is not in 1..8", [](auto* t) { t->set_max_depth(9); }},
           {"trees.max_bins: 300 is not in 2..256", [](auto* t) { t->set_max_bins(300); }},
           {"trees.positive_weight: -1 is not in (0, 1000]",
            [](auto* t) { t->set_positive_weight(-1); }}}) {
    v1::CoordinatorConfig out_of_range = c;
    set(out_of_range.mutable_tasks(0)->mutable_model()->mutable_trees());
    refused = FinalizeCoordinatorConfig(out_of_range, "coordinator.json", "");
    ASSERT_FALSE(refused.ok()) << field;
    EXPECT_THAT(std::string(refused.status().message()), ::testing::HasSubstr(field));
  }
}

// The caps that keep one node from claiming the federation's weight, and the
// publish gate: defaults, and each bad value named by its field.
TEST(CoordinatorConfigLimits, RowCapsAndPublishGateNameTheField) {
  v1::CoordinatorConfig c = MinimalConfig(v1::SECURE);
  auto ok = FinalizeCoordinatorConfig(c, "coordinator.json", "");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->tasks(0).max_train_rows(), 10000000u);
  EXPECT_EQ(ok->tasks(0).max_nodes(), 100u);
  EXPECT_EQ(ok->tasks(0).publish_gate().max_relative_change(), 50);
  EXPECT_EQ(ok->tasks(0).publish_gate().min_reports(), ok->tasks(0).min_nodes());
  EXPECT_FALSE(ok->tasks(0).publish_gate().has_max_pr_auc_drop());

  auto message = [](const v1::CoordinatorConfig& config) {
    auto bad = FinalizeCoordinatorConfig(config, "coordinator.json", "");
    EXPECT_FALSE(bad.ok());
    if (!bad.ok()) EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
    return bad.ok() ? std::string("accepted") : std::string(bad.status().message());
  };
  v1::CoordinatorConfig rows = c;
  rows.mutable_tasks(0)->set_max_train_rows(50000000);  // x 100 nodes > 2^32
  EXPECT_EQ(message(rows),
            "coordinator.json: tasks[0].max_train_rows: 50000000 x max_nodes 100 exceeds 2^32 - "
            "1, the largest total weight of a secure round; lower either (at most 42949672 rows "
            "for 100 nodes)");
  rows.mutable_tasks(0)->set_max_nodes(50);  // 2.5e9 fits
  EXPECT_TRUE(FinalizeCoordinatorConfig(rows, "coordinator.json", "").ok());
  rows.set_aggregation_mode(v1::TRUSTED);  // W is no word in mode TRUSTED
  rows.mutable_tasks(0)->set_max_nodes(1000);
  EXPECT_TRUE(FinalizeCoordinatorConfig(rows, "coordinator.json", "").ok());

  v1::CoordinatorConfig nodes = c;
  nodes.mutable_tasks(0)->set_min_nodes(5);
  nodes.mutable_tasks(0)->set_max_nodes(4);
  EXPECT_EQ(message(nodes),
            "coordinator.json: tasks[0].max_nodes: must be in min_nodes..1000 (5..1000), found 4");

  v1::CoordinatorConfig by_node = c;
  (*by_node.mutable_tasks(0)->mutable_max_train_rows_by_node())["EE"] = 20000000;
  EXPECT_EQ(message(by_node),
            "coordinator.json: tasks[0].max_train_rows_by_node[\"EE\"]: must be in "
            "1..max_train_rows (10000000), found 20000000");

  v1::CoordinatorConfig gate = c;
  gate.mutable_tasks(0)->mutable_publish_gate()->set_max_relative_change(-1);
  EXPECT_EQ(message(gate),
            "coordinator.json: tasks[0].publish_gate.max_relative_change: must be a positive "
            "number, found -1");
  gate = c;
  gate.mutable_tasks(0)->mutable_publish_gate()->set_max_pr_auc_drop(1.5);
  EXPECT_EQ(
      message(gate),
      "coordinator.json: tasks[0].publish_gate.max_pr_auc_drop: must be in [0, 1], found 1.5");
}

TEST(CoordinatorConfigLimits, ServerLimitsNameTheField) {
  v1::CoordinatorConfig c = MinimalConfig(v1::SECURE);
  auto ok = FinalizeCoordinatorConfig(c, "coordinator.json", "");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->limits().max_threads(), 256u);
  EXPECT_EQ(ok->limits().max_streams_per_connection(), 32u);
  EXPECT_EQ(ok->limits().max_calls_per_peer(), 8u);
  EXPECT_FALSE(ok->enable_reflection());

  c.mutable_limits()->set_max_threads(8);
  auto bad = FinalizeCoordinatorConfig(c, "coordinator.json", "");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "coordinator.json: limits.max_threads: must be in 16..4096, found 8");
  c.mutable_limits()->set_max_threads(64);
  c.mutable_limits()->set_max_calls_per_peer(1);
  bad = FinalizeCoordinatorConfig(c, "coordinator.json", "");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "coordinator.json: limits.max_calls_per_peer: must be in 2..1000, found 1");
  c.mutable_limits()->set_max_calls_per_peer(2);
  c.mutable_limits()->set_max_streams_per_connection(5000);
  bad = FinalizeCoordinatorConfig(c, "coordinator.json", "");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "coordinator.json: limits.max_streams_per_connection: must be in 1..1000, found 5000");
}

TEST(PeerCallLimiter, EachPeerHasItsOwnBoundAndTicketsGiveTheSlotBack) {
  PeerCallLimiter limiter(2);
  auto a = limiter.Acquire("node SE", "NodeService.GetTask");
  auto b = limiter.Acquire("node SE", "NodeService.UploadUpdate");
  ASSERT_TRUE(a.ok() && b.ok());
  auto c = limiter.Acquire("node SE", "NodeService.UploadUpdate");
  EXPECT_EQ(c.status(),
            absl::ResourceExhaustedError("NodeService.UploadUpdate: node SE already has 2 calls in "
                                         "progress (limits.max_calls_per_peer); retry when one "
                                         "ends"));
  EXPECT_TRUE(limiter.Acquire("node FI", "NodeService.GetTask").ok());  // others unaffected
  EXPECT_TRUE(limiter.Acquire("analyst SE", "AnalystService.ListModels").ok());  // nor roles
  EXPECT_EQ(limiter.InProgress("node SE"), 2u);
  {
    PeerCallLimiter::Ticket moved = *std::move(a);  // moving keeps one slot
    EXPECT_EQ(limiter.InProgress("node SE"), 2u);
  }
  EXPECT_EQ(limiter.InProgress("node SE"), 1u);
  EXPECT_TRUE(limiter.Acquire("node SE", "NodeService.GetTask").ok());
  EXPECT_EQ(limiter.InProgress("node SE"), 1u);  // that ticket went at the end of the statement
}

}  // namespace
}  // namespace fedcustoms::coordinator
