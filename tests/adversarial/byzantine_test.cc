// Robust aggregation against Byzantine nodes over the real federation: eight
// honest administrations (real nodes training on their synthetic data) and
// two attackers whose "update" sends the learned weights to -3 times their
// value (Δ = -4w; the input standardization is left alone, which would make
// the model NaN outright), claiming a large sample count. The plain weighted mean is
// wrecked; median, trimmed mean and Krum keep the mean hold-out PR-AUC the
// honest nodes report close to the honest-only federation's.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/pki/dev_pki.h"
#include "common/synth/declarations_synth.h"
#include "common/tensor/named_tensors.h"
#include "common/tensor/tensor_codec.h"
#include "coordinator/config/coordinator_config.h"
#include "coordinator/coordinator.h"
#include "node/client/coordinator_client.h"
#include "node/config/node_config.h"
#include "node/node.h"
#include "tests/support/federation_dir.h"
#include "tests/support/federation_suite.h"
#include "tests/support/loopback_federation.h"
#include "tests/support/run_nodes.h"

namespace fedcustoms {
namespace {
namespace fs = std::filesystem;

const std::vector<std::string> kHonest = {"AT", "BE", "DE", "DK", "EE", "ES", "FI", "LV"};
const std::vector<std::string> kAttackers = {"PL", "SE"};
constexpr uint32_t kRounds = 5;
constexpr uint64_t kAttackerRows = 5000;

class ByzantineTest : public testing_support::FederationSuite<ByzantineTest> {
 protected:
  static void SetUpTestSuite() {
    std::vector<std::string> admins = kHonest;
    admins.insert(admins.end(), kAttackers.begin(), kAttackers.end());
    MakeRoot(testing_support::MakeFederationWithData("byzantine", admins, kHonest, 3000, 11));
  }
  // An attacker: joins claiming kAttackerRows rows, and in every round sends
  // Δ = -4w for every learned tensor of the global model it was assigned.
  static void RunAttacker(const std::string& admin, int port,
                          const coordinator::ModelRegistry& registry,
                          const std::string& schema_hash, const std::atomic<bool>& stop) {
    v1::NodeConfig config;
    config.set_coordinator_address(absl::StrCat("localhost:", port));
    *config.mutable_tls() = Identity(admin);
    auto client = node::CoordinatorClient::Create(config);
    ASSERT_TRUE(client.ok()) << client.status();
    v1::JoinRequest join;
    join.add_tasks("risk");
    join.set_feature_schema_hash(schema_hash);
    join.mutable_data()->set_train_rows(kAttackerRows);
    ASSERT_TRUE((*client)->Join(join).ok());
    while (!stop) {
      auto a = (*client)->GetTask("risk", std::chrono::seconds(1));
      if (!a.ok()) continue;
      if (a->kind() == v1::TaskAssignment::TRAIN) {
        auto global = registry.LoadWeights("risk", a->model_version());
        ASSERT_TRUE(global.ok()) << global.status();
        tensor::NamedTensors update;
        for (const auto& [name, w] : *global) {
          if (!tensor::IsAggregatable(w)) continue;
          const bool standardization = name.rfind("standardize.", 0) == 0;
          update.emplace_back(name, standardization ? torch::zeros_like(w, torch::kFloat32)
                                                    : (w * -4.0f).to(torch::kFloat32));
        }
        tensor::TensorEncoder encoder(update);
        v1::UpdateHeader header;
        header.set_task("risk");
        header.set_round_id(a->round_id());
        header.set_model_version(a->model_version());
        header.set_sample_count(kAttackerRows);
        header.set_train_loss(0.1);
        EXPECT_TRUE((*client)->UploadUpdate(header, encoder).ok());
      } else if (a->kind() == v1::TaskAssignment::EVALUATE) {
        v1::ReportMetricsRequest report;  // negligible weight in the mean
        report.set_task("risk");
        report.set_round_id(a->round_id());
        report.set_model_version(a->model_version());
        report.mutable_metrics()->set_pr_auc(0.5);
        report.mutable_metrics()->set_roc_auc(0.5);
        report.mutable_metrics()->set_examples(1);
        EXPECT_TRUE((*client)->ReportMetrics(report).ok());
      } else if (a->kind() == v1::TaskAssignment::FINISHED) {
        return;
      }
    }
  }

  // Runs kRounds rounds in mode TRUSTED with `rule` and returns the mean
  // hold-out PR-AUC of the last round.
  double Federate(const std::string& name, v1::RobustAggregationConfig::Kind rule,
                  bool with_attackers) {
    v1::CoordinatorConfig c = testing_support::LoopbackCoordinatorConfig(
        *root_ + "/pki", *root_ + "/" + name, *root_ + "/data/EE/declarations.schema.json",
        v1::TRUSTED);
    v1::TaskConfig* t = c.mutable_tasks(0);
    t->set_min_nodes(
        static_cast<uint32_t>(kHonest.size() + (with_attackers ? kAttackers.size() : 0)));
    t->set_rounds(kRounds);
    t->set_gather_seconds(0);
    t->set_eval_deadline_seconds(60);
    t->mutable_training()->set_local_epochs(2);
    t->mutable_training()->set_batch_size(128);
    t->mutable_training()->set_learning_rate(0.01);
    t->mutable_robust_aggregation()->set_kind(rule);
    t->mutable_robust_aggregation()->set_trim_fraction(0.2);
    t->mutable_robust_aggregation()->set_byzantine_nodes(2);
    auto config = coordinator::FinalizeCoordinatorConfig(c, "test", "");
    EXPECT_TRUE(config.ok()) << config.status();
    auto coordinator = coordinator::Coordinator::Create(*config);
    EXPECT_TRUE(coordinator.ok()) << coordinator.status();
    EXPECT_TRUE((*coordinator)->Start().ok());
    const int port = (*coordinator)->Port();

    std::vector<std::unique_ptr<node::Node>> nodes;
    for (const std::string& admin : kHonest) {
      v1::NodeConfig n;
      n.set_coordinator_address(absl::StrCat("localhost:", port));
      *n.mutable_tls() = Identity(admin);
      n.set_coordinator_public_key(*root_ + "/pki/coordinator-signing.pub");
      n.set_task("risk");
      n.set_data_file(absl::StrCat(*root_, "/data/", admin, "/declarations.csv"));
      n.set_schema_file(absl::StrCat(*root_, "/data/", admin, "/declarations.schema.json"));
      n.set_work_dir(absl::StrCat(*root_, "/", name, "/node-", admin));
      n.set_exit_when_finished(true);
      n.set_aggregation_mode(v1::TRUSTED);
      auto finalized = node::FinalizeNodeConfig(n, "test", "");
      EXPECT_TRUE(finalized.ok()) << finalized.status();
      auto created = node::Node::Create(*finalized);
      EXPECT_TRUE(created.ok()) << created.status();
      nodes.push_back(*std::move(created));
    }
    std::atomic<bool> stop{false};
    std::vector<std::thread> attackers;
    if (with_attackers) {
      for (const std::string& admin : kAttackers) {
        attackers.emplace_back(RunAttacker, admin, port, std::cref((*coordinator)->registry()),
                               (*coordinator)->runner("risk")->feature_schema_hash(),
                               std::cref(stop));
      }
    }
    testing_support::RunNodesToEnd(nodes, std::chrono::minutes(4), name);
    stop = true;
    for (std::thread& a : attackers) a.join();
    auto rounds = (*coordinator)->ledger().List("risk");
    EXPECT_TRUE(rounds.ok());
    if (!rounds.ok() || rounds->size() < kRounds) return -1;
    for (const auto& r : *rounds) EXPECT_EQ(r.status, "completed") << name << ": " << r.reason;
    return nlohmann::json::parse(rounds->back().metrics_json).value("pr_auc", -1.0);
  }
};

TEST_F(ByzantineTest, RobustRulesKeepTheModelThatTheMeanLoses) {
  using Kind = v1::RobustAggregationConfig;
  const double honest = Federate("honest", Kind::MEAN, false);
  const double mean = Federate("mean", Kind::MEAN, true);
  const double median = Federate("median", Kind::MEDIAN, true);
  const double trimmed = Federate("trimmed", Kind::TRIMMED_MEAN, true);
  const double krum = Federate("krum", Kind::MULTI_KRUM, true);
  std::printf(
      "hold-out PR-AUC after %u rounds: honest-only mean %.4f | with 2 attackers: "
      "mean %.4f, median %.4f, trimmed mean %.4f, multi-krum %.4f\n",
      kRounds, honest, mean, median, trimmed, krum);
  // Measured (2-core VM): honest 0.156; attacked mean 0.025; median 0.118,
  // trimmed mean 0.112, multi-krum 0.140 (the robust rules also count each
  // update once, not by its samples, which costs a little without attack).
  ASSERT_GT(honest, 0.1);       // base rate about 0.02
  EXPECT_LT(mean, honest / 2);  // the attack works on the plain mean
  for (double robust : {median, trimmed, krum}) {
    EXPECT_GT(robust, honest - 0.06);  // the stated tolerance
    EXPECT_GT(robust, 2 * mean);
  }
}

}  // namespace
}  // namespace fedcustoms
