// Crash safety with real processes: the coordinator (fedcustoms-coordinator)
// is killed with SIGKILL at each crash point of a round in turn
// (process::CrashPoint, armed through FEDCUSTOMS_CRASH_POINT), restarted on
// the same port, and three real node processes (fedcustoms-node) carry on
// without operator action. Each case checks what was on disk at the crash
// (only whole, signed versions visible), and after the restart the ledger's
// account of the interrupted round, the registry, and that the federation
// still completes its rounds.
#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/ed25519.h"
#include "common/io/atomic_file.h"
#include "coordinator/ledger/round_ledger.h"
#include "coordinator/registry/model_registry.h"
#include "tests/support/federation_dir.h"
#include "tools/demo/child_process.h"
#include "tools/demo/dev_federation.h"

namespace fedcustoms {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr uint32_t kRounds = 2;
const std::vector<std::string> kAdmins = {"EE", "FI", "LV"};

struct CrashCase {
  std::string point;
  // What the restart must record for the interrupted round.
  std::string status;           // "aborted" or "completed"
  std::string reason_contains;  // in the ledger row's reason
};

// Named by its crash point in test output.
void PrintTo(const CrashCase& c, std::ostream* out) { *out << c.point; }

std::string CaseName(const ::testing::TestParamInfo<CrashCase>& info) {
  std::string name;
  for (char c : info.param.point) name += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return name;
}

std::string ReadLog(const std::string& path) {
  auto text = io::ReadFile(path);
  return text.ok() ? *text : "";
}

// Every version directory a reader can see verifies: signed manifest, weights
// matching it. Returns the versions.
std::vector<uint64_t> VerifiedVersions(const std::string& registry_dir,
                                       const crypto::Ed25519Verifier& verifier) {
  // Opening removes staging leftovers, so list what a reader sees first.
  std::vector<std::string> visible;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(registry_dir + "/risk", ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind('v', 0) == 0) visible.push_back(name);
  }
  auto registry = coordinator::ModelRegistry::Open(registry_dir, nullptr, &verifier);
  EXPECT_TRUE(registry.ok()) << registry.status();
  if (!registry.ok()) return {};
  std::vector<uint64_t> versions = (*registry)->Versions("risk");
  EXPECT_EQ(versions.size(), visible.size()) << "a directory that is not a whole version";
  for (uint64_t v : versions) {
    auto weights = (*registry)->LoadWeights("risk", v);
    EXPECT_TRUE(weights.ok()) << "version " << v << ": " << weights.status();
  }
  return versions;
}

class CrashSafetyTest : public ::testing::TestWithParam<CrashCase> {
 protected:
  void SetUp() override {
    auto dir = testing_support::MakeFederationDir(absl::StrCat("crash-", CaseName({GetParam(), 0})),
                                                  kAdmins);
    ASSERT_TRUE(dir.ok()) << dir.status();
    root_ = *dir;
    synth::SynthOptions data;
    data.admins = kAdmins;
    data.rows = 1500;
    data.seed = 11;
    ASSERT_TRUE(testing_support::AddSyntheticData(root_, data).ok());
    fs::create_directories(root_ + "/logs");
    const std::string pki = root_ + "/pki";
    WriteCoordinatorConfig(3);
    auto verifier = crypto::Ed25519Verifier::Create(pki + "/coordinator-signing.pub");
    ASSERT_TRUE(verifier.ok()) << verifier.status();
    verifier_ = *std::move(verifier);
  }

  // Every round needs `min_nodes` of the three; a node that does not upload
  // is dropped after 30 s (training takes about a second here).
  void WriteCoordinatorConfig(uint32_t min_nodes) {
    json task{{"name", "risk"},
              {"schema_file", root_ + "/data/EE/declarations.schema.json"},
              {"min_nodes", min_nodes},
              {"rounds", kRounds},
              {"round_deadline_seconds", 30},
              {"eval_deadline_seconds", 30},
              {"gather_seconds", 1}};
    coordinator_config_ = tools::DevCoordinatorConfig(root_ + "/pki", root_, json::array({task}));
    ASSERT_TRUE(tools::WriteJsonFile(root_ + "/coordinator.json", coordinator_config_).ok());
  }

  // Starts the coordinator (with the crash point armed when `crash_point` is
  // set) and, the first time, pins its port in the config so the restart
  // listens where the nodes dial.
  std::unique_ptr<tools::ChildProcess> StartCoordinator(const std::string& crash_point,
                                                        const std::string& log_name) {
    std::vector<std::string> env;
    if (!crash_point.empty()) env.push_back("FEDCUSTOMS_CRASH_POINT=" + crash_point);
    auto running = tools::StartCoordinatorProcess(
        root_ + "/coordinator.json", root_ + "/state/port", root_ + "/logs/" + log_name, env);
    EXPECT_TRUE(running.ok()) << running.status();
    if (!running.ok()) return nullptr;
    if (port_.empty()) {
      port_ = running->port;
      coordinator_config_["listen_address"] = "127.0.0.1:" + port_;
      EXPECT_TRUE(tools::WriteJsonFile(root_ + "/coordinator.json", coordinator_config_).ok());
    }
    return std::move(running->process);
  }

  // Starts the node of `admin`, with `crash_point` armed when set; its log
  // is logs/node-<admin>-<run>.log.
  std::unique_ptr<tools::ChildProcess> StartNode(const std::string& admin,
                                                 const std::string& crash_point, int run) {
    const std::string dir = root_ + "/nodes/" + admin;
    fs::create_directories(dir);
    json config = tools::DevNodeConfig(root_ + "/pki", admin, "localhost:" + port_, "risk", dir);
    tools::AddDeclarationFiles(config, root_ + "/data", admin);
    config["max_backoff_seconds"] = 2;
    EXPECT_TRUE(tools::WriteJsonFile(dir + "/node.json", config).ok());
    std::vector<std::string> argv;
    if (!crash_point.empty()) argv = {"/usr/bin/env", "FEDCUSTOMS_CRASH_POINT=" + crash_point};
    argv.insert(argv.end(),
                {tools::ExecutableDir() + "/fedcustoms-node", "--config", dir + "/node.json"});
    auto process = tools::ChildProcess::Spawn(
        argv, absl::StrCat(root_, "/logs/node-", admin, "-", run, ".log"));
    EXPECT_TRUE(process.ok()) << process.status();
    return process.ok() ? *std::move(process) : nullptr;
  }

  void StartNodes() {
    for (const std::string& admin : kAdmins) nodes_.push_back(StartNode(admin, "", 1));
  }

  // Waits for every node to finish its task and exit 0, then stops the
  // coordinator with SIGTERM.
  void FinishFederation(tools::ChildProcess& coordinator) {
    for (auto& n : nodes_) {
      ASSERT_NE(n, nullptr);
      std::optional<int> node_code = n->WaitFor(std::chrono::seconds(600));
      ASSERT_TRUE(node_code.has_value()) << "a node did not finish; see " << n->log_path();
      EXPECT_EQ(*node_code, 0) << "see " << n->log_path();
    }
    coordinator.Signal(SIGTERM);
    EXPECT_EQ(coordinator.WaitFor(std::chrono::seconds(60)).value_or(-1), 0)
        << "see " << coordinator.log_path();
  }

  // The ledger's finished rounds of "risk"; fails if any round is left open.
  std::vector<coordinator::RoundRecord> LedgerRounds() {
    auto ledger = coordinator::RoundLedger::Open(root_ + "/state/ledger.sqlite");
    EXPECT_TRUE(ledger.ok()) << ledger.status();
    if (!ledger.ok()) return {};
    auto open = (*ledger)->OpenRounds("risk");
    EXPECT_TRUE(open.ok() && open->empty()) << "rounds left open in the ledger";
    auto rounds = (*ledger)->List("risk");
    EXPECT_TRUE(rounds.ok()) << rounds.status();
    return rounds.ok() ? *rounds : std::vector<coordinator::RoundRecord>{};
  }

  std::string root_;
  std::string port_;
  json coordinator_config_;
  std::unique_ptr<crypto::Ed25519Verifier> verifier_;
  std::vector<std::unique_ptr<tools::ChildProcess>> nodes_;
};

TEST_P(CrashSafetyTest, KilledCoordinatorRestartsAndTheFederationCarriesOn) {
  const CrashCase& c = GetParam();
  std::unique_ptr<tools::ChildProcess> first = StartCoordinator(c.point, "coordinator-1.log");
  ASSERT_NE(first, nullptr);
  StartNodes();

  // The crash: SIGKILL at the point, nothing else.
  std::optional<int> code = first->WaitFor(std::chrono::seconds(300));
  ASSERT_TRUE(code.has_value()) << "the coordinator never reached " << c.point << "; see "
                                << first->log_path();
  EXPECT_EQ(*code, 128 + SIGKILL);
  EXPECT_TRUE(absl::StrContains(
      ReadLog(first->log_path()),
      absl::StrCat("crash point ", c.point.substr(0, c.point.find('@')), ": SIGKILL")));

  // On disk at the crash: only whole versions are visible, each verifying.
  std::vector<uint64_t> at_crash = VerifiedVersions(root_ + "/registry", *verifier_);
  ASSERT_FALSE(at_crash.empty());
  EXPECT_EQ(at_crash.front(), 0u);

  // The restart: same config, same port; the nodes reconnect by themselves.
  std::unique_ptr<tools::ChildProcess> second = StartCoordinator("", "coordinator-2.log");
  ASSERT_NE(second, nullptr);
  FinishFederation(*second);

  // The ledger: the interrupted round is recorded as the case expects, every
  // other round completed, none left open.
  const std::vector<coordinator::RoundRecord> rounds = LedgerRounds();
  ASSERT_FALSE(rounds.empty());
  const coordinator::RoundRecord& interrupted = rounds.front();
  EXPECT_EQ(interrupted.round_id, 1u);
  EXPECT_EQ(interrupted.status, c.status);
  EXPECT_TRUE(absl::StrContains(interrupted.reason, c.reason_contains)) << interrupted.reason;
  uint32_t completed = 0;
  uint64_t last_version = 0;
  for (const coordinator::RoundRecord& r : rounds) {
    if (r.round_id > 1) {
      EXPECT_EQ(r.status, "completed") << "round " << r.round_id << ": " << r.reason;
    }
    if (r.status == "completed") {
      ++completed;
      EXPECT_EQ(r.result_version, last_version + 1) << "round " << r.round_id;
      last_version = r.result_version;
    }
  }
  EXPECT_EQ(completed, kRounds);

  // The registry: versions 0..kRounds, every one whole and signed, the
  // leftovers of the crash gone.
  std::vector<uint64_t> versions = VerifiedVersions(root_ + "/registry", *verifier_);
  ASSERT_EQ(versions.size(), kRounds + 1);
  EXPECT_EQ(versions.back(), kRounds);
  for (const fs::directory_entry& e : fs::directory_iterator(root_ + "/registry/risk")) {
    EXPECT_EQ(e.path().filename().string().rfind(".staging-", 0), std::string::npos) << e.path();
  }
  const std::string restart_log = ReadLog(second->log_path());
  EXPECT_TRUE(absl::StrContains(restart_log, "resuming from registry version"));
}

INSTANTIATE_TEST_SUITE_P(
    EachCrashPoint, CrashSafetyTest,
    ::testing::Values(
        // While the model is broadcast: a node has received its first chunk.
        CrashCase{"coordinator.broadcast", "aborted", "stopped during training"},
        // While updates stream in: an upload has spooled its first chunk.
        CrashCase{"coordinator.upload", "aborted", "stopped during training"},
        // During aggregation: the candidate's wire file is written.
        CrashCase{"coordinator.aggregate", "aborted", "stopped during aggregating"},
        // While writing a version: its files are complete in staging, not
        // yet renamed into place.
        // (The first hit is version 0's, at the first start.)
        CrashCase{"registry.staged@2", "aborted", "stopped during publishing"},
        // The version is in the registry, its round not yet in the ledger.
        CrashCase{"coordinator.published", "completed", "recorded at restart"}),
    CaseName);

// A node killed with SIGKILL mid-training or mid-upload and started again (as
// its service manager would) takes part again: the coordinator discards the
// partial upload; the restarted node lost its secure-aggregation keys for the
// round, so it sits that round out. With three nodes a secure round needs all
// three (min_nodes 3, and every node's own floor min_peers 3), so that round
// aborts at its deadline; the next one, on the same model, has all three
// again (a node killed after masking contributes a second time on that model,
// which its record allows once), and the federation completes its rounds.
class NodeCrashTest : public CrashSafetyTest {};

TEST_P(NodeCrashTest, KilledNodeRestartsAndRejoins) {
  const CrashCase& c = GetParam();
  WriteCoordinatorConfig(3);
  std::unique_ptr<tools::ChildProcess> coordinator = StartCoordinator("", "coordinator.log");
  ASSERT_NE(coordinator, nullptr);
  nodes_.push_back(StartNode("EE", c.point, 1));
  nodes_.push_back(StartNode("FI", "", 1));
  nodes_.push_back(StartNode("LV", "", 1));
  ASSERT_NE(nodes_[0], nullptr);
  std::optional<int> code = nodes_[0]->WaitFor(std::chrono::seconds(300));
  ASSERT_TRUE(code.has_value()) << "EE never reached " << c.point << "; see "
                                << nodes_[0]->log_path();
  EXPECT_EQ(*code, 128 + SIGKILL);
  EXPECT_TRUE(absl::StrContains(ReadLog(nodes_[0]->log_path()),
                                absl::StrCat("crash point ", c.point, ": SIGKILL")));
  nodes_[0] = StartNode("EE", "", 2);
  FinishFederation(*coordinator);

  const std::vector<coordinator::RoundRecord> rounds = LedgerRounds();
  uint32_t completed = 0;
  for (const coordinator::RoundRecord& r : rounds) completed += r.status == "completed";
  EXPECT_EQ(completed, kRounds);
  ASSERT_GE(rounds.size(), kRounds + 1);
  EXPECT_EQ(rounds.front().status, "aborted") << "the round EE was killed in";
  for (size_t i = 1; i < rounds.size(); ++i) {
    EXPECT_EQ(rounds[i].status, "completed")
        << "round " << rounds[i].round_id << ": " << rounds[i].reason;
  }
  EXPECT_EQ(rounds.back().participants, 3u) << "the restarted node is back by the last round";
  EXPECT_EQ(VerifiedVersions(root_ + "/registry", *verifier_).size(), kRounds + 1);
  if (c.point == "node.upload") {
    EXPECT_TRUE(absl::StrContains(ReadLog(coordinator->log_path()), c.reason_contains))
        << "the coordinator did not discard the partial upload; see " << coordinator->log_path();
  }
}

INSTANTIATE_TEST_SUITE_P(EachCrashPoint, NodeCrashTest,
                         ::testing::Values(CrashCase{"node.training", "completed", ""},
                                           CrashCase{"node.upload", "completed",
                                                     "upload from EE for risk round 1 rejected"}),
                         CaseName);

}  // namespace
}  // namespace fedcustoms
