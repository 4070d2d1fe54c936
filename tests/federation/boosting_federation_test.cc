// Boosted trees through the federation: real coordinator and nodes over
// mutual TLS on loopback, one boosting session per round, the ensemble
// published in the registry and evaluated by the nodes. The session's trees
// must be exactly the trees of the pooled rows (trees::TrainBoostedTrees over
// the same three parties, whose sums it takes in the same fixed point),
// whether the vectors arrive masked (mode SECURE) or plain (mode TRUSTED).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/manifest/model_manifest.h"
#include "common/models/boosted_trees_state.h"
#include "common/trees/boosted_trees_trainer.h"
#include "coordinator/config/coordinator_config.h"
#include "coordinator/coordinator.h"
#include "node/config/node_config.h"
#include "node/learner/declaration_learner.h"
#include "node/node.h"
#include "tests/support/federation_dir.h"
#include "tests/support/federation_suite.h"
#include "tests/support/loopback_federation.h"
#include "tests/support/run_nodes.h"

namespace fedcustoms {
namespace {

const std::vector<std::string> kAdmins = {"EE", "FI", "LV"};

class BoostingFederationTest : public testing_support::FederationSuite<BoostingFederationTest> {
 protected:
  static void SetUpTestSuite() {
    MakeRoot(testing_support::MakeFederationWithData("boosting", kAdmins, kAdmins, 9000, 11));
  }

  static v1::BoostedTreesConfig Trees() {
    v1::BoostedTreesConfig t;
    t.set_trees(20);
    t.set_max_depth(4);
    t.set_early_stopping_trees(0);
    t.set_step_deadline_seconds(60);
    return t;
  }

  std::unique_ptr<coordinator::Coordinator> StartCoordinator(const std::string& name,
                                                             v1::AggregationMode mode) {
    v1::CoordinatorConfig c = testing_support::LoopbackCoordinatorConfig(
        *root_ + "/pki", *root_ + "/" + name, *root_ + "/data/EE/declarations.schema.json", mode);
    v1::TaskConfig* t = c.mutable_tasks(0);
    t->set_min_nodes(3);
    t->set_rounds(1);
    t->set_eval_deadline_seconds(60);
    t->set_gather_seconds(0);
    t->mutable_model()->set_kind(v1::RiskModelConfig::BOOSTED_TREES);
    *t->mutable_model()->mutable_trees() = Trees();
    auto config = coordinator::FinalizeCoordinatorConfig(c, "test", "");
    EXPECT_TRUE(config.ok()) << config.status();
    auto coordinator = coordinator::Coordinator::Create(*config);
    EXPECT_TRUE(coordinator.ok()) << coordinator.status();
    EXPECT_TRUE((*coordinator)->Start().ok());
    return *std::move(coordinator);
  }

  std::vector<std::unique_ptr<node::Node>> MakeNodes(int port, const std::string& name,
                                                     v1::AggregationMode mode) {
    std::vector<std::unique_ptr<node::Node>> nodes;
    for (const std::string& admin : kAdmins) {
      v1::NodeConfig n = testing_support::LoopbackNodeConfig(*root_, admin, port, name, "risk");
      n.set_aggregation_mode(mode);
      // The comparison with the pooled trees needs every cell in the sums.
      n.mutable_secure_aggregation()->set_boosting_min_cell_rows(1);
      auto config = node::FinalizeNodeConfig(n, "test", "");
      EXPECT_TRUE(config.ok()) << config.status();
      auto made = node::Node::Create(*config);
      EXPECT_TRUE(made.ok()) << made.status();
      nodes.push_back(*std::move(made));
    }
    return nodes;
  }

  // The trees of the three administrations' rows grown in this process.
  static trees::TreeEnsemble PooledTrees(const std::vector<std::unique_ptr<node::Node>>& nodes) {
    std::vector<std::unique_ptr<trees::BoostingRows>> rows;
    std::vector<trees::BoostingRows*> parties;
    for (const auto& n : nodes) {
      const auto& data = dynamic_cast<const node::DeclarationLearner&>(n->learner()).data();
      rows.push_back(std::make_unique<trees::BoostingRows>(data.table, data.split.train,
                                                           data.split.validation));
      parties.push_back(rows.back().get());
    }
    trees::BoostingParams params;
    params.trees = Trees().trees();
    params.tree.max_depth = Trees().max_depth();
    params.early_stopping_trees = 0;
    auto result = trees::TrainBoostedTrees(parties, params);
    EXPECT_TRUE(result.ok()) << result.status();
    return result->ensemble;
  }

  // Runs one session in `mode` and checks what it published.
  void RunSession(const std::string& name, v1::AggregationMode mode) {
    auto coordinator = StartCoordinator(name, mode);
    auto nodes = MakeNodes(coordinator->Port(), name, mode);
    const trees::TreeEnsemble pooled = PooledTrees(nodes);
    testing_support::RunNodesToEnd(nodes, std::chrono::seconds(300), name);
    ASSERT_EQ(coordinator->registry().Versions("risk"), (std::vector<uint64_t>{0, 1}));
    auto signed_manifest = coordinator->registry().ReadManifest("risk", 1);
    ASSERT_TRUE(signed_manifest.ok()) << signed_manifest.status();
    auto m = manifest::ParseManifest(signed_manifest->json, "test");
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ(m->architecture, "boosted_trees");
    EXPECT_EQ(m->aggregation_mode, mode == v1::SECURE ? "secure" : "trusted");
    EXPECT_EQ(m->contributing_nodes, 3u);
    const nlohmann::json metrics = nlohmann::json::parse(m->metrics_json);
    EXPECT_GT(metrics.value("roc_auc", 0.0), 0.6) << m->metrics_json;

    auto state = coordinator->registry().LoadWeights("risk", 1);
    ASSERT_TRUE(state.ok()) << state.status();
    auto federated = models::BoostedTreesFromState(*state);
    ASSERT_TRUE(federated.ok()) << federated.status();
    ASSERT_EQ(federated->trees.size(), pooled.trees.size());
    EXPECT_EQ(federated->base_score, pooled.base_score);
    EXPECT_EQ(federated->bins.numeric_edges, pooled.bins.numeric_edges);
    for (size_t t = 0; t < pooled.trees.size(); ++t) {
      const auto& a = federated->trees[t].nodes;
      const auto& b = pooled.trees[t].nodes;
      ASSERT_EQ(a.size(), b.size()) << "tree " << t;
      for (size_t k = 0; k < a.size(); ++k) {
        EXPECT_EQ(a[k].left, b[k].left) << "tree " << t << " node " << k;
        EXPECT_EQ(a[k].feature, b[k].feature) << "tree " << t << " node " << k;
        EXPECT_EQ(a[k].threshold_bin, b[k].threshold_bin) << "tree " << t << " node " << k;
        EXPECT_EQ(a[k].left_bins, b[k].left_bins) << "tree " << t << " node " << k;
        // The same fixed-point sums, whichever member arrived first.
        EXPECT_EQ(a[k].value, b[k].value) << "tree " << t << " node " << k;
      }
    }
  }
};

TEST_F(BoostingFederationTest, SecureSessionGrowsThePooledTrees) {
  RunSession("secure", v1::SECURE);
}

TEST_F(BoostingFederationTest, TrustedSessionGrowsThePooledTrees) {
  RunSession("trusted", v1::TRUSTED);
}

}  // namespace
}  // namespace fedcustoms
