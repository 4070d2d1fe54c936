// A coordinator that lies in what it tells one node, over the real protocol:
// the real coordinator in mode SECURE with an assignment tap that rewrites
// what SE is shown, and four real nodes training over mutual TLS. Each test
// asserts what the lie obtains: nothing from SE (no share, no masked input,
// nothing on its contribution record), while the honest nodes' round
// completes without it.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "absl/strings/str_cat.h"
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

namespace fs = std::filesystem;

const std::vector<std::string> kAdmins = {"EE", "FI", "LV", "SE"};
const std::string kTarget = "SE";

class LyingCoordinatorTest : public testing_support::FederationSuite<LyingCoordinatorTest> {
 protected:
  static void SetUpTestSuite() {
    MakeRoot(testing_support::MakeFederationWithData("lying", kAdmins, kAdmins, 400, 11));
  }

  // One secure round of the four nodes against a coordinator whose
  // assignments to kTarget go through `lie` first; returns the ledger.
  std::vector<coordinator::RoundRecord> RunRound(
      const std::string& run, const std::function<void(v1::TaskAssignment&)>& lie) {
    v1::CoordinatorConfig c = testing_support::LoopbackCoordinatorConfig(
        *root_ + "/pki", *root_ + "/" + run, *root_ + "/data/EE/declarations.schema.json",
        v1::SECURE);
    v1::TaskConfig* t = c.mutable_tasks(0);
    t->set_min_nodes(3);
    t->set_rounds(1);
    t->set_gather_seconds(3);
    t->set_eval_deadline_seconds(60);
    t->mutable_training()->set_local_epochs(1);
    t->mutable_secure_aggregation()->set_phase_deadline_seconds(5);
    auto config = coordinator::FinalizeCoordinatorConfig(c, "test", "");
    EXPECT_TRUE(config.ok()) << config.status();
    if (!config.ok()) return {};
    auto coordinator = coordinator::Coordinator::Create(
        *config, {}, [&](const std::string& node, v1::TaskAssignment& a) {
          if (node == kTarget) lie(a);
        });
    EXPECT_TRUE(coordinator.ok()) << coordinator.status();
    if (!coordinator.ok()) return {};
    EXPECT_TRUE((*coordinator)->Start().ok());
    std::vector<std::unique_ptr<node::Node>> nodes;
    for (const std::string& admin : kAdmins) {
      auto finalized = node::FinalizeNodeConfig(
          testing_support::LoopbackNodeConfig(*root_, admin, (*coordinator)->Port(), run, "risk"),
          "test", "");
      EXPECT_TRUE(finalized.ok()) << finalized.status();
      if (!finalized.ok()) return {};
      auto created = node::Node::Create(*finalized);
      EXPECT_TRUE(created.ok()) << created.status();
      if (!created.ok()) return {};
      nodes.push_back(*std::move(created));
    }
    testing_support::RunNodesToEnd(nodes, std::chrono::minutes(3), run);
    auto rounds = (*coordinator)->ledger().List("risk");
    EXPECT_TRUE(rounds.ok()) << rounds.status();
    return rounds.ok() ? *rounds : std::vector<coordinator::RoundRecord>{};
  }

  // Lines on the target's record of contributions (none if it has none).
  int ContributionsOf(const std::string& run) {
    std::ifstream in(absl::StrCat(*root_, "/", run, "/node-", kTarget, "/contributions.jsonl"));
    int lines = 0;
    for (std::string line; std::getline(in, line);) lines += !line.empty();
    return lines;
  }

  // The round completed with the three honest nodes and nothing of SE.
  void ExpectRoundWithoutTheTarget(const std::vector<coordinator::RoundRecord>& rounds,
                                   const std::string& run) {
    ASSERT_EQ(rounds.size(), 1u);
    EXPECT_EQ(rounds[0].status, "completed") << rounds[0].reason;
    EXPECT_EQ(rounds[0].selected_nodes, 4u);
    EXPECT_EQ(rounds[0].participants, 3u);
    EXPECT_EQ(ContributionsOf(run), 0);
  }
};

// SE is shown a U1 of itself and LV only, so that its shares would go to
// one node the coordinator may control: SE refuses a round below its own
// floor (at least 3 nodes, t above half of them) before any share leaves.
TEST_F(LyingCoordinatorTest, AShrunkenU1GetsNothingFromItsTarget) {
  std::atomic<int> lies{0};
  auto rounds = RunRound("shrunken", [&](v1::TaskAssignment& a) {
    if (a.kind() != v1::TaskAssignment::SHARE_KEYS) return;
    v1::SecureRound* secure = a.mutable_secure();
    auto* ads = secure->mutable_advertisements();
    for (int i = ads->size() - 1; i >= 0; --i) {
      if (ads->Get(i).node() == "EE" || ads->Get(i).node() == "FI") ads->DeleteSubrange(i, 1);
    }
    ++lies;
  });
  EXPECT_GT(lies.load(), 0);
  ExpectRoundWithoutTheTarget(rounds, "shrunken");
}

// SE is shown a lower threshold after it advertised keys (its signature
// covers the terms it was shown first): it refuses the changed terms.
TEST_F(LyingCoordinatorTest, ALoweredThresholdGetsNothingFromItsTarget) {
  std::atomic<int> lies{0};
  auto rounds = RunRound("lowered", [&](v1::TaskAssignment& a) {
    if (a.kind() != v1::TaskAssignment::SHARE_KEYS) return;
    a.mutable_secure()->set_threshold(2);
    ++lies;
  });
  EXPECT_GT(lies.load(), 0);
  ExpectRoundWithoutTheTarget(rounds, "lowered");
}

}  // namespace
}  // namespace fedcustoms
