// A coordinator that lies, over the real protocol: the real coordinator in
// mode SECURE and four real nodes training over mutual TLS. Its lies are an
// assignment tap that rewrites what SE is shown (a shrunken U1, a lowered
// threshold, a survivor list split from the others'), a second coordinator
// restored from the first one's start that reruns the round without SE, and
// a coordinator that withholds SE's revocation. Each test asserts what the
// lie obtains: nothing from its target (no share, no masked input, no
// reveal), no unmasked sum from a rerun, no round with revoked keys.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/config/proto_json.h"
#include "common/io/atomic_file.h"
#include "common/pki/dev_pki.h"
#include "coordinator/config/coordinator_config.h"
#include "coordinator/coordinator.h"
#include "node/config/node_config.h"
#include "node/node.h"
#include "spdlog/sinks/base_sink.h"
#include "spdlog/spdlog.h"
#include "tests/support/federation_dir.h"
#include "tests/support/federation_suite.h"
#include "tests/support/loopback_federation.h"
#include "tests/support/run_nodes.h"

namespace fedcustoms {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kAdmins = {"EE", "FI", "LV", "SE"};
const std::string kTarget = "SE";

// Runs `command` in a shell; returns its output (stdout and stderr) and exit
// code.
std::pair<std::string, int> RunCommand(const std::string& command) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return {"popen failed", -1};
  std::string output;
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof(buffer), pipe)) output.append(buffer, n);
  const int status = pclose(pipe);
  return {output, WIFEXITED(status) ? WEXITSTATUS(status) : -1};
}

// Keeps the lines logged while it is installed (the nodes run in this
// process), so a test can read what a node refused.
class CapturedLog : public spdlog::sinks::base_sink<std::mutex> {
 public:
  CapturedLog() = default;
  std::vector<std::string> Lines() {
    std::lock_guard<std::mutex> lock(mutex_);
    return lines_;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    lines_.emplace_back(msg.payload.data(), msg.payload.size());
  }
  void flush_() override {}

 private:
  std::vector<std::string> lines_;
};

class LyingCoordinatorTest : public testing_support::FederationSuite<LyingCoordinatorTest> {
 protected:
  static void SetUpTestSuite() {
    MakeRoot(testing_support::MakeFederationWithData("lying", kAdmins, kAdmins, 400, 11));
  }

  // The coordinator of a run: mode SECURE, one round of one local epoch,
  // min_nodes 3, state in root/<dir>.
  static v1::CoordinatorConfig CoordinatorConfig(const std::string& dir) {
    v1::CoordinatorConfig c = testing_support::LoopbackCoordinatorConfig(
        *root_ + "/pki", *root_ + "/" + dir, *root_ + "/data/EE/declarations.schema.json",
        v1::SECURE);
    v1::TaskConfig* t = c.mutable_tasks(0);
    t->set_min_nodes(3);
    t->set_rounds(1);
    t->set_gather_seconds(3);
    t->set_eval_deadline_seconds(60);
    t->mutable_training()->set_local_epochs(1);
    t->mutable_secure_aggregation()->set_phase_deadline_seconds(5);
    return c;
  }

  struct Run {
    std::string coordinator_dir;  // under root_
    std::string nodes_dir;        // run name of the nodes' work dirs
    std::vector<std::string> admins = kAdmins;
    std::function<void(const std::string&, v1::TaskAssignment&)> tap;
    std::string nodes_crl;                // tls.crl of every node but SE, if set
    uint32_t round_deadline_seconds = 0;  // the default if 0
    // Stops the run early (nodes and coordinator) once the ledger says so;
    // unset: the nodes run to the task's end.
    std::function<bool(const std::vector<coordinator::RoundRecord>&)> done;
  };

  // Runs `run` and returns the coordinator's ledger.
  std::vector<coordinator::RoundRecord> Go(const Run& run) {
    v1::CoordinatorConfig c = CoordinatorConfig(run.coordinator_dir);
    if (run.round_deadline_seconds > 0) {
      c.mutable_tasks(0)->set_round_deadline_seconds(run.round_deadline_seconds);
    }
    auto config = coordinator::FinalizeCoordinatorConfig(c, "test", "");
    EXPECT_TRUE(config.ok()) << config.status();
    if (!config.ok()) return {};
    auto coordinator = coordinator::Coordinator::Create(*config, {}, run.tap);
    EXPECT_TRUE(coordinator.ok()) << coordinator.status();
    if (!coordinator.ok()) return {};
    EXPECT_TRUE((*coordinator)->Start().ok());
    std::vector<std::unique_ptr<node::Node>> nodes;
    for (const std::string& admin : run.admins) {
      v1::NodeConfig n = testing_support::LoopbackNodeConfig(*root_, admin, (*coordinator)->Port(),
                                                             run.nodes_dir, "risk");
      if (!run.nodes_crl.empty() && admin != kTarget) n.mutable_tls()->set_crl(run.nodes_crl);
      auto finalized = node::FinalizeNodeConfig(n, "test", "");
      EXPECT_TRUE(finalized.ok()) << finalized.status();
      if (!finalized.ok()) return {};
      auto created = node::Node::Create(*finalized);
      EXPECT_TRUE(created.ok()) << created.status();
      if (!created.ok()) return {};
      nodes.push_back(*std::move(created));
    }
    auto ledger = [&] {
      auto rounds = (*coordinator)->ledger().List("risk");
      EXPECT_TRUE(rounds.ok()) << rounds.status();
      return rounds.ok() ? *rounds : std::vector<coordinator::RoundRecord>{};
    };
    if (!run.done) {
      testing_support::RunNodesToEnd(nodes, std::chrono::minutes(3), run.nodes_dir);
      return ledger();
    }
    testing_support::RunNodesUntil(
        nodes, std::chrono::minutes(3), run.nodes_dir, [&] { return run.done(ledger()); },
        [&] { (*coordinator)->Shutdown(); });
    return ledger();
  }

  // One secure round of the four nodes against a coordinator whose
  // assignments to kTarget go through `lie` first; returns the ledger.
  std::vector<coordinator::RoundRecord> RunRound(
      const std::string& run, const std::function<void(v1::TaskAssignment&)>& lie) {
    return Go({.coordinator_dir = run,
               .nodes_dir = run,
               .tap = [&](const std::string& node, v1::TaskAssignment& a) {
                 if (node == kTarget) lie(a);
               }});
  }

  // Lines of `admin`'s record of contributions in run `run` that contain
  // `what` (all lines if empty).
  int RecordLines(const std::string& run, const std::string& admin, const std::string& what = "") {
    std::ifstream in(absl::StrCat(*root_, "/", run, "/node-", admin, "/contributions.jsonl"));
    int lines = 0;
    for (std::string line; std::getline(in, line);) {
      lines += !line.empty() && absl::StrContains(line, what);
    }
    return lines;
  }

  // The round completed with the three honest nodes and nothing of SE.
  void ExpectRoundWithoutTheTarget(const std::vector<coordinator::RoundRecord>& rounds,
                                   const std::string& run) {
    ASSERT_EQ(rounds.size(), 1u);
    EXPECT_EQ(rounds[0].status, "completed") << rounds[0].reason;
    EXPECT_EQ(rounds[0].selected_nodes, 4u);
    EXPECT_EQ(rounds[0].participants, 3u);
    EXPECT_EQ(RecordLines(run, kTarget), 0);
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

// Split views over the wire: SE confirmed the true survivor list; at
// unmasking it alone is shown the list without EE (as if EE had dropped, so
// that SE would reveal EE's self-mask seed while the others reveal EE's mask
// key). SE reveals only for the list it confirmed: no share leaves it, and
// the round completes on the three honest reveals.
TEST_F(LyingCoordinatorTest, ASplitSurvivorListGetsNoRevealFromItsTarget) {
  auto log = std::make_shared<CapturedLog>();
  spdlog::default_logger()->sinks().push_back(log);
  std::atomic<int> lies{0};
  auto rounds = RunRound("split", [&](v1::TaskAssignment& a) {
    if (a.kind() != v1::TaskAssignment::UNMASK) return;
    auto* u3 = a.mutable_secure()->mutable_masked_input_from();
    for (int i = u3->size() - 1; i >= 0; --i) {
      if (u3->Get(i) == "EE") u3->DeleteSubrange(i, 1);
    }
    ++lies;
  });
  spdlog::default_logger()->sinks().pop_back();
  EXPECT_GT(lies.load(), 0);
  ASSERT_EQ(rounds.size(), 1u);
  EXPECT_EQ(rounds[0].status, "completed") << rounds[0].reason;
  EXPECT_EQ(rounds[0].participants, 4u);
  // SE confirmed the list of all four, once, and refused the other one.
  EXPECT_EQ(RecordLines("split", kTarget, "survivors"), 1);
  EXPECT_EQ(RecordLines("split", kTarget, "\"EE\""), 1);
  int refusals = 0;
  for (const std::string& line : log->Lines()) {
    refusals += absl::StrContains(line,
                                  "the coordinator asks to unmask a survivor list other "
                                  "than the one SE confirmed");
  }
  EXPECT_GE(refusals, 1);
}

// The re-run attack over the wire: a round of all four completes; then the
// consortium's coordinator is "restored" (a fresh state from the same
// config, the same model v0) and reruns the round without SE, to subtract
// the two sums. Its round 1 reuses the id the nodes took part in and gets no
// update at all; its round 2 gets one more masked update from each (their
// allowance is 2 per model), but they refuse to confirm a survivor list other
// than the one they confirmed for v0: the rerun's sum is never unmasked, and
// no version is published from it.
//
// Had the restore been honest (SE gone for good), the task would stall on v0.
// The way out is each administration's, not the coordinator's: `fedcustoms
// contributions release` on each node, after which the next round completes
// without SE.
TEST_F(LyingCoordinatorTest, ARerunWithoutOneNodeUnmasksNothingUntilEachAdministrationReleases) {
  auto first = Go({.coordinator_dir = "rerun-first", .nodes_dir = "rerun"});
  ASSERT_EQ(first.size(), 1u);
  ASSERT_EQ(first[0].status, "completed") << first[0].reason;
  ASSERT_EQ(first[0].participants, 4u);
  const std::vector<std::string> stayed = {"EE", "FI", "LV"};
  auto rerun = Go({.coordinator_dir = "rerun-again",
                   .nodes_dir = "rerun",
                   .admins = stayed,
                   .round_deadline_seconds = 10,
                   .done = [](const std::vector<coordinator::RoundRecord>& rounds) {
                     return rounds.size() >= 2;
                   }});
  ASSERT_GE(rerun.size(), 2u);
  for (const coordinator::RoundRecord& r : rerun) {
    EXPECT_EQ(r.status, "aborted") << r.round_id;
    EXPECT_EQ(r.result_version, 0u);
  }
  EXPECT_EQ(rerun[0].participants, 0u) << rerun[0].reason;
  EXPECT_THAT(rerun[1].reason, testing::HasSubstr("confirmed the survivor list"));
  for (const std::string& admin : stayed) {
    // Two masked updates from v0 (the second never unmasked), one list.
    EXPECT_EQ(RecordLines("rerun", admin, "survivors"), 1) << admin;
    EXPECT_EQ(RecordLines("rerun", admin), 3) << admin;
  }

  // Each administration releases v0 with the command line.
  for (const std::string& admin : stayed) {
    const std::string config = absl::StrCat(*root_, "/rerun/node-", admin, ".json");
    auto json = config::PrintProtoJson(
        testing_support::LoopbackNodeConfig(*root_, admin, 7443, "rerun", "risk"));
    ASSERT_TRUE(json.ok()) << json.status();
    ASSERT_TRUE(io::WriteFileAtomically(config, *json).ok());
    const std::string cli = std::string(FEDCUSTOMS_BINARY_DIR) + "/bin/fedcustoms contributions ";
    auto [released, code] = RunCommand(cli + "release --config " + config +
                                       " --model-version 0 --reason 'SE left the federation'");
    ASSERT_EQ(code, 0) << released;
    EXPECT_THAT(released, testing::HasSubstr("released risk v0"));
    EXPECT_THAT(released, testing::HasSubstr("confirmed the survivor list [EE, FI, LV, SE]"));
    auto [again, again_code] =
        RunCommand(cli + "release --config " + config + " --model-version 0 --reason again");
    EXPECT_NE(again_code, 0);
    EXPECT_THAT(again, testing::HasSubstr("nothing to release"));
    auto [listed, list_code] = RunCommand(cli + "list --config " + config);
    EXPECT_EQ(list_code, 0);
    EXPECT_THAT(listed, testing::HasSubstr("after round 2: SE left the federation"));
  }
  auto resumed = Go({.coordinator_dir = "rerun-again",
                     .nodes_dir = "rerun",
                     .admins = stayed,
                     .round_deadline_seconds = 10,
                     .done = [](const std::vector<coordinator::RoundRecord>& rounds) {
                       return std::any_of(rounds.begin(), rounds.end(),
                                          [](const auto& r) { return r.status == "completed"; });
                     }});
  ASSERT_FALSE(resumed.empty());
  EXPECT_EQ(resumed.back().status, "completed") << resumed.back().reason;
  EXPECT_EQ(resumed.back().participants, 3u);
  EXPECT_EQ(resumed.back().result_version, 1u);
}

// A coordinator that withholds SE's revocation (its own CRL does not list
// SE) while the CA revoked it and the other administrations' nodes have the
// list: they refuse SE's advertised keys, so no share and no masked input
// leaves anyone while SE is in the round. Rounds abort, naming SE.
TEST_F(LyingCoordinatorTest, KeysOfANodeTheCoordinatorDoesNotRevokeAreRefusedByTheOthers) {
  pki::RevokeOptions revoke;
  revoke.dir = *root_ + "/pki";
  revoke.names = {"SE"};
  revoke.out = *root_ + "/se-revoked.crl.pem";
  ASSERT_TRUE(pki::RevokeDevCertificates(revoke).ok());
  auto log = std::make_shared<CapturedLog>();
  spdlog::default_logger()->sinks().push_back(log);
  auto rounds = Go({.coordinator_dir = "withheld",
                    .nodes_dir = "withheld",
                    .nodes_crl = revoke.out,
                    .done = [](const std::vector<coordinator::RoundRecord>& rounds) {
                      return !rounds.empty();
                    }});
  spdlog::default_logger()->sinks().pop_back();
  ASSERT_GE(rounds.size(), 1u);
  EXPECT_EQ(rounds[0].status, "aborted");
  int refusals = 0;
  for (const std::string& line : log->Lines()) {
    refusals += absl::StrContains(line, "keys advertised for SE: certificate serial") &&
                absl::StrContains(line, "was revoked on");
  }
  EXPECT_EQ(refusals, 3);  // EE, FI and LV, once each
  EXPECT_EQ(rounds[0].result_version, 0u);
  for (const std::string& admin : kAdmins) {
    EXPECT_EQ(RecordLines("withheld", admin), 0) << admin;
  }
}

}  // namespace
}  // namespace fedcustoms
