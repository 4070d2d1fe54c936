// The whole federation in one test process: a real coordinator and three real
// nodes over mutual TLS on loopback, real LibTorch training, a real SQLite
// ledger and registry on disk, then an analyst pull.
#include <gmock/gmock.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <torch/torch.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "analyst/model/declaration_scorer.h"
#include "analyst/model/model_puller.h"
#include "analyst/model/pulled_model.h"
#include "analyst/report/group_report.h"
#include "analyst/status/coordinator_status.h"
#include "common/crypto/ed25519.h"
#include "common/crypto/sha256.h"
#include "common/data/declaration_schema.h"
#include "common/io/atomic_file.h"
#include "common/manifest/model_manifest.h"
#include "common/pki/certificate_authority.h"
#include "common/pki/dev_pki.h"
#include "common/pki/revocation_list.h"
#include "common/synth/declarations_synth.h"
#include "common/task/risk_task.h"
#include "common/tensor/chunker.h"
#include "common/tensor/named_tensors.h"
#include "common/tls/credentials.h"
#include "common/training/risk_evaluator.h"
#include "coordinator/config/coordinator_config.h"
#include "coordinator/coordinator.h"
#include "coordinator/registry/model_registry.h"
#include "coordinator/rounds/model_snapshot.h"
#include "fedcustoms/v1/admin_service.grpc.pb.h"
#include "fedcustoms/v1/analyst_service.grpc.pb.h"
#include "fedcustoms/v1/node_service.grpc.pb.h"
#include "node/config/node_config.h"
#include "node/local_data.h"
#include "node/node.h"
#include "tests/support/federation_dir.h"
#include "tests/support/federation_suite.h"
#include "tests/support/loopback_federation.h"

namespace fedcustoms {
namespace {
namespace fs = std::filesystem;

class FederationTest : public testing_support::FederationSuite<FederationTest> {
 protected:
  static void SetUpTestSuite() {
    MakeRoot(testing_support::MakeFederationWithData("federation", {"EE", "FI", "LV"},
                                                     {"EE", "FI", "LV"}, 4000, 5));
  }
  std::string Pki(const std::string& file) const { return *root_ + "/pki/" + file; }

  // The analyst's pull options against the coordinator on `port`, into
  // <root>/<out_dir>.
  analyst::PullOptions AnalystPull(int port, const std::string& out_dir) const {
    analyst::PullOptions pull;
    pull.coordinator_address = absl::StrCat("localhost:", port);
    pull.tls = Identity("analyst");
    pull.coordinator_public_key = Pki("coordinator-signing.pub");
    pull.out_dir = *root_ + "/" + out_dir;
    return pull;
  }

  // A coordinator on 127.0.0.1:0 with its own registry and state directories.
  // Tests of single-node behaviour use mode TRUSTED (a secure sum needs two).
  std::unique_ptr<coordinator::Coordinator> StartCoordinator(
      const std::string& name, uint32_t min_nodes, uint32_t rounds, uint32_t deadline_seconds = 60,
      v1::AggregationMode mode = v1::TRUSTED,
      v1::ServerStrategyConfig::Kind strategy = v1::ServerStrategyConfig::FEDAVG,
      const std::function<void(v1::TaskConfig&)>& tweak = nullptr) {
    v1::CoordinatorConfig c = testing_support::LoopbackCoordinatorConfig(
        *root_ + "/pki", *root_ + "/" + name, *root_ + "/data/EE/declarations.schema.json", mode);
    v1::TaskConfig* t = c.mutable_tasks(0);
    t->set_min_nodes(min_nodes);
    t->set_rounds(rounds);
    t->set_round_deadline_seconds(deadline_seconds);
    t->set_eval_deadline_seconds(30);
    t->set_gather_seconds(0);
    t->mutable_training()->set_local_epochs(1);
    t->mutable_training()->set_batch_size(128);
    t->mutable_strategy()->set_kind(strategy);
    if (tweak) tweak(*t);
    return StartFrom(c);
  }

  // A TRUSTED coordinator of one round for one node (EE), which takes it at
  // once, with `stream_idle_seconds`; `round_deadline_seconds` 0 keeps the
  // default.
  std::unique_ptr<coordinator::Coordinator> StartForOneUploader(const std::string& run,
                                                                uint32_t stream_idle_seconds,
                                                                uint32_t round_deadline_seconds) {
    v1::CoordinatorConfig c = testing_support::LoopbackCoordinatorConfig(
        *root_ + "/pki", *root_ + "/" + run, *root_ + "/data/EE/declarations.schema.json",
        v1::TRUSTED);
    c.set_stream_idle_seconds(stream_idle_seconds);
    v1::TaskConfig* t = c.mutable_tasks(0);
    t->set_min_nodes(1);
    t->set_rounds(1);
    t->set_gather_seconds(0);
    if (round_deadline_seconds > 0) t->set_round_deadline_seconds(round_deadline_seconds);
    return StartFrom(c);
  }

  static std::unique_ptr<coordinator::Coordinator> StartFrom(const v1::CoordinatorConfig& c) {
    auto config = coordinator::FinalizeCoordinatorConfig(c, "test", "");
    EXPECT_TRUE(config.ok()) << config.status();
    auto coordinator = coordinator::Coordinator::Create(*config);
    EXPECT_TRUE(coordinator.ok()) << coordinator.status();
    EXPECT_TRUE((*coordinator)->Start().ok());
    return *std::move(coordinator);
  }

  v1::NodeConfig NodeConfigFor(const std::string& admin, int port, const std::string& name) {
    const v1::NodeConfig n = testing_support::LoopbackNodeConfig(*root_, admin, port, name, "risk");
    auto config = node::FinalizeNodeConfig(n, "test", "");
    EXPECT_TRUE(config.ok()) << config.status();
    return *config;
  }

  template <typename Stub>
  std::unique_ptr<typename Stub::Stub> StubAs(const std::string& identity, int port) {
    auto credentials = tls::MakeChannelCredentials(Identity(identity));
    EXPECT_TRUE(credentials.ok()) << credentials.status();
    return Stub::NewStub(grpc::CreateChannel(absl::StrCat("localhost:", port), *credentials));
  }

  // Joins task risk as the stub's node, declaring `train_rows` (at least 1:
  // a node without training rows is not enrolled); returns the node id the
  // coordinator read from the certificate.
  static std::string Join(v1::NodeService::Stub& stub, const coordinator::Coordinator& coordinator,
                          uint64_t train_rows = 1000) {
    grpc::ClientContext context;
    v1::JoinRequest join;
    join.add_tasks("risk");
    join.set_feature_schema_hash(coordinator.runner("risk")->feature_schema_hash());
    join.mutable_data()->set_train_rows(train_rows);
    v1::JoinResponse response;
    grpc::Status s = stub.Join(&context, join, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response.node_id();
  }

  // Polls task risk as a node would (long-polls of `wait_seconds`) until an
  // assignment of `kind` for a round after `after_round` comes or `polls`
  // polls passed; returns the last assignment.
  static v1::TaskAssignment PollFor(v1::NodeService::Stub& stub, v1::TaskAssignment::Kind kind,
                                    uint64_t after_round = 0, int polls = 20,
                                    uint32_t wait_seconds = 2) {
    v1::TaskAssignment a;
    for (int i = 0; i < polls; ++i) {
      grpc::ClientContext context;
      v1::GetTaskRequest request;
      request.set_task("risk");
      request.set_wait_seconds(wait_seconds);
      EXPECT_TRUE(stub.GetTask(&context, request, &a).ok());
      if (a.kind() == kind && a.round_id() > after_round) break;
    }
    return a;
  }

  // One whole upload: `header`, then `bytes` as a single chunk sealed with
  // their SHA-256 (one bit flipped when `corrupt_sha`).
  static grpc::Status Upload(v1::NodeService::Stub& stub, const v1::UpdateHeader& header,
                             const std::string& bytes, bool corrupt_sha = false,
                             v1::UploadUpdateResponse* response = nullptr) {
    grpc::ClientContext context;
    v1::UploadUpdateResponse ignored;
    auto writer = stub.UploadUpdate(&context, response ? response : &ignored);
    v1::UploadUpdateRequest message;
    *message.mutable_header() = header;
    writer->Write(message);
    crypto::Sha256 hasher;
    hasher.Update(bytes.data(), bytes.size());
    const auto digest = hasher.Final();
    std::string sha(digest.begin(), digest.end());
    if (corrupt_sha) sha[0] ^= 1;
    v1::UploadUpdateRequest chunk;
    chunk.mutable_chunk()->set_index(0);
    chunk.mutable_chunk()->set_data(bytes);
    chunk.mutable_chunk()->set_sha256(sha);
    chunk.mutable_chunk()->set_total_bytes(bytes.size());
    writer->Write(chunk);
    writer->WritesDone();
    return writer->Finish();
  }

  static v1::UpdateHeader Header(uint64_t round, uint64_t version, uint64_t samples) {
    v1::UpdateHeader h;
    h.set_task("risk");
    h.set_round_id(round);
    h.set_model_version(version);
    h.set_sample_count(samples);
    return h;
  }

  // An update of 0.25 for every aggregatable tensor of registry version 0.
  static tensor::NamedTensors QuarterUpdate(const coordinator::Coordinator& coordinator) {
    auto global = coordinator.registry().LoadWeights("risk", 0);
    EXPECT_TRUE(global.ok()) << global.status();
    tensor::NamedTensors update;
    if (!global.ok()) return update;
    for (const auto& [name, t] : *global) {
      if (tensor::IsAggregatable(t)) update.emplace_back(name, torch::full_like(t, 0.25));
    }
    return update;
  }
};

TEST_F(FederationTest, ThreeNodesTwoRoundsPublishSignedVersionsAndLedger) {
  auto coordinator = StartCoordinator("two-rounds", 3, 2, 60, v1::SECURE);
  const int port = coordinator->Port();
  ASSERT_GT(port, 0);
  std::vector<std::unique_ptr<node::Node>> nodes;
  uint64_t total_train_rows = 0;
  for (const std::string admin : {"EE", "FI", "LV"}) {
    auto n = node::Node::Create(NodeConfigFor(admin, port, "two-rounds"));
    ASSERT_TRUE(n.ok()) << n.status();
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

  // Each node keeps the last two models it downloaded, not every one.
  std::set<std::string> kept;
  for (const auto& e : fs::directory_iterator(*root_ + "/two-rounds/node-EE/models")) {
    kept.insert(e.path().filename().string());
  }
  EXPECT_EQ(kept, (std::set<std::string>{"risk-v1.fct", "risk-v2.fct"}));

  // Registry: v0 (initial) and one version per round, each signed and intact.
  EXPECT_EQ(coordinator->registry().Versions("risk"), (std::vector<uint64_t>{0, 1, 2}));
  for (uint64_t v : {1, 2}) {
    auto signed_manifest = coordinator->registry().ReadManifest("risk", v);
    ASSERT_TRUE(signed_manifest.ok()) << signed_manifest.status();
    auto m = manifest::ParseManifest(signed_manifest->json, "test");
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m->parent, v - 1);
    EXPECT_EQ(m->contributing_nodes, 3u);
    EXPECT_EQ(m->total_samples, total_train_rows);
    EXPECT_EQ(m->aggregation_mode, "secure");
    auto metrics = nlohmann::json::parse(m->metrics_json);
    EXPECT_GT(metrics.value("pr_auc", 0.0), 0.0);
    EXPECT_TRUE(coordinator->registry().LoadWeights("risk", v).ok());
  }
  // The standardization statistics arrive whole in the first round although
  // they move far beyond the clip (the mean of log1p(declared_value) is about
  // 9): v1 holds the sample-weighted mean of the nodes' own column means and
  // variances, up to the fixed-point error.
  {
    auto v0 = coordinator->registry().LoadWeights("risk", 0);
    auto v1 = coordinator->registry().LoadWeights("risk", 1);
    ASSERT_TRUE(v0.ok() && v1.ok());
    at::Tensor mean_sum, var_sum;
    double rows = 0;
    for (const std::string admin : {"EE", "FI", "LV"}) {
      auto data = node::LoadLocalData(NodeConfigFor(admin, port, "two-rounds"), true);
      ASSERT_TRUE(data.ok()) << data.status();
      const auto& train = data->split.train;
      const int64_t width = static_cast<int64_t>(data->table.numeric_width());
      const at::Tensor numeric = torch::from_blob(const_cast<float*>(data->table.numeric.data()),
                                                  {static_cast<int64_t>(data->table.rows), width})
                                     .index_select(0, torch::tensor(train));
      const double n = static_cast<double>(train.size());
      const at::Tensor m = numeric.mean(0).to(torch::kFloat64) * n;
      const at::Tensor v = numeric.var(0, /*unbiased=*/true).to(torch::kFloat64) * n;
      mean_sum = mean_sum.defined() ? mean_sum + m : m;
      var_sum = var_sum.defined() ? var_sum + v : v;
      rows += n;
    }
    auto find = [](const tensor::NamedTensors& state, const std::string& name) {
      for (const auto& [n, t] : state) {
        if (n == name) return t.to(torch::kFloat64);
      }
      return at::Tensor();
    };
    const at::Tensor mean = find(*v1, "standardize.running_mean");
    const at::Tensor var = find(*v1, "standardize.running_var");
    ASSERT_TRUE(mean.defined() && var.defined());
    EXPECT_GT(mean.max().item<double>(), 6.0) << "a column mean far beyond the clip";
    EXPECT_TRUE(torch::allclose(mean, mean_sum / rows, 0, 1e-3)) << mean << mean_sum / rows;
    EXPECT_TRUE(torch::allclose(var, var_sum / rows, 0, 1e-3)) << var << var_sum / rows;
    EXPECT_TRUE(torch::equal(find(*v0, "standardize.running_mean"), torch::zeros_like(mean)));
  }

  // Ledger: two completed rounds with counts only. In mode secure the sample
  // total is the unmasked sum of the masked counts.
  auto rounds = coordinator->ledger().List("risk");
  ASSERT_TRUE(rounds.ok());
  ASSERT_EQ(rounds->size(), 2u);
  for (const coordinator::RoundRecord& r : *rounds) {
    EXPECT_EQ(r.status, "completed");
    EXPECT_EQ(r.mode, "secure");
    EXPECT_EQ(r.participants, 3u);
    EXPECT_EQ(r.dropped, 0u);
    EXPECT_EQ(r.samples, total_train_rows);
    EXPECT_EQ(r.result_version, r.base_version + 1);
    EXPECT_NE(r.metrics_json.find("pr_auc"), std::string::npos);
  }
  // Random-control evaluation: each administration's counts for each round,
  // split by the synthetic data's selection column (random / risk), in the
  // ledger and, for the last round, in the admin status.
  std::map<std::string, uint64_t> holdout_rows;
  for (const std::string admin : {"EE", "FI", "LV"}) {
    auto data = node::LoadLocalData(NodeConfigFor(admin, port, "two-rounds"), true);
    ASSERT_TRUE(data.ok());
    holdout_rows[admin] = data->split.holdout.size();
  }
  for (const coordinator::RoundRecord& r : *rounds) {
    auto evaluations = coordinator->ledger().SelectionEvaluations("risk", r.round_id);
    ASSERT_TRUE(evaluations.ok()) << evaluations.status();
    ASSERT_EQ(evaluations->size(), 3u);
    for (const auto& [admin, json] : *evaluations) {
      v1::SelectionEvaluation e;
      ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &e).ok()) << json;
      EXPECT_EQ(e.budget_percent(), 5u);
      EXPECT_EQ(e.random().rows() + e.risk_selected().rows(), holdout_rows[admin]) << admin;
      // About a third of the synthetic controls are random.
      EXPECT_GT(e.random().rows(), holdout_rows[admin] / 5) << admin;
      EXPECT_GT(e.risk_selected().rows(), holdout_rows[admin] / 2) << admin;
      EXPECT_LE(e.random().flagged_positives(), e.random().flagged());
      EXPECT_GT(e.random().positives() + e.risk_selected().positives(), 0u) << admin;
    }
  }
  const v1::TaskStatus status = coordinator->runner("risk")->Status();
  ASSERT_EQ(status.selection_evaluations_size(), 3);
  EXPECT_EQ(status.selection_evaluations(0).node(), "EE");
  EXPECT_EQ(status.selection_evaluations(0).round_id(), rounds->back().round_id);
  // The pooled counts are in the published metrics.
  EXPECT_EQ(status.latest_metrics().selection().random().rows() +
                status.latest_metrics().selection().risk_selected().rows(),
            holdout_rows["EE"] + holdout_rows["FI"] + holdout_rows["LV"]);
  // What `fedcustoms status` prints, over mutual TLS with the admin
  // certificate: the estimates per administration and pooled.
  auto fetched =
      analyst::FetchCoordinatorStatus(absl::StrCat("localhost:", port), Identity("admin"));
  ASSERT_TRUE(fetched.ok()) << fetched.status();
  const nlohmann::json shown = analyst::CoordinatorStatusToJson(*fetched);
  const nlohmann::json& control = shown["tasks"][0]["random_control"];
  for (const char* who : {"EE", "FI", "LV", "all"}) {
    ASSERT_TRUE(control.contains(who)) << shown.dump();
    EXPECT_TRUE(control[who]["random"]["unbiased"].get<bool>());
    const nlohmann::json& rate = control[who]["random"]["non_compliance_rate"];
    EXPECT_LE(rate["low"].get<double>(), rate["value"].get<double>());
    EXPECT_GE(rate["high"].get<double>(), rate["value"].get<double>());
  }
  EXPECT_EQ(control["all"]["random"]["rows"].get<uint64_t>() +
                control["all"]["risk_selected"]["rows"].get<uint64_t>(),
            holdout_rows["EE"] + holdout_rows["FI"] + holdout_rows["LV"]);
  EXPECT_EQ(analyst::FetchCoordinatorStatus(absl::StrCat("localhost:", port), Identity("EE"))
                .status()
                .code(),
            absl::StatusCode::kPermissionDenied);

  // Each node kept its own record of the global model's hold-out metrics.
  for (const std::string admin : {"EE", "FI", "LV"}) {
    std::ifstream in(absl::StrCat(*root_, "/two-rounds/node-", admin, "/metrics.jsonl"));
    int lines = 0;
    for (std::string line; std::getline(in, line);) ++lines;
    EXPECT_EQ(lines, 2) << admin;
  }

  // Analyst pull: verified, then loadable by PyTorch in Python.
  analyst::PullOptions pull = AnalystPull(port, "pulled");
  auto pulled = analyst::PullModel(pull);
  ASSERT_TRUE(pulled.ok()) << pulled.status();
  EXPECT_EQ(pulled->version, 2u);
  ASSERT_TRUE(analyst::VerifyPulledModel(pull.out_dir, pull.coordinator_public_key).ok());

  // The pulled model, rebuilt from its manifest, scores declarations as the
  // registry's weights do; a schema with other features is refused.
  {
    auto data = node::LoadLocalData(NodeConfigFor("EE", port, "two-rounds"), true);
    ASSERT_TRUE(data.ok()) << data.status();
    auto model = analyst::LoadPulledModel(pull.out_dir, pull.coordinator_public_key, data->schema);
    ASSERT_TRUE(model.ok()) << model.status();
    EXPECT_EQ(model->spec.kind, v1::TASK_RISK);
    auto scorer = analyst::DeclarationScorer::Create(*model);
    ASSERT_TRUE(scorer.ok()) << scorer.status();
    auto scores = scorer->Score(data->table, data->split.holdout);
    ASSERT_TRUE(scores.ok()) << scores.status();
    auto weights = coordinator->registry().LoadWeights("risk", 2);
    ASSERT_TRUE(weights.ok());
    v1::RiskModelConfig risk_config;  // the defaults this test's task runs with
    ASSERT_TRUE(task::FinalizeRiskModelConfig(&risk_config).ok());
    models::RiskMlp reference = task::BuildRiskModel(data->schema, risk_config, 1);
    ASSERT_TRUE(tensor::LoadState(*reference, *weights).ok());
    const std::vector<float> expected =
        training::PredictRisk(reference, data->table, data->split.holdout);
    ASSERT_EQ(scores->size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) ASSERT_EQ((*scores)[i], expected[i]) << i;

    // The node's random-control counts of the last round, recomputed here
    // from the published version and the node's own hold-out: all eight
    // numbers agree.
    std::vector<float> labels;
    std::vector<report::SelectionKind> kinds;
    for (int64_t row : data->split.holdout) {
      labels.push_back(data->table.labels[row]);
      kinds.push_back(data->selection[row]);
    }
    const report::SelectionTally tally = report::CountBySelection(expected, labels, kinds, 0.05);
    auto recorded = coordinator->ledger().SelectionEvaluations("risk", rounds->back().round_id);
    ASSERT_TRUE(recorded.ok());
    v1::SelectionEvaluation ee;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(recorded->front().second, &ee).ok());
    ASSERT_EQ(recorded->front().first, "EE");
    for (auto [want, got] : {std::pair{&tally.random, &ee.random()},
                             std::pair{&tally.risk_selected, &ee.risk_selected()}}) {
      EXPECT_EQ(got->rows(), want->rows);
      EXPECT_EQ(got->positives(), want->positives);
      EXPECT_EQ(got->flagged(), want->flagged);
      EXPECT_EQ(got->flagged_positives(), want->flagged_positives);
    }
    EXPECT_GT(tally.random.flagged, 0u);

    v1::DeclarationSchema other = data->schema;
    for (v1::ColumnSpec& c : *other.mutable_columns()) {
      if (c.name() == "office") c.set_hash_buckets(128);
    }
    auto refused = analyst::LoadPulledModel(pull.out_dir, pull.coordinator_public_key, other);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_NE(refused.status().message().find("trained on features hashing to"), std::string::npos)
        << refused.status();
  }

  auto expected = coordinator->registry().LoadWeights("risk", 2);
  ASSERT_TRUE(expected.ok());
  if (std::system("/usr/bin/python3 -c 'import torch' 2>/dev/null") != 0) {
    GTEST_SKIP() << "/usr/bin/python3 has no torch (apt-get install python3-torch)";
  }
  const std::string script = absl::StrCat(
      "/usr/bin/python3 -c \"import torch; d = torch.load('", pull.out_dir,
      "/model.pt'); print(';'.join(k + ':' + 'x'.join(str(s) for s in v.shape) for k, v in "
      "sorted(d.items())))\"");
  FILE* pipe = popen(script.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof(buffer), pipe)) output.append(buffer, n);
  ASSERT_EQ(pclose(pipe), 0) << output;
  std::string want;
  for (const auto& [name, t] : *expected) {
    if (!want.empty()) want += ";";
    want += name + ":";
    for (int64_t i = 0; i < t.dim(); ++i) want += (i ? "x" : "") + std::to_string(t.size(i));
  }
  EXPECT_EQ(output.substr(0, output.find_last_not_of('\n') + 1), want);
  // A restarted coordinator still shows the last round's counts (from the
  // ledger), so `fedcustoms status` after a restart is not empty.
  coordinator->Shutdown();
  coordinator.reset();
  auto restarted = StartCoordinator("two-rounds", 3, 2, 60, v1::SECURE);
  const v1::TaskStatus after = restarted->runner("risk")->Status();
  ASSERT_EQ(after.selection_evaluations_size(), 3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(after.selection_evaluations(i).DebugString(),
              status.selection_evaluations(i).DebugString());
  }
  EXPECT_EQ(after.latest_metrics().selection().DebugString(),
            status.latest_metrics().selection().DebugString());
  restarted->Shutdown();
}

// The wire file nodes download survives a restart only while it still matches
// the signed manifest: a damaged or missing one is rebuilt from the registry,
// and leftovers (an aborted candidate, a crashed write) are removed.
// The node decides whether its update may leave in the clear: against a
// coordinator in mode TRUSTED, a node left at the default (SECURE) stops
// before training and sends nothing; one whose administration consented
// (aggregation_mode TRUSTED) takes part. The rounds run FedAdam, whose state
// is published with each version and restored when the coordinator restarts.
TEST_F(FederationTest, ClearUpdatesNeedTheNodesConsentAndFedAdamStateSurvivesRestart) {
  {
    auto coordinator =
        StartCoordinator("consent", 1, 2, 5, v1::TRUSTED, v1::ServerStrategyConfig::FEDADAM);
    auto refusing = node::Node::Create(NodeConfigFor("EE", coordinator->Port(), "consent"));
    ASSERT_TRUE(refusing.ok()) << refusing.status();
    absl::Status refused = (*refusing)->Run();
    EXPECT_EQ(refused.code(), absl::StatusCode::kPermissionDenied) << refused;
    EXPECT_NE(std::string(refused.message()).find("allows only aggregation_mode SECURE"),
              std::string::npos)
        << refused;
    EXPECT_EQ(coordinator->registry().Versions("risk"), (std::vector<uint64_t>{0}));

    v1::NodeConfig consenting = NodeConfigFor("FI", coordinator->Port(), "consent");
    consenting.set_aggregation_mode(v1::TRUSTED);
    auto node = node::Node::Create(consenting);
    ASSERT_TRUE(node.ok()) << node.status();
    EXPECT_TRUE((*node)->Run().ok());
    EXPECT_EQ(coordinator->registry().Versions("risk"), (std::vector<uint64_t>{0, 1, 2}));
    for (uint64_t v : {0, 1, 2}) {
      auto m = manifest::ParseManifest(coordinator->registry().ReadManifest("risk", v)->json, "t");
      ASSERT_TRUE(m.ok());
      EXPECT_EQ(m->strategy, "fedadam");
      EXPECT_EQ(m->server_state_sha256.size(), 64u) << "version " << v;
    }
    auto rounds = coordinator->ledger().List("risk");
    ASSERT_TRUE(rounds.ok());
    ASSERT_FALSE(rounds->empty());
    EXPECT_EQ(rounds->back().strategy, "fedadam");
    EXPECT_EQ(rounds->back().mode, "trusted");
  }
  // A restart restores the FedAdam moments of version 2; a damaged state file
  // stops the restart with a message instead of silently starting over.
  StartCoordinator("consent", 1, 3, 60, v1::TRUSTED, v1::ServerStrategyConfig::FEDADAM);
  {
    std::fstream f(*root_ + "/consent/registry/risk/v00000002/server_state.pt",
                   std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(200);
    f.put('\x33');
  }
  v1::CoordinatorConfig c = testing_support::LoopbackCoordinatorConfig(
      *root_ + "/pki", *root_ + "/consent", *root_ + "/data/EE/declarations.schema.json",
      v1::TRUSTED);
  v1::TaskConfig* t = c.mutable_tasks(0);
  t->mutable_training()->set_batch_size(128);
  t->mutable_strategy()->set_kind(v1::ServerStrategyConfig::FEDADAM);
  auto config = coordinator::FinalizeCoordinatorConfig(c, "test", "");
  ASSERT_TRUE(config.ok()) << config.status();
  auto damaged = coordinator::Coordinator::Create(*config);
  ASSERT_FALSE(damaged.ok());
  EXPECT_NE(std::string(damaged.status().message()).find("cannot restore the fedadam state"),
            std::string::npos)
      << damaged.status();
}

TEST_F(FederationTest, RestartRebuildsADamagedOrMissingWireFile) {
  const std::string models = *root_ + "/restart/state/models/risk";
  const std::string wire = models + "/v0.fct";
  std::string signed_sha;
  {
    auto coordinator = StartCoordinator("restart", 1, 1);
    auto m = manifest::ParseManifest(coordinator->registry().ReadManifest("risk", 0)->json, "v0");
    ASSERT_TRUE(m.ok());
    signed_sha = m->wire_sha256;
  }
  ASSERT_EQ(*crypto::Sha256File(wire), signed_sha);
  {
    std::fstream damage(wire, std::ios::in | std::ios::out | std::ios::binary);
    damage.seekp(100);
    damage.put('\x7f');
  }
  ASSERT_TRUE(io::WriteFileAtomically(models + "/v1.fct", "aborted candidate").ok());
  ASSERT_TRUE(io::WriteFileAtomically(models + "/v0.fct.tmp.1.2", "crashed write").ok());
  ASSERT_NE(*crypto::Sha256File(wire), signed_sha);
  StartCoordinator("restart", 1, 1).reset();
  EXPECT_EQ(*crypto::Sha256File(wire), signed_sha);
  EXPECT_FALSE(fs::exists(models + "/v1.fct"));
  EXPECT_FALSE(fs::exists(models + "/v0.fct.tmp.1.2"));
  fs::remove(wire);
  StartCoordinator("restart", 1, 1).reset();
  EXPECT_EQ(*crypto::Sha256File(wire), signed_sha);

  // A version published by round 7 that the ledger never recorded (a crash
  // between the two): the restarted coordinator does not reuse round ids up
  // to 7 and counts the round as done.
  {
    auto signer = crypto::Ed25519Signer::Create(Pki("coordinator-signing.key"));
    auto verifier = crypto::Ed25519Verifier::Create(Pki("coordinator-signing.pub"));
    ASSERT_TRUE(signer.ok() && verifier.ok());
    auto registry = coordinator::ModelRegistry::Open(*root_ + "/restart/registry", signer->get(),
                                                     verifier->get());
    ASSERT_TRUE(registry.ok()) << registry.status();
    auto m = manifest::ParseManifest((*registry)->ReadManifest("risk", 0)->json, "v0");
    ASSERT_TRUE(m.ok());
    m->version = 1;
    m->has_parent = true;
    m->parent = 0;
    m->round_id = 7;
    auto weights = (*registry)->LoadWeights("risk", 0);
    ASSERT_TRUE(weights.ok());
    ASSERT_TRUE((*registry)->Publish(*m, *weights).ok());
  }
  auto restarted = StartCoordinator("restart", 1, 3);
  const v1::TaskStatus status = restarted->runner("risk")->Status();
  EXPECT_EQ(status.latest_version(), 1u);
  EXPECT_EQ(status.round_id(), 7u);
  EXPECT_EQ(status.rounds_completed(), 1u);
}

TEST_F(FederationTest, TamperedPulledModelIsRefused) {
  auto coordinator = StartCoordinator("tamper", 1, 0);
  analyst::PullOptions pull = AnalystPull(coordinator->Port(), "tamper/pulled");
  ASSERT_TRUE(analyst::PullModel(pull).ok());
  {
    std::fstream f(pull.out_dir + "/model.pt", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x5a');
  }
  absl::Status weights =
      analyst::VerifyPulledModel(pull.out_dir, pull.coordinator_public_key).status();
  EXPECT_TRUE(absl::IsDataLoss(weights)) << weights;
  EXPECT_NE(weights.message().find("does not match the signed manifest"), std::string::npos);

  ASSERT_TRUE(analyst::PullModel(pull).ok());
  auto json = io::ReadFile(pull.out_dir + "/manifest.json");
  ASSERT_TRUE(json.ok());
  std::string forged = *json;
  forged.replace(forged.find("\"total_samples\":0"), 17, "\"total_samples\":9");
  ASSERT_TRUE(io::WriteFileAtomically(pull.out_dir + "/manifest.json", forged).ok());
  absl::Status manifest =
      analyst::VerifyPulledModel(pull.out_dir, pull.coordinator_public_key).status();
  EXPECT_TRUE(absl::IsPermissionDenied(manifest)) << manifest;
}

// `fedcustoms pull` takes the version the latest signed manifest names as
// released (the best on validation), and the newest only when asked.
TEST_F(FederationTest, PullTakesTheReleasedVersionByDefault) {
  StartCoordinator("release", 1, 0).reset();  // v0
  auto signer = crypto::Ed25519Signer::Create(Pki("coordinator-signing.key"));
  auto verifier = crypto::Ed25519Verifier::Create(Pki("coordinator-signing.pub"));
  ASSERT_TRUE(signer.ok() && verifier.ok());
  std::map<uint64_t, std::string> sha;
  // Publishes `version` (other weights than its parent) whose release names
  // `released` with weights hashing to `released_sha` ("": no release
  // object, the version releases itself).
  auto publish = [&](uint64_t version, uint64_t released, const std::string& released_sha) {
    auto registry = coordinator::ModelRegistry::Open(*root_ + "/release/registry", signer->get(),
                                                     verifier->get());
    ASSERT_TRUE(registry.ok()) << registry.status();
    auto m = manifest::ParseManifest((*registry)->ReadManifest("risk", 0)->json, "v0");
    ASSERT_TRUE(m.ok());
    auto weights = (*registry)->LoadWeights("risk", 0);
    ASSERT_TRUE(weights.ok());
    for (auto& [name, t] : *weights) {
      if (t.is_floating_point()) t = t + static_cast<double>(version);
    }
    m->version = version;
    m->has_parent = true;
    m->parent = version - 1;
    m->round_id = version;
    m->total_samples = 100 * version;  // tells the versions apart
    auto wire = coordinator::WriteWireFile(*weights, *root_ + "/release/wire.tmp");
    ASSERT_TRUE(wire.ok()) << wire.status();
    m->wire_sha256 = wire->sha256_hex;
    if (!released_sha.empty()) {
      m->release_json = absl::StrCat(R"({"released_version":)", released,
                                     R"(,"released_weights_sha256":")", released_sha, "\"}");
    }
    auto published = (*registry)->Publish(*m, *weights);
    ASSERT_TRUE(published.ok()) << published.status();
    auto parsed = manifest::ParseManifest(published->json, "published");
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    sha[version] = parsed->weights_sha256;
  };
  publish(1, 1, "");
  publish(2, 2, "");
  publish(3, 2, sha[2]);  // v3 is not better: v2 stays released
  auto coordinator = StartCoordinator("release", 1, 3);
  analyst::PullOptions pull = AnalystPull(coordinator->Port(), "release/pulled");
  pull.released = true;
  auto released = analyst::PullModel(pull);
  ASSERT_TRUE(released.ok()) << released.status();
  EXPECT_EQ(released->version, 2u);
  EXPECT_EQ(released->total_samples, 200u);
  auto on_disk = analyst::VerifyPulledModel(pull.out_dir, pull.coordinator_public_key);
  ASSERT_TRUE(on_disk.ok()) << on_disk.status();
  EXPECT_EQ(on_disk->version, 2u);
  pull.released = false;
  auto latest = analyst::PullModel(pull);
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(latest->version, 3u);
  pull.version = 1;
  pull.released = true;  // an explicit version wins
  auto first = analyst::PullModel(pull);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->version, 1u);
  coordinator.reset();

  // A release naming v1 with v2's weights hash: the version served is not
  // the one released, and the pull refuses it.
  publish(4, 1, sha[2]);
  coordinator = StartCoordinator("release", 1, 4);
  pull.coordinator_address = absl::StrCat("localhost:", coordinator->Port());
  pull.version.reset();
  absl::Status forged = analyst::PullModel(pull).status();
  EXPECT_TRUE(absl::IsPermissionDenied(forged)) << forged;
  EXPECT_NE(forged.message().find("v4 released weights hashing to " + sha[2]), std::string::npos)
      << forged;
}

// Error paths: roles, rounds and hostile updates over the real services.

// A CRL from `fedcustoms certs revoke` in tls.crl: the revoked node is
// refused on every call with its serial named, the others work; a list put
// in place of the file while the coordinator runs takes effect, a broken one
// does not undo it; a stale or foreign list stops the coordinator's start.
TEST_F(FederationTest, RevokedCertificatesAreRefused) {
  pki::RevokeOptions revoke;
  revoke.dir = *root_ + "/pki";
  revoke.names = {"EE", "analyst"};
  revoke.out = *root_ + "/revoked-crl.pem";
  ASSERT_TRUE(pki::RevokeDevCertificates(revoke).ok());
  v1::CoordinatorConfig c = testing_support::LoopbackCoordinatorConfig(
      *root_ + "/pki", *root_ + "/revoked", *root_ + "/data/EE/declarations.schema.json",
      v1::TRUSTED);
  c.mutable_tasks(0)->set_min_nodes(1);
  c.mutable_tls()->set_crl(revoke.out);
  auto coordinator = StartFrom(c);
  const int port = coordinator->Port();
  // A revoked certificate fails the TLS handshake: it reaches no service,
  // health checking included (which has no handler of ours to refuse it).
  auto health_code = [&](const std::string& identity) {
    auto credentials = tls::MakeChannelCredentials(Identity(identity));
    EXPECT_TRUE(credentials.ok()) << credentials.status();
    grpc::GenericStub stub(grpc::CreateChannel(absl::StrCat("localhost:", port), *credentials));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::Slice empty("");
    grpc::ByteBuffer request(&empty, 1);
    grpc::ByteBuffer response;
    std::promise<grpc::Status> done;
    stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request,
                   &response, [&done](grpc::Status status) { done.set_value(std::move(status)); });
    return done.get_future().get().error_code();
  };
  EXPECT_EQ(health_code("EE"), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(health_code("admin"), grpc::StatusCode::OK);
  auto join_code = [&](v1::NodeService::Stub& stub) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::JoinRequest request;
    request.add_tasks("risk");
    v1::JoinResponse response;
    return stub.Join(&context, request, &response).error_code();
  };
  EXPECT_EQ(join_code(*StubAs<v1::NodeService>("EE", port)), grpc::StatusCode::UNAVAILABLE);
  {
    auto stub = StubAs<v1::AnalystService>("analyst", port);
    grpc::ClientContext context;
    v1::ListModelsResponse response;
    EXPECT_EQ(stub->ListModels(&context, v1::ListModelsRequest(), &response).error_code(),
              grpc::StatusCode::UNAVAILABLE);
  }
  {
    auto stub = StubAs<v1::AnalystService>("admin", port);
    grpc::ClientContext context;
    v1::ListModelsResponse response;
    EXPECT_TRUE(stub->ListModels(&context, v1::ListModelsRequest(), &response).ok());
  }
  // A new list in place of the file takes effect while the coordinator runs
  // (it looks every 2 s): a connection FI opened before is refused per call,
  // naming the serial, and a new one at the handshake. A file that cannot be
  // used afterwards leaves the last good list in force.
  auto fi_before = StubAs<v1::NodeService>("FI", port);
  EXPECT_NE(join_code(*fi_before), grpc::StatusCode::UNAUTHENTICATED);
  pki::RevokeOptions more = revoke;
  more.names = {"EE", "analyst", "FI"};
  more.out = revoke.out + ".new";
  ASSERT_TRUE(pki::RevokeDevCertificates(more).ok());
  fs::rename(more.out, revoke.out);
  bool fi_refused = false;
  for (int i = 0; i < 100 && !fi_refused; ++i) {
    fi_refused = join_code(*fi_before) == grpc::StatusCode::UNAUTHENTICATED;
    if (!fi_refused) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(fi_refused) << "the replaced CRL was not applied within 10 s";
  {
    grpc::ClientContext context;
    v1::JoinRequest request;
    request.add_tasks("risk");
    v1::JoinResponse response;
    grpc::Status s = fi_before->Join(&context, request, &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_THAT(s.error_message(), ::testing::StartsWith("NodeService.Join: certificate serial "));
    EXPECT_THAT(s.error_message(), ::testing::HasSubstr("CN=FI"));
    EXPECT_THAT(s.error_message(), ::testing::HasSubstr("was revoked on "));
  }
  EXPECT_EQ(health_code("FI"), grpc::StatusCode::UNAVAILABLE);
  ASSERT_TRUE(io::WriteFileAtomically(revoke.out, "not a CRL\n").ok());
  std::this_thread::sleep_for(std::chrono::seconds(5));  // two checks
  EXPECT_EQ(join_code(*fi_before), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(health_code("FI"), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(health_code("EE"), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(health_code("admin"), grpc::StatusCode::OK);
  coordinator->Shutdown();

  // A list that is past its renewal date is refused at start.
  auto ca = pki::ReadPemFiles(*root_ + "/pki/ca.pem", *root_ + "/pki/ca.key");
  ASSERT_TRUE(ca.ok()) << ca.status();
  auto stale = pki::MakeRevocationListPem(*ca, {}, std::chrono::seconds(-60));
  ASSERT_TRUE(stale.ok()) << stale.status();
  ASSERT_TRUE(io::WriteFileAtomically(revoke.out, *stale).ok());
  auto config = coordinator::FinalizeCoordinatorConfig(c, "test", "");
  ASSERT_TRUE(config.ok()) << config.status();
  auto refused = coordinator::Coordinator::Create(*config);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(
      std::string(refused.status().message()),
      ::testing::StartsWith("tls.crl: " + revoke.out + ": stale: its next update was due "));

  // A node checks the advertised keys of its peers against its own CRL: a
  // stale one stops the node's start too.
  v1::NodeConfig node = testing_support::LoopbackNodeConfig(*root_, "FI", 1, "revoked", "risk");
  node.mutable_tls()->set_crl(revoke.out);
  auto node_config = node::FinalizeNodeConfig(node, "node.json", "");
  ASSERT_TRUE(node_config.ok()) << node_config.status();
  auto stale_node = node::Node::Create(*node_config);
  ASSERT_FALSE(stale_node.ok());
  EXPECT_THAT(std::string(stale_node.status().message()),
              ::testing::StartsWith(revoke.out + ": stale: its next update was due "));
}

TEST_F(FederationTest, RolesAreCheckedFromTheCertificate) {
  auto coordinator = StartCoordinator("roles", 1, 0);
  const int port = coordinator->Port();
  {
    auto stub = StubAs<v1::AnalystService>("EE", port);
    grpc::ClientContext context;
    v1::ListModelsResponse response;
    grpc::Status s = stub->ListModels(&context, v1::ListModelsRequest(), &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_EQ(s.error_message(),
              "AnalystService.ListModels is not allowed for role node (caller EE)");
  }
  {
    auto stub = StubAs<v1::NodeService>("analyst", port);
    grpc::ClientContext context;
    v1::UploadUpdateResponse response;
    auto writer = stub->UploadUpdate(&context, &response);
    v1::UploadUpdateRequest header;
    header.mutable_header()->set_task("risk");
    writer->Write(header);
    writer->WritesDone();
    grpc::Status s = writer->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  }
  {
    auto stub = StubAs<v1::AdminService>("analyst", port);
    grpc::ClientContext context;
    v1::GetStatusResponse response;
    EXPECT_EQ(stub->GetStatus(&context, v1::GetStatusRequest(), &response).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  {
    auto stub = StubAs<v1::AnalystService>("analyst", port);
    grpc::ClientContext context;
    v1::ListModelsResponse response;
    ASSERT_TRUE(stub->ListModels(&context, v1::ListModelsRequest(), &response).ok());
    ASSERT_EQ(response.tasks_size(), 1);
    EXPECT_EQ(response.tasks(0).versions_size(), 1);
  }
}

// One node (min_nodes 1) drives a round by hand: every hostile upload is
// refused with its own message and the published model is exactly the global
// model plus the one valid update.
TEST_F(FederationTest, HostileUpdatesNeverReachTheGlobalModel) {
  auto coordinator = StartCoordinator("hostile", 1, 1);
  const int port = coordinator->Port();
  auto stub = StubAs<v1::NodeService>("FI", port);
  EXPECT_EQ(Join(*stub, *coordinator, 1000), "FI");
  v1::TaskAssignment task = PollFor(*stub, v1::TaskAssignment::TRAIN);
  ASSERT_EQ(task.kind(), v1::TaskAssignment::TRAIN);
  auto global = coordinator->registry().LoadWeights("risk", 0);
  ASSERT_TRUE(global.ok());
  const tensor::NamedTensors good = QuarterUpdate(*coordinator);
  auto upload = [&](const tensor::NamedTensors& update, uint64_t round, uint64_t samples,
                    bool corrupt_sha = false) {
    return Upload(*stub, Header(round, task.model_version(), samples),
                  *tensor::EncodeToString(update), corrupt_sha);
  };

  grpc::Status s = upload(good, task.round_id() + 5, 10);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(s.error_message(), absl::StrCat("unknown round ", task.round_id() + 5,
                                            " of task risk (current round ", task.round_id(), ")"));
  s = upload(good, task.round_id(), 0);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "sample_count 0 is outside 1..100000000");
  s = upload(good, task.round_id(), 1001);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(),
            "sample_count 1001 exceeds the 1000 training rows node FI declared when it joined");
  s = upload(good, task.round_id(), 10, /*corrupt_sha=*/true);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DATA_LOSS) << s.error_message();
  tensor::NamedTensors nan = good;
  nan[0].second = nan[0].second.clone();
  nan[0].second.view(-1)[0] = std::nanf("");
  s = upload(nan, task.round_id(), 10);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("contains NaN or Inf"), std::string::npos) << s.error_message();
  tensor::NamedTensors wrong_shape = good;
  wrong_shape[0].second = torch::zeros({1});
  s = upload(wrong_shape, task.round_id(), 10);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("has shape [1], expected"), std::string::npos);

  ASSERT_TRUE(upload(good, task.round_id(), 10).ok());
  s = upload(good, task.round_id(), 10);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(s.error_message(),
            absl::StrCat("node FI already sent its update for round ", task.round_id()));

  // The round goes to evaluation; report metrics so it publishes at once.
  task = PollFor(*stub, v1::TaskAssignment::EVALUATE);
  ASSERT_EQ(task.kind(), v1::TaskAssignment::EVALUATE);
  {
    grpc::ClientContext context;
    v1::ReportMetricsRequest report;
    report.set_task("risk");
    report.set_round_id(task.round_id());
    report.set_model_version(task.model_version());
    report.mutable_metrics()->set_pr_auc(0.5);
    report.mutable_metrics()->set_roc_auc(0.5);
    report.mutable_metrics()->set_examples(10);
    v1::ReportMetricsResponse response;
    ASSERT_TRUE(stub->ReportMetrics(&context, report, &response).ok());
  }
  for (int i = 0; i < 100 && coordinator->registry().Versions("risk").size() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  auto published = coordinator->registry().LoadWeights("risk", 1);
  ASSERT_TRUE(published.ok()) << published.status();
  size_t g = 0;
  for (size_t i = 0; i < global->size(); ++i) {
    const auto& [name, w] = (*global)[i];
    if (!tensor::IsAggregatable(w)) {
      EXPECT_TRUE(torch::equal((*published)[i].second, w)) << name;
      continue;
    }
    EXPECT_TRUE(torch::allclose((*published)[i].second, w + good[g++].second)) << name;
  }
  auto rounds = coordinator->ledger().List("risk");
  ASSERT_TRUE(rounds.ok());
  ASSERT_EQ(rounds->size(), 1u);
  EXPECT_EQ((*rounds)[0].participants, 1u);
  EXPECT_EQ((*rounds)[0].rejected_updates, 4u);  // sample count 0 and > declared, NaN, shape
  EXPECT_EQ((*rounds)[0].samples, 10u);

  // A message for the closed round is refused, not applied.
  s = upload(good, task.round_id(), 10);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(FederationTest, RoundAbortsWhenTooFewUpdatesArriveByTheDeadline) {
  auto coordinator = StartCoordinator("abort", 1, 1, /*deadline_seconds=*/2);
  auto stub = StubAs<v1::NodeService>("LV", coordinator->Port());
  {
    // Work only goes to nodes whose schema was checked at Join.
    grpc::ClientContext context;
    v1::GetTaskRequest request;
    request.set_task("risk");
    v1::TaskAssignment unjoined;
    grpc::Status s = stub->GetTask(&context, request, &unjoined);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_EQ(s.error_message(),
              "node LV has not joined task risk since the coordinator started; join first");
  }
  Join(*stub, *coordinator);
  ASSERT_EQ(PollFor(*stub, v1::TaskAssignment::TRAIN).kind(), v1::TaskAssignment::TRAIN);
  // The node goes silent; after the deadline the round aborts.
  absl::StatusOr<std::vector<coordinator::RoundRecord>> rounds;
  for (int i = 0; i < 100; ++i) {
    rounds = coordinator->ledger().List("risk");
    if (rounds.ok() && !rounds->empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(rounds.ok());
  ASSERT_FALSE(rounds->empty());
  EXPECT_EQ((*rounds)[0].status, "aborted");
  EXPECT_EQ((*rounds)[0].dropped, 1u);
  EXPECT_EQ((*rounds)[0].reason,
            "only 0 of 1 selected nodes sent a valid update by the deadline; min_nodes is 1");
  EXPECT_EQ(coordinator->registry().Versions("risk"), (std::vector<uint64_t>{0}));
}

// Mode TRUSTED with a robust rule: three consenting nodes, the coordinate-wise
// median, recorded in the manifest; and a round whose updates would not fit
// in robust_aggregation.max_memory_mib is not opened.
TEST_F(FederationTest, MedianRoundsRunInTrustedModeWithinTheirMemoryCap) {
  auto median = [](v1::TaskConfig& t) {
    t.mutable_robust_aggregation()->set_kind(v1::RobustAggregationConfig::MEDIAN);
  };
  {
    auto coordinator =
        StartCoordinator("median", 3, 1, 60, v1::TRUSTED, v1::ServerStrategyConfig::FEDAVG, median);
    std::vector<std::unique_ptr<node::Node>> nodes;
    uint64_t total_train_rows = 0;
    for (const std::string admin : {"EE", "FI", "LV"}) {
      v1::NodeConfig config = NodeConfigFor(admin, coordinator->Port(), "median");
      config.set_aggregation_mode(v1::TRUSTED);
      auto n = node::Node::Create(config);
      ASSERT_TRUE(n.ok()) << n.status();
      total_train_rows += (*n)->learner().data_summary().train_rows();
      nodes.push_back(*std::move(n));
    }
    std::vector<std::future<absl::Status>> runs;
    for (auto& n : nodes) runs.push_back(std::async(std::launch::async, [&n] { return n->Run(); }));
    for (auto& run : runs) {
      ASSERT_EQ(run.wait_for(std::chrono::minutes(5)), std::future_status::ready);
      EXPECT_TRUE(run.get().ok());
    }
    auto m = manifest::ParseManifest(coordinator->registry().ReadManifest("risk", 1)->json, "t");
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ(m->aggregator, "median");
    EXPECT_EQ(m->aggregation_mode, "trusted");
    EXPECT_EQ(m->contributing_nodes, 3u);
    EXPECT_EQ(m->total_samples, total_train_rows);
  }
  // About 290 k parameters x 1 node > 1 MiB.
  auto coordinator = StartCoordinator("median-cap", 1, 1, 60, v1::TRUSTED,
                                      v1::ServerStrategyConfig::FEDAVG, [&](v1::TaskConfig& t) {
                                        median(t);
                                        t.mutable_robust_aggregation()->set_max_memory_mib(1);
                                        t.mutable_model()->clear_hidden_units();
                                        t.mutable_model()->add_hidden_units(1024);
                                        t.mutable_model()->add_hidden_units(256);
                                      });
  auto stub = StubAs<v1::NodeService>("LV", coordinator->Port());
  Join(*stub, *coordinator, 100);
  absl::StatusOr<std::vector<coordinator::RoundRecord>> rounds;
  for (int i = 0; i < 100; ++i) {
    grpc::ClientContext context;  // keeps the node available
    v1::GetTaskRequest request;
    request.set_task("risk");
    v1::TaskAssignment task;
    (void)stub->GetTask(&context, request, &task);
    rounds = coordinator->ledger().List("risk");
    if (rounds.ok() && !rounds->empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(rounds.ok());
  ASSERT_FALSE(rounds->empty());
  EXPECT_EQ((*rounds)[0].status, "aborted");
  EXPECT_NE((*rounds)[0].reason.find("MEDIAN would keep 1 updates of "), std::string::npos)
      << (*rounds)[0].reason;
  EXPECT_NE((*rounds)[0].reason.find("robust_aggregation.max_memory_mib is 1"), std::string::npos)
      << (*rounds)[0].reason;
}

// Disk full and a read-only registry: the coordinator does not open a round
// it could not record, says why in its status, and keeps the last good
// version; the round opens once the storage can take it. The registry sits on
// a small tmpfs (mount(2) needs root, as CI runs), filled up to leave less
// than one version's room, then remounted read-only.
TEST_F(FederationTest, RoundsDoNotOpenWhereStorageCannotRecordThem) {
  const std::string dir = *root_ + "/storage";
  const std::string registry = dir + "/registry";
  fs::create_directories(registry);
  if (::mount("fedcustoms-test", registry.c_str(), "tmpfs", 0, "size=16m") != 0) {
    GTEST_SKIP() << "mounting a tmpfs at " << registry << " needs root: " << std::strerror(errno);
  }
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{registry};
  auto coordinator = StartCoordinator("storage", 1, 1);
  ASSERT_NE(coordinator, nullptr);
  coordinator::TaskRunner* runner = coordinator->runner("risk");
  // Disk full (before any node joins): a filler leaves 64 KiB, less than a
  // version needs.
  struct statvfs fs_info {};
  ASSERT_EQ(::statvfs(registry.c_str(), &fs_info), 0);
  const uint64_t free_bytes = uint64_t{fs_info.f_bavail} * fs_info.f_frsize;
  ASSERT_GT(free_bytes, 64u << 10);
  {
    std::ofstream filler(registry + "/filler", std::ios::binary);
    const std::string block(free_bytes - (64u << 10), '\0');
    filler.write(block.data(), static_cast<std::streamsize>(block.size()));
  }
  auto stub = StubAs<v1::NodeService>("LV", coordinator->Port());
  Join(*stub, *coordinator);
  // Polls as a node would for about `seconds`; true if `kind` came.
  auto poll_until = [&](v1::TaskAssignment::Kind kind, int seconds) {
    return PollFor(*stub, kind, 0, seconds, /*wait_seconds=*/1).kind() == kind;
  };
  auto nothing_recorded = [&] {
    EXPECT_EQ(coordinator->registry().Versions("risk"), (std::vector<uint64_t>{0}));
    auto rounds = coordinator->ledger().List("risk");
    ASSERT_TRUE(rounds.ok());
    EXPECT_TRUE(rounds->empty());
    auto open = coordinator->ledger().OpenRounds("risk");
    ASSERT_TRUE(open.ok());
    EXPECT_TRUE(open->empty());
  };

  EXPECT_FALSE(poll_until(v1::TaskAssignment::TRAIN, 4));
  EXPECT_THAT(runner->Status().blocked_reason(),
              ::testing::AllOf(::testing::HasSubstr("model registry: " + registry),
                               ::testing::HasSubstr("KiB free")));
  nothing_recorded();

  // Read-only: room again, but the mount refuses writes.
  fs::remove(registry + "/filler");
  ASSERT_EQ(
      ::mount("fedcustoms-test", registry.c_str(), "tmpfs", MS_REMOUNT | MS_RDONLY, "size=16m"), 0)
      << std::strerror(errno);
  EXPECT_FALSE(poll_until(v1::TaskAssignment::TRAIN, 12));
  EXPECT_THAT(runner->Status().blocked_reason(),
              ::testing::HasSubstr(" is not writable (open): Read-only file system"));
  nothing_recorded();
  // The last good version is still there and whole.
  auto weights = coordinator->registry().LoadWeights("risk", 0);
  EXPECT_TRUE(weights.ok()) << weights.status();

  // Writable again: the round opens (within the 10 s retry) and is recorded
  // as open from its first moment.
  ASSERT_EQ(::mount("fedcustoms-test", registry.c_str(), "tmpfs", MS_REMOUNT, "size=16m"), 0)
      << std::strerror(errno);
  EXPECT_TRUE(poll_until(v1::TaskAssignment::TRAIN, 30));
  EXPECT_EQ(runner->Status().blocked_reason(), "");
  auto open = coordinator->ledger().OpenRounds("risk");
  ASSERT_TRUE(open.ok());
  ASSERT_EQ(open->size(), 1u);
  EXPECT_EQ((*open)[0].phase, "training");
  coordinator.reset();  // stops before the tmpfs goes
}

// Upload streams that never finish properly, over mutual TLS — cut short,
// endless, out of order, endless empty chunks, stalled, reset by the node —
// each is refused (a stall is cancelled by the coordinator after
// stream_idle_seconds) and releases the node's slot, so a valid upload still
// goes through afterwards.
TEST_F(FederationTest, UploadStreamsThatNeverFinishAreRefused) {
  std::unique_ptr<coordinator::Coordinator> coordinator = StartForOneUploader("endless", 2, 0);
  auto stub = StubAs<v1::NodeService>("EE", coordinator->Port());
  Join(*stub, *coordinator, 1000);
  const v1::TaskAssignment task = PollFor(*stub, v1::TaskAssignment::TRAIN);
  ASSERT_EQ(task.kind(), v1::TaskAssignment::TRAIN);
  const v1::UpdateHeader header = Header(task.round_id(), task.model_version(), 10);
  // Opens an upload and sends a valid header.
  auto open_upload = [&](grpc::ClientContext* context, v1::UploadUpdateResponse* response) {
    auto writer = stub->UploadUpdate(context, response);
    v1::UploadUpdateRequest message;
    *message.mutable_header() = header;
    writer->Write(message);
    return writer;
  };
  // Opens an upload and sends one chunk of `data` at `index`.
  auto open_with_chunk = [&](grpc::ClientContext* context, v1::UploadUpdateResponse* response,
                             uint64_t index, const std::string& data) {
    auto writer = open_upload(context, response);
    v1::UploadUpdateRequest chunk;
    chunk.mutable_chunk()->set_index(index);
    chunk.mutable_chunk()->set_data(data);
    writer->Write(chunk);
    return writer;
  };

  {  // Stops without the final SHA-256 chunk.
    grpc::ClientContext context;
    v1::UploadUpdateResponse response;
    auto writer = open_with_chunk(&context, &response, 0, "FCT1");
    writer->WritesDone();
    grpc::Status s = writer->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(s.error_message(), "upload: stream ended without its final SHA-256 chunk");
  }
  {  // Never sends the final chunk and keeps growing: capped, nothing past the cap kept.
    const uint64_t cap = coordinator->runner("risk")->MaxUploadBytes();
    grpc::ClientContext context;
    v1::UploadUpdateResponse response;
    auto writer = open_upload(&context, &response);
    v1::UploadUpdateRequest chunk;
    chunk.mutable_chunk()->set_data(std::string(tensor::kMaxChunkBytes, 'x'));
    for (uint64_t i = 0; i <= cap / tensor::kMaxChunkBytes + 1; ++i) {
      chunk.mutable_chunk()->set_index(i);
      if (!writer->Write(chunk)) break;  // the coordinator has already answered
    }
    writer->WritesDone();
    grpc::Status s = writer->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_EQ(s.error_message(), absl::StrCat("payload exceeds ", cap, " bytes"));
  }
  {  // An int64 -1 index arrives as 2^64 - 1.
    grpc::ClientContext context;
    v1::UploadUpdateResponse response;
    auto writer = open_with_chunk(&context, &response, std::numeric_limits<uint64_t>::max(), "x");
    writer->WritesDone();
    grpc::Status s = writer->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(s.error_message(), "chunk 18446744073709551615 out of order: expected 0");
  }
  {  // Empty chunks forever: only the final chunk may be empty.
    grpc::ClientContext context;
    v1::UploadUpdateResponse response;
    auto writer = open_upload(&context, &response);
    v1::UploadUpdateRequest chunk;
    for (uint64_t i = 0; i < 3; ++i) {
      chunk.mutable_chunk()->set_index(i);
      if (!writer->Write(chunk)) break;
    }
    writer->WritesDone();
    grpc::Status s = writer->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(s.error_message(), "chunk 1 is empty; only the final chunk may be");
  }
  {  // Stalled: a chunk, then silence with the connection open. Without the
     // watchdog this would hold the node's slot until the round's deadline.
    grpc::ClientContext context;
    v1::UploadUpdateResponse response;
    auto writer = open_with_chunk(&context, &response, 0, "FCT1");
    std::this_thread::sleep_for(std::chrono::seconds(4));
    grpc::Status s = writer->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::CANCELLED) << s.error_message();
  }
  {  // Reset by the node mid-stream.
    grpc::ClientContext context;
    v1::UploadUpdateResponse response;
    auto writer = open_with_chunk(&context, &response, 0, "FCT1");
    context.TryCancel();
    grpc::Status s = writer->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::CANCELLED) << s.error_message();
  }
  {  // Chunks without a header.
    grpc::ClientContext context;
    v1::UploadUpdateResponse response;
    auto writer = stub->UploadUpdate(&context, &response);
    v1::UploadUpdateRequest chunk;
    chunk.mutable_chunk()->set_index(0);
    writer->Write(chunk);
    writer->WritesDone();
    grpc::Status s = writer->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(s.error_message(), "upload: the first message must be the update header");
  }
  // Every refusal released the node's slot: a valid update is accepted.
  const std::string bytes = *tensor::EncodeToString(QuarterUpdate(*coordinator));
  grpc::Status s;
  v1::UploadUpdateResponse response;
  // The reset's handler may still be releasing the slot when its node has
  // already been told CANCELLED: "in progress" is retried briefly.
  for (int attempt = 0; attempt < 20; ++attempt) {
    s = Upload(*stub, header, bytes, /*corrupt_sha=*/false, &response);
    if (s.error_code() != grpc::StatusCode::ABORTED ||
        s.error_message().find("in progress") == std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(response.accepted());
}

// A trickle never trips the idle limit: one small chunk a second keeps a
// stream (and the node's slot and a server thread) alive for as long as the
// node likes. The stream is cut once its round stops taking updates (its
// training deadline), with the reason, and the round closes on time.
TEST_F(FederationTest, ATrickledUploadIsCutWhenItsRoundStopsTakingUpdates) {
  std::unique_ptr<coordinator::Coordinator> coordinator = StartForOneUploader("trickle", 3, 4);
  auto stub = StubAs<v1::NodeService>("EE", coordinator->Port());
  Join(*stub, *coordinator, 1000);
  const v1::TaskAssignment task = PollFor(*stub, v1::TaskAssignment::TRAIN);
  ASSERT_EQ(task.kind(), v1::TaskAssignment::TRAIN);
  grpc::ClientContext context;
  v1::UploadUpdateResponse response;
  auto writer = stub->UploadUpdate(&context, &response);
  v1::UploadUpdateRequest message;
  *message.mutable_header() = Header(task.round_id(), task.model_version(), 10);
  ASSERT_TRUE(writer->Write(message));
  constexpr int kChunks = 30;  // 30 s at one a second: far past the deadline
  int sent = 0;
  for (; sent < kChunks; ++sent) {
    v1::UploadUpdateRequest chunk;
    chunk.mutable_chunk()->set_index(sent);
    chunk.mutable_chunk()->set_data("x");
    if (!writer->Write(chunk)) break;  // the coordinator has answered
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  writer->WritesDone();
  grpc::Status s = writer->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << s.error_message();
  EXPECT_EQ(s.error_message(),
            absl::StrCat("upload: round ", task.round_id(),
                         " of task risk stopped taking updates before this one finished; "
                         "stream cut"));
  EXPECT_LT(sent, kChunks);
  auto rounds = coordinator->ledger().List("risk");
  for (int i = 0; i < 100 && rounds.ok() && rounds->empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    rounds = coordinator->ledger().List("risk");
  }
  ASSERT_TRUE(rounds.ok()) << rounds.status();
  ASSERT_EQ(rounds->size(), 1u);
  EXPECT_EQ((*rounds)[0].status, "aborted");
}

// Round 1: a sample count of 2^63 and a NaN loss are refused, a valid update
// is accepted; every out-of-range metrics report is refused with its rule and
// does not count as the node's report; once round 2 is open an update for
// round 1 is refused as closed.
TEST_F(FederationTest, PastRoundsHugeSampleCountsAndBadMetricsAreRefused) {
  auto coordinator = StartCoordinator("stale", 1, 2);
  auto stub = StubAs<v1::NodeService>("LV", coordinator->Port());
  Join(*stub, *coordinator, 1000);
  auto next = [&](v1::TaskAssignment::Kind kind, uint64_t after_round) {
    return PollFor(*stub, kind, after_round, 30);
  };
  v1::TaskAssignment task = next(v1::TaskAssignment::TRAIN, 0);
  ASSERT_EQ(task.kind(), v1::TaskAssignment::TRAIN);
  const uint64_t first_round = task.round_id();

  const std::string bytes = *tensor::EncodeToString(QuarterUpdate(*coordinator));
  auto upload = [&](uint64_t round, uint64_t version, uint64_t samples, double loss = 0) {
    v1::UpdateHeader header = Header(round, version, samples);
    header.set_train_loss(loss);
    return Upload(*stub, header, bytes);
  };

  grpc::Status s = upload(first_round, task.model_version(), uint64_t{1} << 63);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "sample_count 9223372036854775808 is outside 1..100000000");
  s = upload(first_round, task.model_version(), 10, std::nan(""));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "train_loss is NaN or Inf");
  ASSERT_TRUE(upload(first_round, task.model_version(), 10).ok());

  task = next(v1::TaskAssignment::EVALUATE, 0);
  ASSERT_EQ(task.kind(), v1::TaskAssignment::EVALUATE);
  auto report = [&](const std::function<void(v1::EvaluationMetrics*)>& tweak) {
    grpc::ClientContext context;
    v1::ReportMetricsRequest request;
    request.set_task("risk");
    request.set_round_id(task.round_id());
    request.set_model_version(task.model_version());
    v1::EvaluationMetrics* m = request.mutable_metrics();
    m->set_roc_auc(0.5);
    m->set_pr_auc(0.5);
    m->set_loss(0.3);
    m->set_examples(10);
    m->set_positives(1);
    tweak(m);
    v1::ReportMetricsResponse response;
    return stub->ReportMetrics(&context, request, &response);
  };
  const std::string auc = "metrics: roc_auc and pr_auc must be within [0, 1]";
  const std::string loss = "metrics: loss must be finite and >= 0";
  const std::string counts =
      "metrics: need examples > 0, positives <= examples and flagged <= examples";
  const std::string budget =
      "metrics: at_budget needs percent in 1..100, precision and recall within [0, 1]";
  const std::vector<std::pair<std::function<void(v1::EvaluationMetrics*)>, std::string>> cases = {
      {[](v1::EvaluationMetrics* m) { m->set_roc_auc(1.5); }, auc},
      {[](v1::EvaluationMetrics* m) { m->set_pr_auc(std::nan("")); }, auc},
      {[](v1::EvaluationMetrics* m) { m->set_loss(-1); }, loss},
      {[](v1::EvaluationMetrics* m) { m->set_loss(std::numeric_limits<double>::infinity()); },
       loss},
      {[](v1::EvaluationMetrics* m) { m->set_examples(0); }, counts},
      {[](v1::EvaluationMetrics* m) { m->set_positives(11); }, counts},
      {[](v1::EvaluationMetrics* m) { m->set_flagged(11); }, counts},
      {[](v1::EvaluationMetrics* m) { m->set_examples(uint64_t{1} << 62); },
       "metrics: examples must be at most 1000000000"},
      {[](v1::EvaluationMetrics* m) { m->set_accuracy(std::nan("")); },
       "metrics: accuracy must be within [0, 1]"},
      {[](v1::EvaluationMetrics* m) { m->mutable_selection()->set_budget_percent(0); },
       "metrics: selection.budget_percent must be in 1..100"},
      {[](v1::EvaluationMetrics* m) {
         m->mutable_selection()->set_budget_percent(5);
         v1::SelectionCounts* random = m->mutable_selection()->mutable_random();
         random->set_rows(4);
         random->set_positives(1);
         random->set_flagged(2);
         random->set_flagged_positives(2);  // more than the positives
       },
       "metrics: selection.random needs positives <= rows, flagged <= rows and "
       "flagged_positives <= both"},
      {[](v1::EvaluationMetrics* m) {
         m->mutable_selection()->set_budget_percent(5);
         m->mutable_selection()->mutable_random()->set_rows(6);
         m->mutable_selection()->mutable_risk_selected()->set_rows(5);
       },
       "metrics: selection rows (random + risk_selected) exceed examples"},
      {[](v1::EvaluationMetrics* m) {
         // Sums to 1 when added in uint64: each part is checked on its own.
         m->mutable_selection()->set_budget_percent(5);
         m->mutable_selection()->mutable_random()->set_rows(~uint64_t{0});
         m->mutable_selection()->mutable_risk_selected()->set_rows(2);
       },
       "metrics: selection rows (random + risk_selected) exceed examples"},
      {[](v1::EvaluationMetrics* m) { m->add_at_budget()->set_percent(0); }, budget},
      {[](v1::EvaluationMetrics* m) {
         v1::AtBudget* b = m->add_at_budget();
         b->set_percent(5);
         b->set_recall(2);
       },
       budget},
  };
  for (const auto& [tweak, message] : cases) {
    grpc::Status r = report(tweak);
    EXPECT_EQ(r.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << message;
    EXPECT_EQ(r.error_message(), message);
  }
  // None of the refusals took the node's one report.
  ASSERT_TRUE(report([](v1::EvaluationMetrics*) {}).ok());

  // Version 1 is published and round 2 opens: round 1 is closed.
  task = next(v1::TaskAssignment::TRAIN, first_round);
  ASSERT_EQ(task.kind(), v1::TaskAssignment::TRAIN);
  ASSERT_GT(task.round_id(), first_round);
  s = upload(first_round, task.model_version(), 10);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(s.error_message(),
            absl::StrCat("round ", first_round, " of task risk is closed (current round ",
                         task.round_id(), ")"));
}

}  // namespace
}  // namespace fedcustoms
