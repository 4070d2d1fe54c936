// TaskRunner without a network: the test calls its public methods as the gRPC
// services would, and a fake clock moves every deadline, so each phase,
// deadline and abort runs in milliseconds without sleeping. The federation
// tests show the same behaviour over real mTLS.
#include "coordinator/rounds/task_runner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <thread>
#include <utility>

#include "common/crypto/ed25519.h"
#include "common/data/declaration_schema.h"
#include "common/manifest/model_manifest.h"
#include "common/secagg/key_advertisement.h"
#include "common/task/task_model.h"
#include "coordinator/config/coordinator_config.h"
#include "coordinator/ledger/round_ledger.h"
#include "coordinator/registry/model_registry.h"
#include "node/secure/secure_aggregation_session.h"
#include "tests/coordinator/fake_clock.h"
#include "tests/support/federation_dir.h"
#include "tests/support/federation_suite.h"
#include "tests/support/loopback_federation.h"
#include "tests/support/small_declaration_schema.h"

namespace fedcustoms::coordinator {
namespace {
namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Kind = v1::TaskAssignment::Kind;

constexpr uint32_t kRoundDeadline = 60;
constexpr uint32_t kEvalDeadline = 30;
constexpr uint32_t kKeyPhaseDeadline = 20;

// Spins (no sleep) until `done` or a real-time bound: the driver thread runs
// the phases, the test only waits for it to get there.
bool Eventually(const std::function<bool()>& done) {
  const auto give_up = std::chrono::steady_clock::now() + seconds(20);
  while (!done()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::yield();
  }
  return true;
}

class TaskRunnerTest : public testing_support::FederationSuite<TaskRunnerTest> {
 protected:
  static void SetUpTestSuite() {
    MakeRoot(testing_support::MakeFederationDir("task-runner", {"EE", "FI", "LV"}));
  }
  void SetUp() override {
    work_ = *root_ + "/" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(work_);
    fs::create_directories(work_ + "/spool");
    std::ofstream(work_ + "/schema.json") << testing_support::kSmallSchemaJson;
    auto signer = crypto::Ed25519Signer::Create(Pki("coordinator-signing.key"));
    ASSERT_TRUE(signer.ok()) << signer.status();
    signer_ = *std::move(signer);
    auto verifier = crypto::Ed25519Verifier::Create(Pki("coordinator-signing.pub"));
    ASSERT_TRUE(verifier.ok()) << verifier.status();
    verifier_ = *std::move(verifier);
    auto key_verifier = secagg::KeyAdvertisementVerifier::Create(Pki("ca.pem"));
    ASSERT_TRUE(key_verifier.ok()) << key_verifier.status();
    key_verifier_ = *std::move(key_verifier);
    auto registry = ModelRegistry::Open(work_ + "/registry", signer_.get(), verifier_.get());
    ASSERT_TRUE(registry.ok()) << registry.status();
    registry_ = *std::move(registry);
    auto ledger = RoundLedger::Open(work_ + "/ledger.sqlite");
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    ledger_ = *std::move(ledger);
  }

  void TearDown() override {
    if (runner_) runner_->Stop();
  }

  static std::string Pki(const std::string& file) { return *root_ + "/pki/" + file; }

  // A runner of task "risk" (the small schema), not started: min_nodes 2
  // (3 in mode SECURE, its least), rounds 1, no gathering pause, on the fake
  // clock.
  void MakeRunner(v1::AggregationMode mode,
                  const std::function<void(v1::TaskConfig&)>& adjust = nullptr) {
    v1::CoordinatorConfig c = testing_support::LoopbackCoordinatorConfig(
        *root_ + "/pki", work_, work_ + "/schema.json", mode);
    v1::TaskConfig* t = c.mutable_tasks(0);
    t->set_min_nodes(mode == v1::SECURE ? 3 : 2);
    t->set_rounds(1);
    t->set_round_deadline_seconds(kRoundDeadline);
    t->set_eval_deadline_seconds(kEvalDeadline);
    t->mutable_secure_aggregation()->set_phase_deadline_seconds(kKeyPhaseDeadline);
    auto finalized = FinalizeCoordinatorConfig(c, "test", work_);
    ASSERT_TRUE(finalized.ok()) << finalized.status();
    TaskRunner::Options options;
    options.config = finalized->tasks(0);
    options.config.set_gather_seconds(0);
    if (adjust) adjust(options.config);
    auto schema = data::ParseDeclarationSchema(testing_support::kSmallSchemaJson, "small schema");
    ASSERT_TRUE(schema.ok()) << schema.status();
    options.schema = *schema;
    options.spool_dir = work_ + "/spool";
    options.models_dir = work_ + "/models";
    options.mode = mode;
    options.key_verifier = key_verifier_.get();
    options.clock = &clock_;
    auto initial = task::InitialState(task::SpecOf(options.config, options.schema),
                                      options.config.training().seed());
    ASSERT_TRUE(initial.ok()) << initial.status();
    initial_ = *std::move(initial);
    auto runner =
        TaskRunner::Create(std::move(options), registry_.get(), ledger_.get(), signer_.get());
    ASSERT_TRUE(runner.ok()) << runner.status();
    runner_ = *std::move(runner);
  }

  // Polls (without waiting) until `node` is assigned `kind`; the last
  // assignment, a WAIT if it never came.
  // EE and FI join, declaring 1000 training rows each, and the driver starts.
  void JoinEeAndFiThenStart() {
    ASSERT_TRUE(runner_->Join("EE", 1000).ok());
    ASSERT_TRUE(runner_->Join("FI", 1000).ok());
    runner_->Start();
  }
  // The same with LV too (the three a secure round needs at least).
  void JoinEeFiAndLvThenStart() {
    ASSERT_TRUE(runner_->Join("LV", 1000).ok());
    JoinEeAndFiThenStart();
  }

  // A node's secure-aggregation session with the default guarantees and its
  // contribution record in the test's directory.
  std::unique_ptr<node::SecureAggregationSession> Session(const std::string& node) {
    auto session =
        node::SecureAggregationSession::Create(testing_support::DevIdentity(*root_ + "/pki", node),
                                               {{}, work_ + "/contributions-" + node + ".jsonl"});
    EXPECT_TRUE(session.ok()) << session.status();
    return session.ok() ? *std::move(session) : nullptr;
  }

  v1::TaskAssignment PollFor(const std::string& node, Kind kind) {
    v1::TaskAssignment a;
    Eventually([&] {
      a = runner_->NextAssignment(node, milliseconds(0));
      return a.kind() == kind;
    });
    return a;
  }

  bool AwaitPhase(const std::string& phase) {
    return Eventually([&] { return runner_->Status().phase() == phase; });
  }

  // An update of `value` on every aggregatable tensor, spooled (with its
  // first tensor left out for `drop_first`).
  std::string SpoolUpdate(const std::string& node, float value, bool drop_first = false) {
    tensor::NamedTensors update;
    bool skip = drop_first;
    for (const UpdateSpec::Entry& e : UpdateSpec::Of(initial_).entries) {
      if (std::exchange(skip, false)) continue;
      update.emplace_back(e.name, torch::full(e.shape, value, torch::kFloat32));
    }
    const std::string path = work_ + "/spool/" + node + ".fct";
    EXPECT_TRUE(WriteWireFile(update, path).ok());
    return path;
  }

  v1::UpdateHeader Header(const v1::TaskAssignment& a, uint64_t samples) {
    v1::UpdateHeader h;
    h.set_task(a.task());
    h.set_round_id(a.round_id());
    h.set_model_version(a.model_version());
    h.set_sample_count(samples);
    h.set_train_loss(0.5);
    return h;
  }

  absl::Status Upload(const std::string& node, const v1::TaskAssignment& a, float value,
                      uint64_t samples) {
    const v1::UpdateHeader h = Header(a, samples);
    if (absl::Status s = runner_->BeginUpload(node, h); !s.ok()) return s;
    return runner_->FinishUpload(node, h, SpoolUpdate(node, value));
  }

  static v1::EvaluationMetrics Metrics() {
    v1::EvaluationMetrics m;
    m.set_roc_auc(0.8);
    m.set_pr_auc(0.4);
    m.set_loss(0.3);
    m.set_examples(100);
    m.set_positives(10);
    m.set_flagged(5);
    m.set_accuracy(0.9);
    return m;
  }

  std::vector<RoundRecord> Rounds() {
    auto rounds = ledger_->List("risk");
    EXPECT_TRUE(rounds.ok()) << rounds.status();
    return rounds.ok() ? *rounds : std::vector<RoundRecord>{};
  }

  // The first aggregatable tensor of registry version `version`.
  at::Tensor FirstWeights(uint64_t version) {
    auto weights = registry_->LoadWeights("risk", version);
    EXPECT_TRUE(weights.ok()) << weights.status();
    const std::string name = UpdateSpec::Of(initial_).entries[0].name;
    if (weights.ok()) {
      for (const auto& [n, t] : *weights) {
        if (n == name) return t;
      }
    }
    ADD_FAILURE() << "version " << version << " has no tensor " << name;
    return torch::full({1}, std::nanf(""));
  }

  std::string work_;
  testing_support::FakeClock clock_;
  std::unique_ptr<crypto::Ed25519Signer> signer_;
  std::unique_ptr<crypto::Ed25519Verifier> verifier_;
  std::unique_ptr<secagg::KeyAdvertisementVerifier> key_verifier_;
  std::unique_ptr<ModelRegistry> registry_;
  std::unique_ptr<RoundLedger> ledger_;
  tensor::NamedTensors initial_;
  std::unique_ptr<TaskRunner> runner_;
};

TEST_F(TaskRunnerTest, TrustedRoundGoesThroughEveryPhaseAndPublishesTheWeightedMean) {
  ASSERT_NO_FATAL_FAILURE(MakeRunner(v1::TRUSTED));
  JoinEeAndFiThenStart();

  v1::TaskAssignment ee = PollFor("EE", v1::TaskAssignment::TRAIN);
  v1::TaskAssignment fi = PollFor("FI", v1::TaskAssignment::TRAIN);
  ASSERT_EQ(ee.kind(), v1::TaskAssignment::TRAIN);
  ASSERT_EQ(fi.kind(), v1::TaskAssignment::TRAIN);
  EXPECT_EQ(ee.round_id(), 1u);
  EXPECT_EQ(ee.model_version(), 0u);
  EXPECT_EQ(ee.deadline_seconds(), kRoundDeadline);
  auto download = runner_->ModelForDownload("EE", 1, 0);
  ASSERT_TRUE(download.ok()) << download.status();
  EXPECT_EQ((*download)->version, 0u);
  EXPECT_EQ(runner_->Status().phase(), "training");

  ASSERT_TRUE(Upload("EE", ee, 1.0f, 100).ok());
  EXPECT_EQ(runner_->Status().phase(), "training");  // FI still to come
  ASSERT_TRUE(Upload("FI", fi, 4.0f, 300).ok());

  v1::TaskAssignment eval_ee = PollFor("EE", v1::TaskAssignment::EVALUATE);
  ASSERT_EQ(eval_ee.kind(), v1::TaskAssignment::EVALUATE);
  EXPECT_EQ(eval_ee.model_version(), 1u);
  EXPECT_EQ(runner_->Status().phase(), "evaluating");
  EXPECT_EQ(registry_->Versions("risk"), (std::vector<uint64_t>{0}));  // a candidate only
  ASSERT_TRUE(runner_->ReportMetrics("EE", 1, 1, Metrics()).ok());
  ASSERT_TRUE(runner_->ReportMetrics("FI", 1, 1, Metrics()).ok());

  ASSERT_TRUE(AwaitPhase("finished"));
  EXPECT_EQ(runner_->NextAssignment("EE", milliseconds(0)).kind(), v1::TaskAssignment::FINISHED);
  const v1::TaskStatus status = runner_->Status();
  EXPECT_EQ(status.latest_version(), 1u);
  EXPECT_EQ(status.rounds_completed(), 1u);
  EXPECT_DOUBLE_EQ(status.latest_metrics().roc_auc(), 0.8);
  EXPECT_EQ(registry_->Versions("risk"), (std::vector<uint64_t>{0, 1}));
  // (100 x 1 + 300 x 4) / 400 = 3.25 on every weight, FedAvg's server step 1.
  EXPECT_TRUE(torch::allclose(FirstWeights(1), FirstWeights(0) + 3.25f));
  const std::vector<RoundRecord> rounds = Rounds();
  ASSERT_EQ(rounds.size(), 1u);
  EXPECT_EQ(rounds[0].status, "completed");
  EXPECT_EQ(rounds[0].participants, 2u);
  EXPECT_EQ(rounds[0].dropped, 0u);
  EXPECT_EQ(rounds[0].samples, 400u);
  EXPECT_EQ(rounds[0].result_version, 1u);
}

TEST_F(TaskRunnerTest, ANodeMissingTheTrainingDeadlineIsDroppedAndTheRoundCompletes) {
  ASSERT_NO_FATAL_FAILURE(MakeRunner(
      v1::TRUSTED, [](v1::TaskConfig& t) { t.mutable_publish_gate()->set_min_reports(1); }));
  for (const char* node : {"EE", "FI", "LV"}) ASSERT_TRUE(runner_->Join(node, 1000).ok());
  runner_->Start();
  v1::TaskAssignment ee = PollFor("EE", v1::TaskAssignment::TRAIN);
  v1::TaskAssignment fi = PollFor("FI", v1::TaskAssignment::TRAIN);
  ASSERT_EQ(PollFor("LV", v1::TaskAssignment::TRAIN).kind(), v1::TaskAssignment::TRAIN);
  ASSERT_TRUE(Upload("EE", ee, 2.0f, 100).ok());
  ASSERT_TRUE(Upload("FI", fi, 2.0f, 100).ok());
  // LV trains on; the round waits for it until the deadline, not beyond.
  clock_.Advance(seconds(kRoundDeadline - 1));
  EXPECT_EQ(runner_->Status().phase(), "training");
  clock_.Advance(seconds(2));
  ASSERT_EQ(PollFor("EE", v1::TaskAssignment::EVALUATE).kind(), v1::TaskAssignment::EVALUATE);
  EXPECT_EQ(runner_->NextAssignment("LV", milliseconds(0)).kind(), v1::TaskAssignment::WAIT);
  // Too late: the round closed.
  v1::TaskAssignment lv = ee;
  EXPECT_TRUE(absl::IsFailedPrecondition(runner_->BeginUpload("LV", Header(lv, 100))));
  ASSERT_TRUE(runner_->ReportMetrics("EE", 1, 1, Metrics()).ok());
  // FI never reports: the evaluation deadline publishes with EE's metrics
  // (min_reports 1).
  clock_.Advance(seconds(kEvalDeadline + 1));
  ASSERT_TRUE(AwaitPhase("finished"));
  const std::vector<RoundRecord> rounds = Rounds();
  ASSERT_EQ(rounds.size(), 1u);
  EXPECT_EQ(rounds[0].status, "completed");
  EXPECT_EQ(rounds[0].selected_nodes, 3u);
  EXPECT_EQ(rounds[0].participants, 2u);
  EXPECT_EQ(rounds[0].dropped, 1u);
  EXPECT_DOUBLE_EQ(rounds[0].train_seconds, kRoundDeadline + 1);
  EXPECT_TRUE(torch::allclose(FirstWeights(1), FirstWeights(0) + 2.0f));
}

TEST_F(TaskRunnerTest, TooFewUpdatesByTheDeadlineAbortAndTheModelStaysUnchanged) {
  ASSERT_NO_FATAL_FAILURE(MakeRunner(v1::TRUSTED, [](v1::TaskConfig& t) { t.set_rounds(0); }));
  JoinEeAndFiThenStart();
  v1::TaskAssignment ee = PollFor("EE", v1::TaskAssignment::TRAIN);
  ASSERT_EQ(PollFor("FI", v1::TaskAssignment::TRAIN).kind(), v1::TaskAssignment::TRAIN);
  ASSERT_TRUE(Upload("EE", ee, 1.0f, 100).ok());
  // Past the deadline and the availability window: no new round opens.
  clock_.Advance(seconds(kRoundDeadline + 30));
  ASSERT_TRUE(Eventually([&] { return runner_->Status().rounds_aborted() == 1; }));
  ASSERT_TRUE(AwaitPhase("gathering"));
  const v1::TaskStatus status = runner_->Status();
  EXPECT_EQ(status.latest_version(), 0u);
  EXPECT_EQ(status.rounds_completed(), 0u);
  EXPECT_EQ(registry_->Versions("risk"), (std::vector<uint64_t>{0}));
  const std::vector<RoundRecord> rounds = Rounds();
  ASSERT_EQ(rounds.size(), 1u);
  EXPECT_EQ(rounds[0].status, "aborted");
  EXPECT_EQ(rounds[0].reason,
            "only 1 of 2 selected nodes sent a valid update by the deadline; min_nodes is 2");
  EXPECT_FALSE(fs::exists(work_ + "/models/v1.fct"));
}

TEST_F(TaskRunnerTest, SecureRoundAbortsWhenTooFewNodesAdvertiseKeys) {
  ASSERT_NO_FATAL_FAILURE(MakeRunner(v1::SECURE));
  JoinEeFiAndLvThenStart();
  v1::TaskAssignment a = PollFor("EE", v1::TaskAssignment::ADVERTISE_KEYS);
  ASSERT_EQ(a.kind(), v1::TaskAssignment::ADVERTISE_KEYS);
  EXPECT_EQ(a.secure().threshold(), 3u);  // floor(2/3 x 3) + 1, the default
  EXPECT_EQ(a.secure().total_weight(), 3000u);
  auto session = Session("EE");
  ASSERT_NE(session, nullptr);
  auto keys = session->AdvertiseKeys(a);
  ASSERT_TRUE(keys.ok()) << keys.status();
  ASSERT_TRUE(runner_->AdvertiseKeys("EE", *keys).ok());
  EXPECT_EQ(runner_->NextAssignment("EE", milliseconds(0)).kind(), v1::TaskAssignment::WAIT);
  // FI and LV stay silent through the key phase's deadline.
  clock_.Advance(seconds(kKeyPhaseDeadline + 1));
  ASSERT_TRUE(Eventually([&] { return runner_->Status().rounds_aborted() == 1; }));
  EXPECT_EQ(registry_->Versions("risk"), (std::vector<uint64_t>{0}));
  const std::vector<RoundRecord> rounds = Rounds();
  ASSERT_EQ(rounds.size(), 1u);
  EXPECT_EQ(rounds[0].status, "aborted");
  EXPECT_EQ(rounds[0].reason,
            "only 1 of 3 selected nodes advertised keys by the deadline; the threshold is 3");
  // The key phase is over for this round.
  EXPECT_TRUE(absl::IsFailedPrecondition(runner_->AdvertiseKeys("FI", *keys)));
}

TEST_F(TaskRunnerTest, SecureRoundAbortsWhenANodeDoesNotShareItsKeys) {
  ASSERT_NO_FATAL_FAILURE(MakeRunner(v1::SECURE));
  JoinEeFiAndLvThenStart();
  std::map<std::string, std::unique_ptr<node::SecureAggregationSession>> sessions;
  for (const std::string node : {"EE", "FI", "LV"}) {
    std::unique_ptr<node::SecureAggregationSession> session = Session(node);
    ASSERT_NE(session, nullptr);
    v1::TaskAssignment a = PollFor(node, v1::TaskAssignment::ADVERTISE_KEYS);
    ASSERT_EQ(a.kind(), v1::TaskAssignment::ADVERTISE_KEYS);
    auto keys = session->AdvertiseKeys(a);
    ASSERT_TRUE(keys.ok()) << keys.status();
    ASSERT_TRUE(runner_->AdvertiseKeys(node, *keys).ok());
    sessions[node] = std::move(session);
  }
  // All advertised: the sharing phase opens without waiting for a deadline.
  v1::TaskAssignment share = PollFor("EE", v1::TaskAssignment::SHARE_KEYS);
  ASSERT_EQ(share.kind(), v1::TaskAssignment::SHARE_KEYS);
  EXPECT_EQ(share.secure().advertisements_size(), 3);
  auto shares = sessions["EE"]->ShareKeys(share);
  ASSERT_TRUE(shares.ok()) << shares.status();
  ASSERT_TRUE(runner_->ShareKeys("EE", *shares).ok());
  EXPECT_EQ(runner_->Status().phase(), "sharing keys");
  clock_.Advance(seconds(kKeyPhaseDeadline + 1));
  ASSERT_TRUE(Eventually([&] { return runner_->Status().rounds_aborted() == 1; }));
  // The nodes are still available: the next round opens with fresh keys.
  EXPECT_EQ(PollFor("EE", v1::TaskAssignment::ADVERTISE_KEYS).round_id(), 2u);
  EXPECT_EQ(registry_->Versions("risk"), (std::vector<uint64_t>{0}));
  const std::vector<RoundRecord> rounds = Rounds();
  ASSERT_EQ(rounds.size(), 1u);
  EXPECT_EQ(rounds[0].status, "aborted");
  EXPECT_EQ(rounds[0].reason,
            "only 1 of 3 nodes sent their shares by the deadline; the threshold is 3");
}

TEST_F(TaskRunnerTest, StopWakesALongPollWaitingOnTheClock) {
  ASSERT_NO_FATAL_FAILURE(MakeRunner(v1::TRUSTED));
  runner_->Start();
  // A deadline of the fake clock passes only when it is advanced.
  auto timed_out = std::async(std::launch::async,
                              [&] { return runner_->NextAssignment("EE", milliseconds(10'000)); });
  ASSERT_TRUE(Eventually([&] { return clock_.waiters() >= 2; }));  // driver + long poll
  clock_.Advance(seconds(10));
  ASSERT_EQ(timed_out.wait_for(seconds(20)), std::future_status::ready);
  EXPECT_EQ(timed_out.get().kind(), v1::TaskAssignment::WAIT);

  auto stopped = std::async(std::launch::async,
                            [&] { return runner_->NextAssignment("EE", std::chrono::hours(1)); });
  ASSERT_TRUE(Eventually([&] { return clock_.waiters() >= 2; }));
  runner_->Stop();
  ASSERT_EQ(stopped.wait_for(seconds(20)), std::future_status::ready);
  EXPECT_EQ(stopped.get().kind(), v1::TaskAssignment::WAIT);
  EXPECT_EQ(clock_.waiters(), 0u);
}

// Error paths: refused uploads and reports, each counted, none reaching the
// model.

TEST_F(TaskRunnerTest, RejectedUpdatesAreCountedAndNeverAggregated) {
  ASSERT_NO_FATAL_FAILURE(MakeRunner(v1::TRUSTED));
  JoinEeAndFiThenStart();
  v1::TaskAssignment ee = PollFor("EE", v1::TaskAssignment::TRAIN);
  v1::TaskAssignment fi = PollFor("FI", v1::TaskAssignment::TRAIN);
  ASSERT_EQ(fi.kind(), v1::TaskAssignment::TRAIN);

  // More samples than EE declared when it joined.
  EXPECT_TRUE(absl::IsInvalidArgument(runner_->BeginUpload("EE", Header(ee, 1001))));
  // A stale model version.
  v1::UpdateHeader stale = Header(ee, 10);
  stale.set_model_version(7);
  EXPECT_TRUE(absl::IsFailedPrecondition(runner_->BeginUpload("EE", stale)));
  // An update missing a tensor: refused after the transfer, slot released.
  v1::UpdateHeader h = Header(ee, 100);
  ASSERT_TRUE(runner_->BeginUpload("EE", h).ok());
  absl::Status bad = runner_->FinishUpload("EE", h, SpoolUpdate("EE", 9.0f, true));
  EXPECT_TRUE(absl::IsInvalidArgument(bad)) << bad;
  EXPECT_THAT(std::string(bad.message()),
              ::testing::HasSubstr("update from EE for round 1 rejected"));
  // EE may try again while the round is open; a second one is a duplicate.
  ASSERT_TRUE(Upload("EE", ee, 1.0f, 100).ok());
  EXPECT_TRUE(absl::IsAlreadyExists(runner_->BeginUpload("EE", Header(ee, 100))));
  ASSERT_TRUE(Upload("FI", fi, 1.0f, 100).ok());

  ASSERT_EQ(PollFor("FI", v1::TaskAssignment::EVALUATE).kind(), v1::TaskAssignment::EVALUATE);
  v1::EvaluationMetrics wrong = Metrics();
  wrong.set_roc_auc(1.5);
  EXPECT_TRUE(absl::IsInvalidArgument(runner_->ReportMetrics("FI", 1, 1, wrong)));
  ASSERT_TRUE(runner_->ReportMetrics("FI", 1, 1, Metrics()).ok());
  EXPECT_TRUE(absl::IsAlreadyExists(runner_->ReportMetrics("FI", 1, 1, Metrics())));
  ASSERT_TRUE(runner_->ReportMetrics("EE", 1, 1, Metrics()).ok());
  ASSERT_TRUE(AwaitPhase("finished"));
  const std::vector<RoundRecord> rounds = Rounds();
  ASSERT_EQ(rounds.size(), 1u);
  EXPECT_EQ(rounds[0].status, "completed");
  EXPECT_EQ(rounds[0].rejected_updates, 2u);  // the oversized count and the bad layout
  // Only the two valid updates of 1.0 count; the rejected 9.0 never did.
  EXPECT_TRUE(torch::allclose(FirstWeights(1), FirstWeights(0) + 1.0f));
}

// A report's examples weight the round's mean metrics: no more than the
// hold-out the node declared at join.
TEST_F(TaskRunnerTest, ReportsBeyondTheDeclaredHoldOutAreRefused) {
  ASSERT_NO_FATAL_FAILURE(MakeRunner(v1::TRUSTED));
  JoinEeAndFiThenStart();                                            // no hold-out declared
  ASSERT_TRUE(runner_->Join("EE", 1000, /*holdout_rows=*/50).ok());  // EE's Join replaces it
  v1::TaskAssignment ee = PollFor("EE", v1::TaskAssignment::TRAIN);
  v1::TaskAssignment fi = PollFor("FI", v1::TaskAssignment::TRAIN);
  ASSERT_TRUE(Upload("EE", ee, 1.0f, 100).ok());
  ASSERT_TRUE(Upload("FI", fi, 1.0f, 100).ok());
  ASSERT_EQ(PollFor("EE", v1::TaskAssignment::EVALUATE).kind(), v1::TaskAssignment::EVALUATE);
  absl::Status s = runner_->ReportMetrics("EE", 1, 1, Metrics());  // 100 examples
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_EQ(s.message(), "metrics: examples 100 exceed the 50 hold-out rows EE declared at join");
  v1::EvaluationMetrics fits = Metrics();
  fits.set_examples(50);
  EXPECT_TRUE(runner_->ReportMetrics("EE", 1, 1, fits).ok());
  EXPECT_TRUE(runner_->ReportMetrics("FI", 1, 1, Metrics()).ok());  // FI declared none
}

// The publish gate: a candidate is signed only when enough participants
// report metrics on it, and it is finite, with positive variances and
// changes within max_relative_change. Otherwise the round aborts naming the
// rule, the candidate's file goes, and the global model stays at v0.
class PublishGateTest : public TaskRunnerTest {
 protected:
  // EE (100 samples, every update value `ee`) and FI (300, `fi`) train;
  // `reports` of them report metrics; the ledger's reason of the round.
  std::string RoundOutcome(float ee, float fi, int reports) {
    JoinEeAndFiThenStart();
    v1::TaskAssignment a = PollFor("EE", v1::TaskAssignment::TRAIN);
    v1::TaskAssignment b = PollFor("FI", v1::TaskAssignment::TRAIN);
    EXPECT_TRUE(Upload("EE", a, ee, 100).ok());
    EXPECT_TRUE(Upload("FI", b, fi, 300).ok());
    if (PollFor("EE", v1::TaskAssignment::EVALUATE).kind() == v1::TaskAssignment::EVALUATE) {
      EXPECT_TRUE(runner_->ReportMetrics("EE", 1, 1, Metrics()).ok());
      if (reports == 2) EXPECT_TRUE(runner_->ReportMetrics("FI", 1, 1, Metrics()).ok());
      clock_.Advance(seconds(kEvalDeadline + 1));
    }
    EXPECT_TRUE(Eventually([&] {
      const v1::TaskStatus s = runner_->Status();
      return s.rounds_completed() + s.rounds_aborted() == 1;
    }));
    const std::vector<RoundRecord> rounds = Rounds();
    if (rounds.size() != 1) return "no round recorded";
    return rounds[0].status + ": " + rounds[0].reason;
  }
  void ExpectModelUnchanged() {
    EXPECT_EQ(runner_->Status().latest_version(), 0u);
    EXPECT_EQ(registry_->Versions("risk"), (std::vector<uint64_t>{0}));
    EXPECT_FALSE(fs::exists(work_ + "/models/v1.fct"));
  }
};

TEST_F(PublishGateTest, TooFewEvaluationReportsDiscardTheCandidate) {
  ASSERT_NO_FATAL_FAILURE(MakeRunner(v1::TRUSTED));
  EXPECT_EQ(RoundOutcome(0.01f, 0.01f, 1),
            "aborted: candidate v1 not published: only 1 of 2 contributors reported metrics on "
            "the candidate by the deadline; min_reports is 2");
  ExpectModelUnchanged();
}

// The attacker of point 3: a trusted-mode node sends an update that drives
// the standardization variances negative. Before, the signed model scored
// every declaration NaN; now it is never signed.
TEST_F(PublishGateTest, ANegativeVarianceIsNeverSigned) {
  ASSERT_NO_FATAL_FAILURE(MakeRunner(v1::TRUSTED));
  const std::string outcome = RoundOutcome(0.01f, -4.0f, 2);  // running_var 1 -> -1.99
  EXPECT_NE(outcome.find("aborted: candidate refused: candidate tensor "), std::string::npos)
      << outcome;
  EXPECT_NE(outcome.find("running_var has a variance <= 0"), std::string::npos) << outcome;
  ExpectModelUnchanged();
}

TEST_F(PublishGateTest, AChangeBeyondTheBoundIsNeverSigned) {
  ASSERT_NO_FATAL_FAILURE(MakeRunner(v1::TRUSTED));
  const std::string outcome = RoundOutcome(0.01f, 400.0f, 2);  // 300 x its weight's scale
  EXPECT_NE(outcome.find("aborted: candidate refused: candidate tensor "), std::string::npos)
      << outcome;
  EXPECT_NE(outcome.find("max_relative_change is 50"), std::string::npos) << outcome;
  ExpectModelUnchanged();
}

TEST_F(PublishGateTest, AnHonestRoundPasses) {
  ASSERT_NO_FATAL_FAILURE(MakeRunner(v1::TRUSTED));
  EXPECT_EQ(RoundOutcome(0.01f, 0.02f, 2), "completed: ");
  EXPECT_EQ(runner_->Status().latest_version(), 1u);
}

// A node that re-joins in the middle of a round with more rows gains nothing
// in that round: its sample count stays bounded by the rows it had when the
// round opened. The new rows count from the next round.
TEST_F(TaskRunnerTest, ARejoinDuringARoundChangesNothingBeforeTheNextRound) {
  ASSERT_NO_FATAL_FAILURE(MakeRunner(v1::TRUSTED));
  JoinEeAndFiThenStart();
  v1::TaskAssignment fi = PollFor("FI", v1::TaskAssignment::TRAIN);
  ASSERT_EQ(fi.kind(), v1::TaskAssignment::TRAIN);
  ASSERT_TRUE(runner_->Join("FI", 5000).ok());
  absl::Status s = Upload("FI", fi, 0.01f, 3000);
  EXPECT_EQ(s, absl::InvalidArgumentError(
                   "sample_count 3000 exceeds the 1000 training rows node FI declared when it "
                   "joined"));
  EXPECT_TRUE(Upload("FI", fi, 0.01f, 1000).ok());
}

TEST_F(TaskRunnerTest, RowsAboveTheCapAreRefusedAtJoin) {
  ASSERT_NO_FATAL_FAILURE(MakeRunner(v1::TRUSTED, [](v1::TaskConfig& t) {
    t.set_max_train_rows(5000);
    (*t.mutable_max_train_rows_by_node())["FI"] = 2000;
  }));
  EXPECT_EQ(runner_->Join("EE", 5001),
            absl::InvalidArgumentError("node EE declared 5001 training rows; the task takes "
                                       "1..5000 from an administration (max_train_rows)"));
  EXPECT_EQ(runner_->Join("FI", 2001),
            absl::InvalidArgumentError("node FI declared 2001 training rows; the task takes "
                                       "1..2000 from this administration "
                                       "(max_train_rows_by_node)"));
  EXPECT_TRUE(absl::IsInvalidArgument(runner_->Join("LV", 0)));
  EXPECT_FALSE(runner_->HasJoined("EE"));
  EXPECT_TRUE(runner_->Join("EE", 5000).ok());
  EXPECT_TRUE(runner_->Join("FI", 2000).ok());
}

// With more nodes available than max_nodes, a round selects max_nodes of
// them; the others wait for a later round.
TEST_F(TaskRunnerTest, ARoundSelectsAtMostMaxNodes) {
  ASSERT_NO_FATAL_FAILURE(MakeRunner(v1::TRUSTED, [](v1::TaskConfig& t) { t.set_max_nodes(2); }));
  for (const char* node : {"EE", "FI", "LV"}) ASSERT_TRUE(runner_->Join(node, 1000).ok());
  runner_->Start();
  ASSERT_TRUE(AwaitPhase("training"));
  int training = 0;
  for (const char* node : {"EE", "FI", "LV"}) {
    if (runner_->NextAssignment(node, milliseconds(0)).kind() == v1::TaskAssignment::TRAIN) {
      ++training;
    }
  }
  EXPECT_EQ(training, 2);
}

// Which version is released: the best on the nodes' validation splits so far
// (the lower median over at least three nodes, so one node cannot choose, and
// a round without enough figures changes nothing), not the newest; federated
// early stopping ends the task once it has stayed best for
// early_stopping_rounds rounds with figures; a restarted coordinator keeps
// the choice (it is in the signed manifests).
class ReleaseTest : public TaskRunnerTest {
 protected:
  static v1::EvaluationMetrics WithValidation(double pr_auc, uint64_t positives) {
    v1::EvaluationMetrics m = Metrics();
    m.mutable_validation()->set_pr_auc(pr_auc);
    m.mutable_validation()->set_roc_auc(0.7);
    m.mutable_validation()->set_loss(0.3);
    m.mutable_validation()->set_examples(50);
    m.mutable_validation()->set_positives(positives);
    return m;
  }
  // One round of EE, FI and LV: small updates, then each reports its
  // validation PR-AUC (LV with `lv_positives` positives: 0 withholds its
  // figure); waits until the round is recorded.
  void RunRound(uint32_t completed_before, double ee, double fi, double lv,
                uint64_t lv_positives = 5) {
    std::map<std::string, double> validation{{"EE", ee}, {"FI", fi}, {"LV", lv}};
    for (const auto& [node, unused] : validation) {
      v1::TaskAssignment a = PollFor(node, v1::TaskAssignment::TRAIN);
      ASSERT_EQ(a.kind(), v1::TaskAssignment::TRAIN) << node;
      ASSERT_TRUE(Upload(node, a, 0.001f, 100).ok()) << node;
    }
    for (const auto& [node, pr_auc] : validation) {
      v1::TaskAssignment e = PollFor(node, v1::TaskAssignment::EVALUATE);
      ASSERT_EQ(e.kind(), v1::TaskAssignment::EVALUATE) << node;
      ASSERT_TRUE(runner_
                      ->ReportMetrics(node, e.round_id(), e.model_version(),
                                      WithValidation(pr_auc, node == "LV" ? lv_positives : 5))
                      .ok());
    }
    ASSERT_TRUE(
        Eventually([&] { return runner_->Status().rounds_completed() > completed_before; }));
  }
  uint64_t ReleasedIn(uint64_t version) {
    auto signed_manifest = registry_->ReadManifest("risk", version);
    EXPECT_TRUE(signed_manifest.ok()) << signed_manifest.status();
    if (!signed_manifest.ok()) return 0;
    auto m = manifest::ParseManifest(signed_manifest->json, "manifest");
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? m->released_version : 0;
  }
};

TEST_F(ReleaseTest, TheBestVersionOnValidationIsReleasedAndEarlyStoppingEndsTheTask) {
  ASSERT_NO_FATAL_FAILURE(MakeRunner(v1::TRUSTED, [](v1::TaskConfig& c) {
    c.set_rounds(10);
    c.set_early_stopping_rounds(2);
  }));
  JoinEeFiAndLvThenStart();
  ASSERT_NO_FATAL_FAILURE(RunRound(0, 0.30, 0.32, 0.28));  // v1: median 0.30, best
  EXPECT_EQ(runner_->Status().released_version(), 1u);
  ASSERT_NO_FATAL_FAILURE(RunRound(1, 0.50, 0.45, 0.55));  // v2: median 0.50, best
  EXPECT_EQ(runner_->Status().released_version(), 2u);
  // v3: LV lies (1.0) for a version the others find worse; the median, 0.40,
  // keeps v2 released.
  ASSERT_NO_FATAL_FAILURE(RunRound(2, 0.40, 0.35, 1.0));
  const v1::TaskStatus after_lie = runner_->Status();
  EXPECT_EQ(after_lie.latest_version(), 3u);
  EXPECT_EQ(after_lie.released_version(), 2u);
  EXPECT_EQ(ReleasedIn(3), 2u);
  // v4: LV withholds its figure (no positives) while EE and FI would release
  // it: two figures are not enough; nothing changes, nothing is counted.
  ASSERT_NO_FATAL_FAILURE(RunRound(3, 0.9, 0.9, 0.0, /*lv_positives=*/0));
  EXPECT_EQ(runner_->Status().released_version(), 2u);
  EXPECT_NE(runner_->Status().phase(), "finished");
  // v5: still not better; two rounds with figures since v2 end the task.
  ASSERT_NO_FATAL_FAILURE(RunRound(4, 0.45, 0.44, 0.46));
  ASSERT_TRUE(AwaitPhase("finished"));
  const v1::TaskStatus done = runner_->Status();
  EXPECT_EQ(done.rounds_completed(), 5u);  // of 10
  EXPECT_EQ(done.latest_version(), 5u);
  EXPECT_EQ(done.released_version(), 2u);
  EXPECT_EQ(ReleasedIn(1), 1u);
  EXPECT_EQ(ReleasedIn(2), 2u);
  EXPECT_EQ(ReleasedIn(4), 2u);
  EXPECT_EQ(ReleasedIn(5), 2u);
  auto v5 = registry_->ReadManifest("risk", 5);
  ASSERT_TRUE(v5.ok());
  EXPECT_NE(v5->json.find(R"("best_validation_pr_auc":0.5)"), std::string::npos) << v5->json;
  EXPECT_NE(v5->json.find(R"("validation_pr_auc":0.45)"), std::string::npos) << v5->json;
  EXPECT_NE(v5->json.find(R"("rounds_without_improvement":2)"), std::string::npos) << v5->json;
  auto v2 = registry_->ReadManifest("risk", 2);
  ASSERT_TRUE(v2.ok());
  auto v2_manifest = manifest::ParseManifest(v2->json, "v2");
  ASSERT_TRUE(v2_manifest.ok());
  EXPECT_NE(v5->json.find(v2_manifest->weights_sha256), std::string::npos);

  // A restarted coordinator reads the choice back from the latest manifest.
  runner_->Stop();
  runner_.reset();
  ASSERT_NO_FATAL_FAILURE(MakeRunner(v1::TRUSTED, [](v1::TaskConfig& c) { c.set_rounds(10); }));
  EXPECT_EQ(runner_->Status().released_version(), 2u);
  EXPECT_EQ(runner_->Status().latest_version(), 5u);
}

// Without validation figures (no node has a validation split) the newest
// version is released, as before versions were chosen.
TEST_F(ReleaseTest, WithoutValidationTheNewestVersionIsReleased) {
  ASSERT_NO_FATAL_FAILURE(MakeRunner(v1::TRUSTED, [](v1::TaskConfig& c) { c.set_rounds(2); }));
  JoinEeFiAndLvThenStart();
  for (uint32_t r = 0; r < 2; ++r) {
    for (const char* node : {"EE", "FI", "LV"}) {
      v1::TaskAssignment a = PollFor(node, v1::TaskAssignment::TRAIN);
      ASSERT_TRUE(Upload(node, a, 0.001f, 100).ok());
    }
    for (const char* node : {"EE", "FI", "LV"}) {
      v1::TaskAssignment e = PollFor(node, v1::TaskAssignment::EVALUATE);
      ASSERT_TRUE(runner_->ReportMetrics(node, e.round_id(), e.model_version(), Metrics()).ok());
    }
    ASSERT_TRUE(Eventually([&] { return runner_->Status().rounds_completed() > r; }));
  }
  EXPECT_EQ(runner_->Status().released_version(), 2u);
  EXPECT_EQ(ReleasedIn(2), 2u);
}

}  // namespace
}  // namespace fedcustoms::coordinator
