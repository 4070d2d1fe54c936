// A coordinator that cheats in a boosting session, over the real protocol
// (mutual TLS on loopback, the real nodes): it shows one member another
// step than the others, or drops a member from one member's list. What it
// gets is noise or nothing, and nothing is published
// (docs/threat_model.md, "Boosted trees").
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "common/models/boosted_trees_state.h"
#include "common/tensor/tensor_codec.h"
#include "coordinator/config/coordinator_config.h"
#include "coordinator/coordinator.h"
#include "node/config/node_config.h"
#include "node/node.h"
#include "tests/support/federation_dir.h"
#include "tests/support/federation_suite.h"
#include "tests/support/loopback_federation.h"
#include "tests/support/run_nodes.h"

namespace fedcustoms {
namespace {

using ::testing::HasSubstr;

const std::vector<std::string> kAdmins = {"EE", "FI", "LV"};

class BoostingCoordinatorTest : public testing_support::FederationSuite<BoostingCoordinatorTest> {
 protected:
  static void SetUpTestSuite() {
    MakeRoot(testing_support::MakeFederationWithData("boosting_lies", kAdmins, kAdmins, 3000, 5));
  }

  // Runs a secure boosting task whose assignments go through `tap` until the
  // ledger holds an aborted round; returns the ledger.
  std::vector<coordinator::RoundRecord> RunUntilAborted(
      const std::string& run, std::function<void(const std::string&, v1::TaskAssignment&)> tap) {
    v1::CoordinatorConfig c = testing_support::LoopbackCoordinatorConfig(
        *root_ + "/pki", *root_ + "/" + run, *root_ + "/data/EE/declarations.schema.json",
        v1::SECURE);
    v1::TaskConfig* t = c.mutable_tasks(0);
    t->set_min_nodes(3);
    t->set_rounds(1);
    t->set_gather_seconds(0);
    t->mutable_model()->set_kind(v1::RiskModelConfig::BOOSTED_TREES);
    t->mutable_model()->mutable_trees()->set_trees(3);
    t->mutable_model()->mutable_trees()->set_max_depth(3);
    t->mutable_model()->mutable_trees()->set_step_deadline_seconds(4);
    auto config = coordinator::FinalizeCoordinatorConfig(c, "test", "");
    EXPECT_TRUE(config.ok()) << config.status();
    auto coordinator = coordinator::Coordinator::Create(*config, {}, std::move(tap));
    EXPECT_TRUE(coordinator.ok()) << coordinator.status();
    EXPECT_TRUE((*coordinator)->Start().ok());
    std::vector<std::unique_ptr<node::Node>> nodes;
    for (const std::string& admin : kAdmins) {
      v1::NodeConfig n =
          testing_support::LoopbackNodeConfig(*root_, admin, (*coordinator)->Port(), run, "risk");
      auto finalized = node::FinalizeNodeConfig(n, "test", "");
      EXPECT_TRUE(finalized.ok()) << finalized.status();
      auto created = node::Node::Create(*finalized);
      EXPECT_TRUE(created.ok()) << created.status();
      nodes.push_back(*std::move(created));
    }
    auto ledger = [&] {
      auto rounds = (*coordinator)->ledger().List("risk");
      return rounds.ok() ? *rounds : std::vector<coordinator::RoundRecord>{};
    };
    testing_support::RunNodesUntil(
        nodes, std::chrono::minutes(2), run,
        [&] {
          for (const auto& r : ledger()) {
            if (r.status == "aborted") return true;
          }
          return false;
        },
        [&] { (*coordinator)->Shutdown(); });
    EXPECT_EQ((*coordinator)->registry().Versions("risk"), (std::vector<uint64_t>{0}))
        << "nothing is published";
    return ledger();
  }
};

// FI is shown the root level of tree 0 with another root value: the same
// histogram to compute, but another step to mask for. Its masks no longer
// cancel with EE's and LV's, the sum is noise, and the tree builder refuses
// it (a negative hessian or count sum).
TEST_F(BoostingCoordinatorTest, ShowingOneMemberAnotherStepGivesNoise) {
  auto rounds = RunUntilAborted("other_step", [](const std::string& node, v1::TaskAssignment& a) {
    if (node != "FI" || a.kind() != v1::TaskAssignment::BOOST ||
        a.boosting().kind() != v1::BoostingStep::LEVEL || a.boosting().open_nodes_size() != 1) {
      return;
    }
    auto state = tensor::DecodeFromString(a.boosting().ensemble());
    ASSERT_TRUE(state.ok());
    auto ensemble = models::BoostedTreesFromState(*state);
    ASSERT_TRUE(ensemble.ok());
    ensemble->trees[0].nodes[0].value = 0.125;
    auto bytes = tensor::EncodeToString(models::BoostedTreesState(*ensemble));
    ASSERT_TRUE(bytes.ok());
    a.mutable_boosting()->set_ensemble(*bytes);
  });
  ASSERT_FALSE(rounds.empty());
  EXPECT_EQ(rounds[0].status, "aborted");
  EXPECT_THAT(rounds[0].reason, HasSubstr("the members' sum of step tree 0 level 0"));
  EXPECT_THAT(rounds[0].reason, HasSubstr("level histogram value"));
}

// LV is shown a member list without FI (a sum of EE and LV alone would be
// below its floor of 3): it sends nothing, the step misses a member and the
// session ends before any tree is finished.
TEST_F(BoostingCoordinatorTest, AListBelowTheFloorGetsNothing) {
  auto rounds = RunUntilAborted("short_list", [](const std::string& node, v1::TaskAssignment& a) {
    if (node != "LV" || a.kind() != v1::TaskAssignment::BOOST) return;
    auto* members = a.mutable_boosting()->mutable_members();
    for (int i = 0; i < members->size(); ++i) {
      if ((*members)[i].node() == "FI") {
        members->DeleteSubrange(i, 1);
        break;
      }
    }
  });
  ASSERT_FALSE(rounds.empty());
  EXPECT_EQ(rounds[0].status, "aborted");
  EXPECT_THAT(rounds[0].reason, HasSubstr("LV) missed step moments"));
}

}  // namespace
}  // namespace fedcustoms
