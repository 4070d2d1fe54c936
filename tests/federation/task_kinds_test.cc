// The anomaly (and, once wired, X-ray) tasks through the same federation as
// the risk task: real coordinator and nodes over mutual TLS on loopback, mode
// secure, registry, ledger and the nodes' evaluation.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/manifest/model_manifest.h"
#include "coordinator/config/coordinator_config.h"
#include "coordinator/coordinator.h"
#include "coordinator/registry/model_registry.h"
#include "node/config/node_config.h"
#include "node/node.h"
#include "tests/support/federation_dir.h"
#include "tests/support/federation_suite.h"
#include "tests/support/loopback_federation.h"

namespace fedcustoms {
namespace {
namespace fs = std::filesystem;
using ::testing::HasSubstr;

class TaskKindsTest : public testing_support::FederationSuite<TaskKindsTest> {
 protected:
  static void SetUpTestSuite() {
    MakeRoot(testing_support::MakeFederationWithData("task_kinds", {"EE", "FI", "LV"},
                                                     {"EE", "FI", "LV"}, 6000, 5));
  }
  std::unique_ptr<coordinator::Coordinator> StartCoordinator(const std::string& name,
                                                             const std::string& task,
                                                             uint32_t rounds,
                                                             uint32_t min_nodes = 3) {
    v1::CoordinatorConfig c = testing_support::LoopbackCoordinatorConfig(
        *root_ + "/pki", *root_ + "/" + name, *root_ + "/data/EE/declarations.schema.json",
        v1::SECURE);
    v1::TaskConfig* t = c.mutable_tasks(0);
    t->set_name(task);
    t->set_min_nodes(min_nodes);
    t->set_rounds(rounds);
    t->set_round_deadline_seconds(120);
    t->set_eval_deadline_seconds(60);
    t->set_gather_seconds(0);
    t->mutable_training()->set_local_epochs(2);
    t->mutable_training()->set_batch_size(128);
    t->mutable_training()->set_learning_rate(0.005);
    auto config = coordinator::FinalizeCoordinatorConfig(c, "test", "");
    EXPECT_TRUE(config.ok()) << config.status();
    auto coordinator = coordinator::Coordinator::Create(*config);
    EXPECT_TRUE(coordinator.ok()) << coordinator.status();
    EXPECT_TRUE((*coordinator)->Start().ok());
    return *std::move(coordinator);
  }

  v1::NodeConfig NodeConfigFor(const std::string& admin, int port, const std::string& name,
                               const std::string& task) {
    const v1::NodeConfig n = testing_support::LoopbackNodeConfig(*root_, admin, port, name, task);
    auto config = node::FinalizeNodeConfig(n, "test", "");
    EXPECT_TRUE(config.ok()) << config.status();
    return *config;
  }
};

TEST_F(TaskKindsTest, AnomalyTaskRunsSecureRoundsAndFlagsOnTheHoldout) {
  auto coordinator = StartCoordinator("anomaly", "anomaly", 2);
  const int port = coordinator->Port();
  ASSERT_GT(port, 0);
  std::vector<std::unique_ptr<node::Node>> nodes;
  uint64_t total_train_rows = 0;
  for (const std::string admin : {"EE", "FI", "LV"}) {
    auto n = node::Node::Create(NodeConfigFor(admin, port, "anomaly", "anomaly"));
    ASSERT_TRUE(n.ok()) << n.status();
    EXPECT_EQ((*n)->learner().kind(), v1::TASK_ANOMALY);
    total_train_rows += (*n)->learner().data_summary().train_rows();
    nodes.push_back(*std::move(n));
  }
  std::vector<std::future<absl::Status>> runs;
  for (auto& n : nodes) {
    runs.push_back(std::async(std::launch::async, [&n] { return n->Run(); }));
  }
  for (auto& run : runs) {
    ASSERT_EQ(run.wait_for(std::chrono::minutes(5)), std::future_status::ready);
    EXPECT_TRUE(run.get().ok());
  }
  EXPECT_EQ(coordinator->registry().Versions("anomaly"), (std::vector<uint64_t>{0, 1, 2}));
  double first_loss = 0;
  for (uint64_t v : {1, 2}) {
    auto signed_manifest = coordinator->registry().ReadManifest("anomaly", v);
    ASSERT_TRUE(signed_manifest.ok()) << signed_manifest.status();
    auto m = manifest::ParseManifest(signed_manifest->json, "test");
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ(m->architecture, "anomaly_autoencoder");
    EXPECT_EQ(m->aggregation_mode, "secure");
    EXPECT_EQ(m->total_samples, total_train_rows);
    EXPECT_THAT(m->hyperparameters_json, HasSubstr("flag_quantile"));
    const nlohmann::json metrics = nlohmann::json::parse(m->metrics_json);
    // Each node flags about 1 % of its hold-out (the threshold is its own
    // training split's 99th percentile); summed over the three nodes.
    const uint64_t examples = std::stoull(metrics.value("examples", std::string("0")));
    const uint64_t flagged = std::stoull(metrics.value("flagged", std::string("0")));
    EXPECT_GT(examples, 1000u);
    EXPECT_GT(flagged, 0u);
    EXPECT_LT(flagged, examples / 10);
    // No ROC-AUC floor here: the synthetic frauds are mostly risky routes and
    // traders that look normal, so reconstruction error ranks them barely
    // above chance (about 0.53, as a hand-made value/mass residual does). That
    // the score finds broken patterns without labels is tested on data built
    // for it (AnomalyTrainer.TrainingWithoutLabelsRanksBrokenPatternsHigh).
    if (v == 1) first_loss = metrics.value("loss", 0.0);
    if (v == 2) {
      EXPECT_LT(metrics.value("loss", 0.0), first_loss) << "reconstruction improves";
    }
  }
}

TEST_F(TaskKindsTest, NodeOfAnotherKindStopsWithoutTraining) {
  auto coordinator = StartCoordinator("mismatch", "anomaly", 1);
  // EE calls the task "anomaly" but its config says it is a risk task: same
  // input (schema), another model. It must stop rather than train.
  v1::NodeConfig config = NodeConfigFor("EE", coordinator->Port(), "mismatch", "anomaly");
  config.set_task_kind(v1::TASK_RISK);
  auto wrong = node::Node::Create(config);
  ASSERT_TRUE(wrong.ok()) << wrong.status();
  EXPECT_EQ((*wrong)->learner().kind(), v1::TASK_RISK);
  auto right = node::Node::Create(NodeConfigFor("FI", coordinator->Port(), "mismatch", "anomaly"));
  ASSERT_TRUE(right.ok()) << right.status();
  auto also_right =
      node::Node::Create(NodeConfigFor("LV", coordinator->Port(), "mismatch", "anomaly"));
  ASSERT_TRUE(also_right.ok()) << also_right.status();
  auto right_run = std::async(std::launch::async, [&] { return (*right)->Run(); });
  auto also_right_run = std::async(std::launch::async, [&] { return (*also_right)->Run(); });
  auto wrong_run = std::async(std::launch::async, [&] { return (*wrong)->Run(); });
  ASSERT_EQ(wrong_run.wait_for(std::chrono::minutes(3)), std::future_status::ready);
  const absl::Status status = wrong_run.get();
  EXPECT_TRUE(absl::IsFailedPrecondition(status)) << status;
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("has kind anomaly, but this node's config gives it kind risk"));
  (*right)->Stop();
  (*also_right)->Stop();
  right_run.wait();
  also_right_run.wait();
  // Nothing from EE reached a version: the round could not complete.
  EXPECT_EQ(coordinator->registry().Versions("anomaly"), (std::vector<uint64_t>{0}));
}

}  // namespace
}  // namespace fedcustoms
