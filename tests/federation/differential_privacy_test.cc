// Differential privacy through the whole federation: real coordinator and
// nodes over mutual TLS on loopback, DP-SGD at each node, the spent ε in each
// signed manifest (checked against an independent recomputation and against
// each node's own record), and a node whose budget is spent that stops
// training but keeps evaluating.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <future>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/config/proto_json.h"
#include "common/io/atomic_file.h"
#include "common/manifest/model_manifest.h"
#include "common/privacy/privacy_config.h"
#include "coordinator/config/coordinator_config.h"
#include "coordinator/coordinator.h"
#include "coordinator/registry/model_registry.h"
#include "node/config/node_config.h"
#include "node/node.h"
#include "node/privacy/privacy_budget.h"
#include "tests/support/federation_dir.h"
#include "tests/support/federation_suite.h"
#include "tests/support/loopback_federation.h"
#include "tools/demo/child_process.h"
#include "tools/demo/dev_federation.h"

namespace fedcustoms {
namespace {
using json = nlohmann::json;

class DifferentialPrivacyTest : public testing_support::FederationSuite<DifferentialPrivacyTest> {
 protected:
  static void SetUpTestSuite() {
    MakeRoot(testing_support::MakeFederationWithData("dp", {"EE", "FI", "LV"}, {"EE", "FI", "LV"},
                                                     3000, 5));
  }

  v1::CoordinatorConfig CoordinatorConfig(const std::string& name, v1::AggregationMode mode,
                                          uint32_t rounds, uint32_t min_nodes) {
    v1::CoordinatorConfig c = testing_support::LoopbackCoordinatorConfig(
        *root_ + "/pki", *root_ + "/" + name, *root_ + "/data/EE/declarations.schema.json", mode);
    v1::TaskConfig* t = c.mutable_tasks(0);
    t->set_min_nodes(min_nodes);
    t->set_rounds(rounds);
    t->set_round_deadline_seconds(120);
    t->set_eval_deadline_seconds(60);
    t->set_gather_seconds(0);
    t->set_max_train_rows(10000);  // δ = 1e-5
    t->mutable_training()->set_batch_size(128);
    t->mutable_training()->set_learning_rate(0.005);
    v1::PrivacyConfig* p = t->mutable_privacy();
    p->set_mode(v1::PrivacyConfig::DP_SGD);
    p->set_noise_multiplier(1.0);
    p->set_clip_norm(1.0);
    auto config = coordinator::FinalizeCoordinatorConfig(c, "test", "");
    EXPECT_TRUE(config.ok()) << config.status();
    return *config;
  }

  std::unique_ptr<coordinator::Coordinator> Start(const v1::CoordinatorConfig& config) {
    auto coordinator = coordinator::Coordinator::Create(config);
    EXPECT_TRUE(coordinator.ok()) << coordinator.status();
    EXPECT_TRUE((*coordinator)->Start().ok());
    return *std::move(coordinator);
  }

  v1::NodeConfig NodeConfigFor(const std::string& admin, int port, const std::string& name,
                               v1::AggregationMode consent) {
    v1::NodeConfig n = testing_support::LoopbackNodeConfig(*root_, admin, port, name, "risk");
    n.set_aggregation_mode(consent);
    auto config = node::FinalizeNodeConfig(n, "test", "");
    EXPECT_TRUE(config.ok()) << config.status();
    return *config;
  }

  static void RunToEnd(std::vector<std::unique_ptr<node::Node>>& nodes) {
    std::vector<std::future<absl::Status>> runs;
    for (auto& n : nodes) {
      runs.push_back(std::async(std::launch::async, [&n] { return n->Run(); }));
    }
    for (auto& run : runs) {
      ASSERT_EQ(run.wait_for(std::chrono::minutes(5)), std::future_status::ready);
      const absl::Status status = run.get();
      EXPECT_TRUE(status.ok()) << status;
    }
  }

  static json PrivacyOf(coordinator::Coordinator& c, uint64_t version) {
    auto signed_manifest = c.registry().ReadManifest("risk", version);
    EXPECT_TRUE(signed_manifest.ok()) << signed_manifest.status();
    auto m = manifest::ParseManifest(signed_manifest->json, "test");
    EXPECT_TRUE(m.ok()) << m.status();
    return json::parse(m->privacy_json);
  }

  static json MetricsOf(coordinator::Coordinator& c, uint64_t version) {
    auto signed_manifest = c.registry().ReadManifest("risk", version);
    auto m = manifest::ParseManifest(signed_manifest->json, "test");
    return json::parse(m->metrics_json);
  }

  // ε of a manifest entry's segments, recomputed here.
  static double Recomputed(const json& entry, double delta) {
    v1::PrivacySpent s;
    for (const json& seg : entry.at("segments")) {
      v1::PrivacySpent::Segment* out = s.add_segments();
      out->set_sampling_rate(seg.at("sampling_rate").get<double>());
      out->set_noise_multiplier(seg.at("noise_multiplier").get<double>());
      out->set_steps(seg.at("steps").get<uint64_t>());
    }
    return *privacy::EpsilonOfSegments(s, delta);
  }
};

TEST_F(DifferentialPrivacyTest, SecureRoundsPublishEachAdministrationsEpsilonInTheSignedManifest) {
  auto coordinator = Start(CoordinatorConfig("secure", v1::SECURE, 2, 3));
  std::vector<std::unique_ptr<node::Node>> nodes;
  for (const std::string admin : {"EE", "FI", "LV"}) {
    auto n = node::Node::Create(NodeConfigFor(admin, coordinator->Port(), "secure", v1::SECURE));
    ASSERT_TRUE(n.ok()) << n.status();
    nodes.push_back(*std::move(n));
  }
  uint64_t train_rows = 0;
  for (const auto& n : nodes) train_rows += n->learner().data_summary().train_rows();
  RunToEnd(nodes);
  ASSERT_EQ(coordinator->registry().Versions("risk"), (std::vector<uint64_t>{0, 1, 2}));
  EXPECT_EQ(PrivacyOf(*coordinator, 0)["epsilon"], 0.0);
  double previous = 0;
  for (uint64_t v : {1, 2}) {
    const json p = PrivacyOf(*coordinator, v);
    EXPECT_EQ(p["mechanism"], "dp-sgd");
    EXPECT_DOUBLE_EQ(p["delta"].get<double>(), 1e-5);
    EXPECT_DOUBLE_EQ(p["clip_norm"].get<double>(), 1.0);
    double largest = 0;
    for (const std::string admin : {"EE", "FI", "LV"}) {
      const json& entry = p["administrations"][admin];
      EXPECT_EQ(entry["rounds"], v) << admin;
      const double eps = Recomputed(entry, 1e-5);
      EXPECT_NEAR(entry["epsilon"].get<double>(), eps, 1e-12 * eps) << admin;
      EXPECT_DOUBLE_EQ(entry["segments"][0]["noise_multiplier"].get<double>(), 1.0);
      largest = std::max(largest, eps);
      // What the node recorded before its update left is what was published.
      if (v == 2) {
        auto budget = node::PrivacyBudget::Open(absl::StrCat(*root_, "/secure/node-", admin),
                                                "risk", v1::NodePrivacyConfig(), 1);
        ASSERT_TRUE(budget.ok()) << budget.status();
        EXPECT_DOUBLE_EQ(budget->spent().epsilon(), entry["epsilon"].get<double>()) << admin;
      }
    }
    EXPECT_NEAR(p["epsilon"].get<double>(), largest, 1e-12 * largest);
    EXPECT_GT(largest, previous) << "a second round spends more";
    previous = largest;
    const json metrics = MetricsOf(*coordinator, v);
    EXPECT_TRUE(metrics.contains("pr_auc")) << metrics.dump();
  }
  // Each administration weighs its declared training rows under DP-SGD too.
  auto m = manifest::ParseManifest(coordinator->registry().ReadManifest("risk", 2)->json, "test");
  EXPECT_EQ(m->total_samples, train_rows);
  // The statistics query is stated and counted: a step of sampling rate 1
  // per round in every administration's segments.
  const json p = PrivacyOf(*coordinator, 2);
  EXPECT_EQ(p["statistics"]["noise_multiplier"], 20.0);
  EXPECT_EQ(p["statistics"]["numeric_range"], json({0.0, 30.0}));
  for (const auto& [admin, entry] : p["administrations"].items()) {
    ASSERT_EQ(entry["segments"].size(), 2u) << admin;
    EXPECT_EQ(entry["segments"][1]["sampling_rate"], 1.0) << admin;
    EXPECT_EQ(entry["segments"][1]["steps"], 2u) << admin;
  }
}

TEST_F(DifferentialPrivacyTest, ANodeWhoseBudgetIsSpentStopsTrainingAndKeepsEvaluating) {
  v1::CoordinatorConfig config = CoordinatorConfig("budget", v1::TRUSTED, 3, 2);
  // Two nodes open a round: wait a moment for the third, so round 1 has all.
  config.mutable_tasks(0)->set_gather_seconds(2);
  auto coordinator = Start(config);
  const int port = coordinator->Port();
  // LV accepts one round's ε and not two.
  v1::NodeConfig lv = NodeConfigFor("LV", port, "budget", v1::TRUSTED);
  uint64_t lv_rows = 0;
  {
    auto probe = node::Node::Create(lv);
    ASSERT_TRUE(probe.ok()) << probe.status();
    lv_rows = (*probe)->learner().data_summary().train_rows();
  }
  auto plan = privacy::PlanDpSgd(config.tasks(0).privacy(), config.tasks(0).training(), lv_rows);
  ASSERT_TRUE(plan.ok()) << plan.status();
  // A round's spending: its DP-SGD steps and its statistics query.
  v1::PrivacySpent rounds;
  ASSERT_TRUE(privacy::AddRound(*plan, &rounds).ok());
  const double one = rounds.epsilon();
  ASSERT_TRUE(privacy::AddRound(*plan, &rounds).ok());
  const double two = rounds.epsilon();
  EXPECT_GT(one, privacy::EpsilonOf(plan->sampling_rate, 1.0, plan->steps, 1e-5,
                                    privacy::kProductOrders, privacy::kProductConversion)
                     ->epsilon)
      << "the statistics query is counted";
  lv.mutable_privacy()->set_max_epsilon((one + two) / 2);

  std::vector<std::unique_ptr<node::Node>> nodes;
  uint64_t contributors_holdout = 0;
  for (const std::string admin : {"EE", "FI"}) {
    auto n = node::Node::Create(NodeConfigFor(admin, port, "budget", v1::TRUSTED));
    ASSERT_TRUE(n.ok()) << n.status();
    contributors_holdout += (*n)->learner().data_summary().holdout_rows();
    nodes.push_back(*std::move(n));
  }
  auto lv_node = node::Node::Create(lv);
  ASSERT_TRUE(lv_node.ok()) << lv_node.status();
  const uint64_t lv_holdout = (*lv_node)->learner().data_summary().holdout_rows();
  nodes.push_back(*std::move(lv_node));
  RunToEnd(nodes);

  ASSERT_EQ(coordinator->registry().Versions("risk"), (std::vector<uint64_t>{0, 1, 2, 3}));
  const json p = PrivacyOf(*coordinator, 3);
  EXPECT_EQ(p["administrations"]["EE"]["rounds"], 3);
  EXPECT_EQ(p["administrations"]["FI"]["rounds"], 3);
  EXPECT_EQ(p["administrations"]["LV"]["rounds"], 1) << "LV trained once, then declined";
  EXPECT_NEAR(p["administrations"]["LV"]["epsilon"].get<double>(), one, 1e-12 * one);
  EXPECT_LE(p["administrations"]["LV"]["epsilon"].get<double>(), (one + two) / 2);
  // The published metrics are the contributors' (LV's, only in round 1)...
  EXPECT_EQ(std::stoull(MetricsOf(*coordinator, 1).value("examples", std::string("0"))),
            contributors_holdout + lv_holdout);
  for (uint64_t v : {2, 3}) {
    EXPECT_EQ(std::stoull(MetricsOf(*coordinator, v).value("examples", std::string("0"))),
              contributors_holdout)
        << "v" << v;
  }
  // ...and LV kept evaluating every candidate on its hold-out.
  auto lv_metrics = io::ReadFile(*root_ + "/budget/node-LV/metrics.jsonl");
  ASSERT_TRUE(lv_metrics.ok()) << lv_metrics.status();
  for (uint64_t v : {1, 2, 3}) {
    EXPECT_THAT(*lv_metrics, ::testing::HasSubstr(absl::StrCat("\"version\":", v, ",")))
        << "v" << v;
  }
  // The operators' status says the same, and why LV no longer trains.
  const v1::TaskStatus status = coordinator->runner("risk")->Status();
  std::map<std::string, v1::NodePrivacyStatus> by_node;
  for (const v1::NodePrivacyStatus& s : status.privacy()) by_node[s.node()] = s;
  ASSERT_EQ(by_node.size(), 3u);
  EXPECT_NEAR(by_node["LV"].epsilon_spent(), one, 1e-12 * one);
  EXPECT_EQ(by_node["EE"].rounds(), 3u);
  EXPECT_THAT(by_node["LV"].training_declined(), ::testing::HasSubstr("privacy budget spent"));
  EXPECT_TRUE(by_node["EE"].training_declined().empty());
  EXPECT_DOUBLE_EQ(by_node["EE"].delta(), 1e-5);
  EXPECT_FALSE(by_node["EE"].has_epsilon_left()) << "the task fixes sigma, it has no target";
  // A restart of LV keeps its spent budget, and it declines at once.
  auto restarted =
      node::PrivacyBudget::Open(*root_ + "/budget/node-LV", "risk", lv.privacy(), lv_rows);
  ASSERT_TRUE(restarted.ok());
  EXPECT_NEAR(restarted->spent().epsilon(), one, 1e-12 * one);
  EXPECT_THAT(restarted->DeclineReason(), ::testing::HasSubstr("privacy budget spent"));
}

// DP composes with the server strategies and, in mode TRUSTED, with robust
// aggregation: each is post-processing of the nodes' privatized updates, so
// every version states the same per-administration ε as plain FedAvg and
// the federation learns (finite metrics, a model that moves).
TEST_F(DifferentialPrivacyTest, ComposesWithEveryServerStrategyAndRobustAggregation) {
  struct Case {
    const char* name;
    v1::AggregationMode mode;
    v1::ServerStrategyConfig::Kind strategy;
    v1::RobustAggregationConfig::Kind robust;
  };
  const std::vector<Case> cases = {
      {"fedadam", v1::SECURE, v1::ServerStrategyConfig::FEDADAM,
       v1::RobustAggregationConfig::KIND_UNSPECIFIED},
      {"fedyogi", v1::SECURE, v1::ServerStrategyConfig::FEDYOGI,
       v1::RobustAggregationConfig::KIND_UNSPECIFIED},
      {"median", v1::TRUSTED, v1::ServerStrategyConfig::FEDAVGM,
       v1::RobustAggregationConfig::MEDIAN},
      {"trimmed", v1::TRUSTED, v1::ServerStrategyConfig::FEDAVG,
       v1::RobustAggregationConfig::TRIMMED_MEAN},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    v1::CoordinatorConfig config = CoordinatorConfig(c.name, c.mode, 2, 3);
    config.mutable_tasks(0)->mutable_strategy()->set_kind(c.strategy);
    if (c.robust != v1::RobustAggregationConfig::KIND_UNSPECIFIED) {
      config.mutable_tasks(0)->mutable_robust_aggregation()->set_kind(c.robust);
    }
    auto finalized = coordinator::FinalizeCoordinatorConfig(config, "test", "");
    ASSERT_TRUE(finalized.ok()) << finalized.status();
    auto coordinator = Start(*finalized);
    std::vector<std::unique_ptr<node::Node>> nodes;
    for (const std::string admin : {"EE", "FI", "LV"}) {
      auto n = node::Node::Create(NodeConfigFor(admin, coordinator->Port(), c.name, c.mode));
      ASSERT_TRUE(n.ok()) << n.status();
      nodes.push_back(*std::move(n));
    }
    RunToEnd(nodes);
    ASSERT_EQ(coordinator->registry().Versions("risk"), (std::vector<uint64_t>{0, 1, 2}));
    const json p = PrivacyOf(*coordinator, 2);
    ASSERT_EQ(p["administrations"].size(), 3u) << p.dump();
    for (const auto& [admin, entry] : p["administrations"].items()) {
      EXPECT_EQ(entry["rounds"], 2) << admin;
      const double eps = Recomputed(entry, 1e-5);
      EXPECT_NEAR(entry["epsilon"].get<double>(), eps, 1e-12 * eps) << admin;
    }
    const json metrics = MetricsOf(*coordinator, 2);
    EXPECT_TRUE(metrics.contains("pr_auc")) << metrics.dump();
    auto v1_weights = coordinator->registry().LoadWeights("risk", 1);
    auto v2_weights = coordinator->registry().LoadWeights("risk", 2);
    ASSERT_TRUE(v1_weights.ok() && v2_weights.ok());
    bool moved = false;
    for (size_t i = 0; i < v1_weights->size(); ++i) {
      moved = moved || !torch::equal((*v1_weights)[i].second, (*v2_weights)[i].second);
    }
    EXPECT_TRUE(moved) << "round 2 changed nothing";
  }
}

// The same budget with real processes: fedcustoms-coordinator and three
// fedcustoms-node processes (mode TRUSTED, so two trainers can carry on).
// LV's process trains once, then declines and keeps evaluating; what it
// spent is on disk when the process has exited, and a node opened on the
// same work directory afterwards (a restart) declines at once.
TEST_F(DifferentialPrivacyTest, ANodeProcessStopsAtItsBudgetAndItsRecordOutlivesIt) {
  v1::CoordinatorConfig config = CoordinatorConfig("processes", v1::TRUSTED, 3, 2);
  config.mutable_tasks(0)->set_gather_seconds(2);
  const std::string dir = *root_ + "/processes";
  std::filesystem::create_directories(dir + "/logs");
  config.set_port_file(dir + "/state/port");
  auto coordinator_json = config::PrintProtoJson(config);
  ASSERT_TRUE(coordinator_json.ok()) << coordinator_json.status();
  ASSERT_TRUE(io::WriteFileAtomically(dir + "/coordinator.json", *coordinator_json).ok());
  auto coordinator = tools::StartCoordinatorProcess(dir + "/coordinator.json", dir + "/state/port",
                                                    dir + "/logs/coordinator.log");
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  const int port = std::stoi(coordinator->port);

  v1::NodeConfig lv = NodeConfigFor("LV", port, "processes", v1::TRUSTED);
  auto probe = node::Node::Create(lv);
  ASSERT_TRUE(probe.ok()) << probe.status();
  const uint64_t lv_rows = (*probe)->learner().data_summary().train_rows();
  probe->reset();  // its data and work directory are the process's now
  auto plan = privacy::PlanDpSgd(config.tasks(0).privacy(), config.tasks(0).training(), lv_rows);
  ASSERT_TRUE(plan.ok()) << plan.status();
  v1::PrivacySpent rounds;
  ASSERT_TRUE(privacy::AddRound(*plan, &rounds).ok());
  const double one = rounds.epsilon();
  ASSERT_TRUE(privacy::AddRound(*plan, &rounds).ok());
  lv.mutable_privacy()->set_max_epsilon((one + rounds.epsilon()) / 2);

  std::vector<std::unique_ptr<tools::ChildProcess>> nodes;
  for (const std::string admin : {"EE", "FI", "LV"}) {
    v1::NodeConfig n = admin == "LV" ? lv : NodeConfigFor(admin, port, "processes", v1::TRUSTED);
    n.set_exit_when_finished(true);
    auto text = config::PrintProtoJson(n);
    ASSERT_TRUE(text.ok()) << text.status();
    const std::string path = absl::StrCat(dir, "/node-", admin, ".json");
    ASSERT_TRUE(io::WriteFileAtomically(path, *text).ok());
    auto process =
        tools::ChildProcess::Spawn({tools::ExecutableDir() + "/fedcustoms-node", "--config", path},
                                   absl::StrCat(dir, "/logs/node-", admin, ".log"));
    ASSERT_TRUE(process.ok()) << process.status();
    nodes.push_back(*std::move(process));
  }
  for (auto& n : nodes) {
    const std::optional<int> code = n->WaitFor(std::chrono::minutes(5));
    ASSERT_TRUE(code.has_value()) << "a node did not finish; see " << n->log_path();
    EXPECT_EQ(*code, 0) << "see " << n->log_path();
  }
  coordinator->process->Signal(SIGTERM);
  EXPECT_EQ(coordinator->process->WaitFor(std::chrono::seconds(60)).value_or(-1), 0);

  // The LV process said why it stopped training, and kept evaluating.
  auto log = io::ReadFile(dir + "/logs/node-LV.log");
  ASSERT_TRUE(log.ok());
  EXPECT_THAT(*log, ::testing::HasSubstr("privacy budget spent"));
  auto registry = coordinator::ModelRegistry::Open(dir + "/registry", nullptr, nullptr);
  ASSERT_TRUE(registry.ok()) << registry.status();
  ASSERT_EQ((*registry)->Versions("risk"), (std::vector<uint64_t>{0, 1, 2, 3}));
  auto manifest = manifest::ParseManifest((*registry)->ReadManifest("risk", 3)->json, "test");
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  const json p = json::parse(manifest->privacy_json);
  EXPECT_EQ(p["administrations"]["EE"]["rounds"], 3);
  EXPECT_EQ(p["administrations"]["LV"]["rounds"], 1);
  EXPECT_NEAR(p["administrations"]["LV"]["epsilon"].get<double>(), one, 1e-12 * one);
  // Its record on disk, read by a restart: the same ε, and it declines.
  auto restarted = node::PrivacyBudget::Open(lv.work_dir(), "risk", lv.privacy(), lv_rows);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  EXPECT_NEAR(restarted->spent().epsilon(), one, 1e-12 * one);
  EXPECT_THAT(restarted->DeclineReason(), ::testing::HasSubstr("privacy budget spent"));
}

}  // namespace
}  // namespace fedcustoms
