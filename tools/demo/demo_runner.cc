#include "tools/demo/demo_runner.h"

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "analyst/model/declaration_scorer.h"
#include "analyst/model/model_puller.h"
#include "analyst/model/pulled_model.h"
#include "common/data/declaration_schema.h"
#include "common/io/atomic_file.h"
#include "common/log/logging.h"
#include "common/pki/dev_pki.h"
#include "common/synth/declarations_synth.h"
#include "common/task/risk_task.h"
#include "common/task/task_model.h"
#include "common/tls/credentials.h"
#include "common/xray/xray_synth.h"
#include "fedcustoms/v1/admin_service.grpc.pb.h"
#include "node/config/node_config.h"
#include "node/learner/local_learner.h"
#include "tools/demo/child_process.h"
#include "tools/demo/cross_evaluation.h"
#include "tools/demo/dev_federation.h"
#include "tools/demo/emerging_scheme_report.h"

namespace fedcustoms::tools {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::vector<std::string> kAdministrations = {"EE", "FI", "LV", "LT", "SE", "PL", "DE", "NL"};

json MetricsJson(v1::TaskKind kind, const v1::EvaluationMetrics& m) {
  json j{{"pr_auc", m.pr_auc()},
         {"roc_auc", m.roc_auc()},
         {"holdout_rows", m.examples()},
         {"holdout_positives", m.positives()}};
  if (kind == v1::TASK_XRAY) j["accuracy"] = m.accuracy();
  if (kind == v1::TASK_ANOMALY) j["holdout_flagged"] = m.flagged();
  for (const v1::AtBudget& b : m.at_budget()) {
    j[absl::StrCat("precision_at_", b.percent())] = b.precision();
    j[absl::StrCat("recall_at_", b.percent())] = b.recall();
  }
  return j;
}

// Last line of a node's metrics log for `version`.
absl::StatusOr<v1::EvaluationMetrics> FederatedMetrics(const std::string& path, uint64_t version) {
  std::ifstream in(path);
  std::string line;
  std::optional<v1::EvaluationMetrics> found;
  while (std::getline(in, line)) {
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || j.value("version", uint64_t{0}) != version) continue;
    v1::EvaluationMetrics m;
    if (google::protobuf::util::JsonStringToMessage(j["metrics"].dump(), &m).ok()) found = m;
  }
  if (!found) {
    return absl::NotFoundError(absl::StrCat(path, ": no evaluation of version ", version));
  }
  return *found;
}

// One task of the demo's federation and the configs it runs with.
struct DemoTask {
  std::string name;
  v1::TaskKind kind = v1::TASK_RISK;
  json training;
  // The TaskConfig field of the model config and the config itself.
  std::string model_field;
  json model;
};

// The demo's model and training under DP-SGD (--epsilon), chosen for what
// noise allows (docs/privacy.md, "Choosing the settings"): a logistic
// regression with the customs risk profile's classic cross, HS heading x
// origin, as its one interaction (about 22 000 weights, against 51 000 for
// the MLP, and each a direct signal); large batches, since the noise on the
// mean gradient falls as 1/batch while σ grows only slowly with the sampling
// rate; plain SGD, since Adam scales every coordinate's noise up to a full
// step; and more epochs per round, which σ pays for slowly.
nlohmann::json DpModel() {
  return {{"kind", "LOGISTIC"},
          {"crosses", nlohmann::json::array({{{"columns", {"hs_code", "origin_country"}}}})}};
}
nlohmann::json DpTraining() {
  return {{"local_epochs", 20},
          {"batch_size", 1024},
          {"learning_rate", 10},
          {"optimizer", "sgd"},
          {"seed", 11}};
}

// `epsilon` > 0: the settings under DP-SGD (DpModel, DpTraining), which the
// local-only baselines then use too, without DP.
DemoTask MakeDemoTask(const std::string& name, double epsilon) {
  DemoTask t;
  t.name = name;
  t.kind = task::ResolveKind(v1::TASK_KIND_UNSPECIFIED, name);
  t.training = {{"local_epochs", 2},
                {"batch_size", 128},
                {"learning_rate", 0.006},
                {"optimizer", "adam"},
                {"seed", 11}};
  t.model_field = "model";
  t.model = {{"hidden_units", {64, 32}}, {"embedding_dim", 8}, {"dropout", 0.1}};
  if (t.kind == v1::TASK_ANOMALY) {
    t.model_field = "anomaly_model";
    // Categorical weight 0.1: the numeric relations (value against mass,
    // heading and origin) weigh more than guessing rare traders' buckets; on
    // the emerging scheme an EE-only model trained 10 epochs put 74 % of it
    // in its top 1 % with 0.1 and 41 % with the default 1.
    t.model = {{"hidden_units", {32, 8}},
               {"embedding_dim", 4},
               {"flag_quantile", 0.99},
               {"categorical_weight", 0.1}};
  } else if (t.kind == v1::TASK_XRAY) {
    t.model_field = "xray_model";
    t.model = {{"channels", {16, 32, 64}}, {"image_size", 64}, {"hidden_units", 128}};
    t.training = {{"local_epochs", 2},
                  {"batch_size", 32},
                  {"learning_rate", 0.002},
                  {"optimizer", "adam"},
                  {"seed", 11}};
  }
  if (epsilon > 0 && t.kind == v1::TASK_RISK) {
    t.model = DpModel();
    t.training = DpTraining();
  } else if (epsilon > 0 && t.kind == v1::TASK_ANOMALY) {
    t.training["batch_size"] = DpTraining()["batch_size"];
  }
  return t;
}

// The task's finalized config as the coordinator will hold it (defaults
// applied), for the local-only baselines.
absl::StatusOr<v1::TaskConfig> FinalizedTaskConfig(const DemoTask& t) {
  v1::TaskConfig config;
  config.set_name(t.name);
  google::protobuf::Message* model =
      t.kind == v1::TASK_ANOMALY
          ? static_cast<google::protobuf::Message*>(config.mutable_anomaly_model())
      : t.kind == v1::TASK_XRAY
          ? static_cast<google::protobuf::Message*>(config.mutable_xray_model())
          : config.mutable_model();
  if (!google::protobuf::util::JsonStringToMessage(t.training.dump(), config.mutable_training())
           .ok() ||
      !google::protobuf::util::JsonStringToMessage(t.model.dump(), model).ok()) {
    return absl::InternalError("the demo's own training or model config does not parse");
  }
  if (absl::Status s = task::FinalizeTrainingConfig(config.mutable_training()); !s.ok()) return s;
  if (absl::Status s = task::FinalizeTaskModel(&config); !s.ok()) return s;
  return config;
}

// A node process of one administration in one task.
struct DemoNode {
  std::string admin;
  std::string task;
  v1::NodeConfig config;
  std::unique_ptr<ChildProcess> process;
};

// Work directory of a node: nodes/<admin> for the demo's task, and
// nodes/<admin>-<task> for a companion task.
std::string NodeDir(const std::string& root, const std::string& admin, const std::string& task,
                    bool companion) {
  return companion ? absl::StrCat(root, "/nodes/", admin, "-", task)
                   : absl::StrCat(root, "/nodes/", admin);
}

// Prints the main task's rounds as they complete until every task has
// finished; fails when a process exits early or at the deadline.
absl::StatusOr<uint64_t> FollowRounds(v1::AdminService::Stub& admin, const DemoTask& main,
                                      size_t task_count, uint32_t rounds,
                                      std::vector<DemoNode>& nodes, ChildProcess& coord,
                                      const std::string& root, uint32_t timeout_seconds) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  uint32_t shown = 0;
  while (true) {
    for (DemoNode& n : nodes) {
      auto code = n.process->Poll();
      if (code && *code != 0) {
        return absl::InternalError(absl::StrCat("node ", n.admin, " (task ", n.task,
                                                ") exited with code ", *code, "; see ",
                                                n.process->log_path()));
      }
    }
    if (auto code = coord.Poll()) {
      return absl::InternalError(
          absl::StrCat("the coordinator exited with code ", *code, "; see ", coord.log_path()));
    }
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::GetStatusResponse status;
    if (admin.GetStatus(&context, v1::GetStatusRequest(), &status).ok() &&
        static_cast<size_t>(status.tasks_size()) == task_count) {
      size_t finished = 0;
      for (const v1::TaskStatus& t : status.tasks()) finished += t.phase() == "finished";
      for (const v1::TaskStatus& t : status.tasks()) {
        if (t.task() != main.name) continue;
        while (shown < t.rounds_completed()) {
          ++shown;
          std::printf("      round %u/%u done: global model version %llu, %d nodes", shown, rounds,
                      static_cast<unsigned long long>(t.latest_version()),
                      status.joined_nodes_size());
          // The metrics belong to the latest version only.
          if (shown == t.rounds_completed() && t.has_latest_metrics()) {
            std::printf(", mean hold-out PR-AUC %.3f, ROC-AUC %.3f", t.latest_metrics().pr_auc(),
                        t.latest_metrics().roc_auc());
            if (main.kind == v1::TASK_XRAY) {
              std::printf(", accuracy %.3f", t.latest_metrics().accuracy());
            }
          }
          std::printf("\n");
          std::fflush(stdout);
        }
        if (finished == task_count) return t.latest_version();
      }
    }
    if (std::chrono::steady_clock::now() > give_up) {
      return absl::DeadlineExceededError(absl::StrCat("the rounds did not finish in ",
                                                      timeout_seconds, " s; see ", root, "/logs"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

// Prints and returns the emerging-scheme comparison of every administration
// (see CompareOnEmergingScheme).
absl::StatusOr<json> EmergingSchemeComparison(const std::vector<DemoNode>& nodes,
                                              const std::string& root,
                                              const analyst::PulledModel& risk_model,
                                              const analyst::PulledModel& anomaly_model) {
  auto risk = analyst::DeclarationScorer::Create(risk_model);
  if (!risk.ok()) return risk.status();
  auto anomaly = analyst::DeclarationScorer::Create(anomaly_model);
  if (!anomaly.ok()) return anomaly.status();
  json out = json::object();
  std::printf("      %-4s %9s %8s | at 1 %%: %6s %7s %6s | at 5 %%: %6s %7s %6s\n", "node",
              "emerging", "known", "risk", "anomaly", "split", "risk", "anomaly", "split");
  for (const DemoNode& n : nodes) {
    if (n.task != "anomaly") continue;
    auto report = CompareOnEmergingScheme(
        n.config, absl::StrCat(root, "/data/", n.admin, "/", std::string(synth::kTruthFileName)),
        *risk, *anomaly);
    if (!report.ok()) return report.status();
    const json& r = *report;
    auto recall = [&](size_t budget, const char* policy) {
      return r["budgets"][budget][policy]["emerging_recall"].get<double>();
    };
    std::printf("      %-4s %9zu %8zu | emerging %5.2f %7.2f %6.2f | emerging %5.2f %7.2f %6.2f\n",
                n.admin.c_str(), r["emerging_frauds"].get<size_t>(),
                r["known_frauds"].get<size_t>(), recall(0, "risk"), recall(0, "anomaly"),
                recall(0, "split"), recall(1, "risk"), recall(1, "anomaly"), recall(1, "split"));
    auto known = [&](size_t budget, const char* policy) {
      return r["budgets"][budget][policy]["known_recall"].get<double>();
    };
    std::printf("      %-4s %9s %8s | known    %5.2f %7.2f %6.2f | known    %5.2f %7.2f %6.2f\n",
                "", "", "", known(0, "risk"), known(0, "anomaly"), known(0, "split"),
                known(1, "risk"), known(1, "anomaly"), known(1, "split"));
    out[n.admin] = r;
  }
  return out;
}

// One run of the demo: each numbered step the demo prints is a method, in
// order; the state they share (paths, processes, pulled models, the summary)
// lives here.
class DemoRun {
 public:
  // Checks the options and clears the work directory's previous run.
  static absl::StatusOr<std::unique_ptr<DemoRun>> Create(const DemoOptions& o);
  // Every step, then summary.json; the error of the first step that fails.
  absl::Status Run();

 private:
  explicit DemoRun(const DemoOptions& o);

  absl::Status MakePki();                // 1
  absl::Status MakeData();               // 2
  absl::Status StartProcesses();         // 3
  absl::StatusOr<uint64_t> RunRounds();  // 4: the final version
  absl::Status PullModels();             // 5
  // 6: local-only training per administration; the administrations where
  // the federated model did not beat it.
  absl::StatusOr<std::vector<std::string>> CompareWithLocalOnly(uint64_t final_version);
  absl::Status CrossEvaluateModels();      // 7 (xray)
  absl::Status CompareOnEmergingScheme();  // 7 (anomaly)

  const DemoOptions o_;
  const DemoTask main_;
  // Anomaly detection complements the risk model, so its demo federates both
  // and compares them on a fraud scheme no control result has shown yet.
  std::vector<DemoTask> tasks_;
  const bool compare_;
  // The X-ray demo's 7th step judges every model on every hold-out.
  const bool cross_;
  const int steps_;
  std::vector<std::string> admins_;
  std::string root_, pki_, schema_;

  std::unique_ptr<ChildProcess> coordinator_;
  std::string address_;
  std::vector<DemoNode> nodes_;
  analyst::PullOptions pull_;
  std::vector<manifest::ModelManifest> pulled_;
  json summary_;
  // Step 6's learners, hold-outs and local models, which step 7 reuses.
  v1::TaskAssignment assignment_;
  std::vector<std::unique_ptr<node::LocalLearner>> learners_;
  std::vector<HoldOut> hold_outs_;
  std::vector<NamedModel> local_models_;
};

DemoRun::DemoRun(const DemoOptions& o)
    : o_(o),
      main_(MakeDemoTask(o.task, o.epsilon)),
      tasks_(main_.kind == v1::TASK_ANOMALY
                 ? std::vector<DemoTask>{main_, MakeDemoTask("risk", o.epsilon)}
                 : std::vector<DemoTask>{main_}),
      compare_(tasks_.size() > 1),
      cross_(main_.kind == v1::TASK_XRAY),
      steps_(compare_ || cross_ ? 7 : 6),
      admins_(kAdministrations.begin(), kAdministrations.begin() + o.nodes),
      root_(fs::absolute(o.workdir).lexically_normal().string()),
      pki_(root_ + "/pki"),
      schema_(absl::StrCat(root_, "/data/", admins_[0], "/declarations.schema.json")) {}

absl::StatusOr<std::unique_ptr<DemoRun>> DemoRun::Create(const DemoOptions& o) {
  if (o.task != "risk" && o.task != "anomaly" && o.task != "xray") {
    return absl::InvalidArgumentError(
        absl::StrCat("--task ", o.task, ": expected risk, anomaly or xray"));
  }
  if (o.nodes < 2 || o.nodes > kAdministrations.size()) {
    return absl::InvalidArgumentError(absl::StrCat("--nodes must be 2..", kAdministrations.size()));
  }
  if (o.rounds < 1 || o.rounds > 100) return absl::InvalidArgumentError("--rounds must be 1..100");
  if (!(o.epsilon >= 0 && o.epsilon <= 100)) {
    return absl::InvalidArgumentError("--epsilon must be in (0, 100] (0: no differential privacy)");
  }
  if (o.epsilon > 0 && o.task == "xray") {
    return absl::InvalidArgumentError(
        "--epsilon: the demo runs DP-SGD for the risk and anomaly tasks; the X-ray CNN's private "
        "point is bench_dp_utility --fmnist");
  }
  std::unique_ptr<DemoRun> run(new DemoRun(o));
  std::error_code ec;
  for (const char* dir : {"registry", "state", "nodes", "pulled", "pulled-risk"}) {
    fs::remove_all(absl::StrCat(run->root_, "/", dir), ec);
  }
  fs::create_directories(run->root_ + "/logs", ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("cannot create ", run->root_, ": ", ec.message()));
  }
  return run;
}

absl::Status DemoRun::Run() {
  if (absl::Status s = MakePki(); !s.ok()) return s;
  if (absl::Status s = MakeData(); !s.ok()) return s;
  if (absl::Status s = StartProcesses(); !s.ok()) return s;
  absl::StatusOr<uint64_t> final_version = RunRounds();
  if (!final_version.ok()) return final_version.status();
  if (absl::Status s = PullModels(); !s.ok()) return s;
  absl::StatusOr<std::vector<std::string>> losers = CompareWithLocalOnly(*final_version);
  if (!losers.ok()) return losers.status();
  if (cross_) {
    if (absl::Status s = CrossEvaluateModels(); !s.ok()) return s;
  }
  if (compare_) {
    if (absl::Status s = CompareOnEmergingScheme(); !s.ok()) return s;
  }
  if (absl::Status s = WriteJsonFile(root_ + "/summary.json", summary_); !s.ok()) return s;
  std::printf("summary: %s/summary.json\n", root_.c_str());
  if (!losers->empty() && main_.kind == v1::TASK_RISK && o_.epsilon > 0) {
    // Under DP the local-only baselines are the same model without noise:
    // losing to them is the guarantee's price, a result, not a failure.
    std::printf(
        "note: with differential privacy (epsilon %g per administration) the federated model "
        "did not beat the same model trained without DP by %s alone: the price of the "
        "guarantee (docs/privacy.md, \"Choosing the settings\")\n",
        o_.epsilon, absl::StrJoin(*losers, ", ").c_str());
    return absl::OkStatus();
  }
  if (!losers->empty() && main_.kind == v1::TASK_RISK) {
    return absl::FailedPreconditionError(
        absl::StrCat("the federated model did not beat local-only training on PR-AUC for ",
                     absl::StrJoin(*losers, ", ")));
  }
  return absl::OkStatus();
}

absl::Status DemoRun::MakePki() {
  std::printf("[1/%d] development PKI in %s (CA, coordinator, %s, analyst, admin)\n", steps_,
              pki_.c_str(), absl::StrJoin(admins_, ", ").c_str());
  pki::DevPkiOptions pki_options;
  pki_options.dir = pki_;
  pki_options.admins = admins_;
  pki_options.force = true;
  return pki::InitDevPki(pki_options);
}

absl::Status DemoRun::MakeData() {
  if (main_.kind == v1::TASK_XRAY) {
    std::printf("[2/%d] synthetic cargo X-rays (seed %llu, %llu images per administration)\n",
                steps_, static_cast<unsigned long long>(o_.seed),
                static_cast<unsigned long long>(o_.images));
    xray::XraySynthOptions synth_options;
    synth_options.admins = admins_;
    synth_options.images = o_.images;
    synth_options.seed = o_.seed;
    synth_options.out_dir = root_ + "/data";
    return xray::SynthesizeXrays(synth_options);
  }
  std::printf("[2/%d] synthetic declarations (seed %llu, largest administration %llu rows)\n",
              steps_, static_cast<unsigned long long>(o_.seed),
              static_cast<unsigned long long>(o_.rows));
  synth::SynthOptions synth_options;
  synth_options.admins = admins_;
  synth_options.rows = o_.rows;
  synth_options.seed = o_.seed;
  synth_options.out_dir = root_ + "/data";
  synth_options.emerging_scheme = compare_;
  return synth::SynthesizeDeclarations(synth_options);
}

absl::Status DemoRun::StartProcesses() {
  // Configs: every path absolute so the processes can run from anywhere.
  json task_configs = json::array();
  for (const DemoTask& t : tasks_) {
    json task_json{{"name", t.name},
                   {"min_nodes", o_.nodes},
                   {"rounds", o_.rounds},
                   {"round_deadline_seconds", 300},
                   {"eval_deadline_seconds", 120},
                   {"gather_seconds", 1},
                   {"training", t.training},
                   {t.model_field, t.model}};
    if (t.kind != v1::TASK_XRAY) task_json["schema_file"] = schema_;
    if (t.kind != v1::TASK_XRAY && o_.epsilon > 0) {
      task_json["privacy"] = {
          {"mode", "DP_SGD"}, {"target_epsilon", o_.epsilon}, {"delta", 1e-5}, {"clip_norm", 1.0}};
    }
    task_configs.push_back(task_json);
  }
  json coordinator = DevCoordinatorConfig(pki_, root_, task_configs);
  if (absl::Status s = WriteJsonFile(root_ + "/coordinator.json", coordinator); !s.ok()) return s;

  std::printf("[3/%d] coordinator and %zu node processes over mutual TLS 1.3 on 127.0.0.1%s\n",
              steps_, admins_.size() * tasks_.size(),
              compare_ ? " (anomaly and risk tasks for each administration)" : "");
  const std::string bin = ExecutableDir();
  auto running = StartCoordinatorProcess(root_ + "/coordinator.json", root_ + "/state/port",
                                         root_ + "/logs/coordinator.log");
  if (!running.ok()) return running.status();
  coordinator_ = std::move(running->process);
  const std::string& port = running->port;
  address_ = "localhost:" + port;
  // Keep the port in the config, so the coordinator restarted by hand from it
  // listens where the nodes' configs point.
  coordinator["listen_address"] = "127.0.0.1:" + port;
  if (absl::Status s = WriteJsonFile(root_ + "/coordinator.json", coordinator); !s.ok()) return s;

  std::error_code ec;
  for (const DemoTask& t : tasks_) {
    const bool companion = t.name != main_.name;
    for (const std::string& admin : admins_) {
      const std::string dir = NodeDir(root_, admin, t.name, companion);
      fs::create_directories(dir, ec);
      json node = DevNodeConfig(pki_, admin, address_, t.name, dir);
      if (t.kind == v1::TASK_XRAY) {
        node["xray"] = {{"labels_csv", absl::StrCat(root_, "/data/", admin, "/labels.csv")}};
      } else {
        AddDeclarationFiles(node, root_ + "/data", admin);
      }
      const std::string config_path = dir + "/node.json";
      if (absl::Status s = WriteJsonFile(config_path, node); !s.ok()) return s;
      auto config = node::LoadNodeConfig(config_path);
      if (!config.ok()) return config.status();
      const std::string log = companion
                                  ? absl::StrCat(root_, "/logs/node-", admin, "-", t.name, ".log")
                                  : absl::StrCat(root_, "/logs/node-", admin, ".log");
      auto process = ChildProcess::Spawn({bin + "/fedcustoms-node", "--config", config_path}, log);
      if (!process.ok()) return process.status();
      nodes_.push_back(DemoNode{admin, t.name, *config, *std::move(process)});
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> DemoRun::RunRounds() {
  // Progress: watch the registry through the admin service.
  auto admin_credentials = tls::MakeChannelCredentials(pki::IdentityFiles(pki_, "admin"));
  if (!admin_credentials.ok()) return admin_credentials.status();
  auto admin = v1::AdminService::NewStub(grpc::CreateChannel(address_, *admin_credentials));
  std::printf("[4/%d] %u federated rounds (logs in %s/logs)\n", steps_, o_.rounds, root_.c_str());
  auto final_version = FollowRounds(*admin, main_, tasks_.size(), o_.rounds, nodes_, *coordinator_,
                                    root_, o_.timeout_seconds);
  if (!final_version.ok()) return final_version.status();
  for (DemoNode& n : nodes_) {
    int code = n.process->Wait();
    if (code != 0) {
      return absl::InternalError(absl::StrCat("node ", n.admin, " (task ", n.task,
                                              ") exited with code ", code, "; see ",
                                              n.process->log_path()));
    }
  }
  return final_version;
}

absl::Status DemoRun::PullModels() {
  std::printf("[5/%d] analyst pull of the final model%s (signature and SHA-256 verified)\n", steps_,
              compare_ ? "s" : "");
  pull_.coordinator_address = address_;
  pull_.tls = pki::IdentityFiles(pki_, "analyst");
  pull_.coordinator_public_key = pki_ + "/coordinator-signing.pub";
  // What an analyst gets by default: the version released (the best on the
  // nodes' validation splits), which may be older than the last round's.
  pull_.released = true;
  std::vector<absl::StatusOr<manifest::ModelManifest>> pulled;
  for (const DemoTask& t : tasks_) {
    pull_.task = t.name;
    pull_.out_dir =
        t.name == main_.name ? root_ + "/pulled" : absl::StrCat(root_, "/pulled-", t.name);
    pulled.push_back(analyst::PullModel(pull_));
    if (pulled.back().ok()) {
      const manifest::ModelManifest& m = *pulled.back();
      std::printf(
          "      %s/model.pt: %s v%llu from %u nodes, %llu samples, aggregated in mode %s\n",
          pull_.out_dir.c_str(), t.name.c_str(), static_cast<unsigned long long>(m.version),
          m.contributing_nodes, static_cast<unsigned long long>(m.total_samples),
          m.aggregation_mode.c_str());
    }
  }
  coordinator_->Signal(SIGTERM);
  coordinator_->Wait();
  for (auto& p : pulled) {
    if (!p.ok()) return p.status();
    pulled_.push_back(*std::move(p));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> DemoRun::CompareWithLocalOnly(uint64_t final_version) {
  std::printf("[6/%d] local-only baselines (each administration alone, same epochs)\n", steps_);
  auto task_config = FinalizedTaskConfig(main_);
  if (!task_config.ok()) return task_config.status();
  const v1::TrainingConfig& training_config = task_config->training();
  assignment_.set_task(main_.name);
  task::CopyModelConfig(task::SpecOf(*task_config, v1::DeclarationSchema()), &assignment_);
  torch::set_num_threads(2);
  // The mode comes from the pulled model's signed manifest, so the summary
  // says how the model was really aggregated.
  summary_ = json{{"task", main_.name},
                  {"rounds", o_.rounds},
                  {"mode", pulled_[0].aggregation_mode},
                  {"global_version", final_version},
                  {"released_version", pulled_[0].version},
                  {"privacy", json::parse(pulled_[0].privacy_json, nullptr, false)},
                  {"nodes", json::object()}};
  std::vector<std::string> losers;
  // The second pair of columns: ROC-AUC, or for X-rays the accuracy over all
  // classes.
  const bool xray_task = main_.kind == v1::TASK_XRAY;
  auto second = [&](const v1::EvaluationMetrics& m) {
    return xray_task ? m.accuracy() : m.roc_auc();
  };
  std::printf("      %-4s %12s %12s %12s %12s\n", "node", "local PR-AUC", "fed PR-AUC",
              xray_task ? "local acc" : "local ROC", xray_task ? "fed acc" : "fed ROC");
  for (const DemoNode& n : nodes_) {
    if (n.task != main_.name) continue;
    auto learner = node::CreateLocalLearner(n.config);
    if (!learner.ok()) return learner.status();
    const task::ModelSpec spec = (*learner)->SpecOf(assignment_);
    auto local_state = (*learner)->TrainFromScratch(spec, training_config,
                                                    o_.rounds * training_config.local_epochs());
    if (!local_state.ok()) return local_state.status();
    auto local = (*learner)->Evaluate(spec, *local_state);
    if (!local.ok()) return local.status();
    learners_.push_back(*std::move(learner));
    hold_outs_.push_back({n.admin, learners_.back().get()});
    local_models_.push_back({n.admin + " local-only", *std::move(local_state)});
    auto federated = FederatedMetrics(n.config.work_dir() + "/metrics.jsonl", pulled_[0].version);
    if (!federated.ok()) return federated.status();
    summary_["nodes"][n.admin] = {{"local_only", MetricsJson(main_.kind, *local)},
                                  {"federated", MetricsJson(main_.kind, *federated)}};
    std::printf("      %-4s %12.4f %12.4f %12.4f %12.4f\n", n.admin.c_str(), local->pr_auc(),
                federated->pr_auc(), second(*local), second(*federated));
    if (!(federated->pr_auc() > local->pr_auc())) losers.push_back(n.admin);
  }
  summary_["federated_beats_local_only"] = losers.empty();
  return losers;
}

absl::Status DemoRun::CrossEvaluateModels() {
  std::printf(
      "[7/%d] what the federation adds: each model on every administration's hold-out "
      "(threat PR-AUC; the administrations' threat mixes differ)\n",
      steps_);
  std::string weights;
  if (auto verified =
          analyst::VerifyPulledModel(root_ + "/pulled", pull_.coordinator_public_key, &weights);
      !verified.ok()) {
    return verified.status();
  }
  auto federated_state = tensor::ParsePickledState(weights, root_ + "/pulled/model.pt");
  if (!federated_state.ok()) return federated_state.status();
  std::vector<NamedModel> models = std::move(local_models_);
  models.push_back({"federated", *std::move(federated_state)});
  auto table = CrossEvaluate(learners_.front()->SpecOf(assignment_), models, hold_outs_);
  if (!table.ok()) return table.status();
  summary_["cross_evaluation"] = *table;
  return absl::OkStatus();
}

absl::Status DemoRun::CompareOnEmergingScheme() {
  std::printf(
      "[7/%d] what anomaly detection adds: share of frauds in each model's top 1 %% and 5 %% "
      "of the hold-out (split: half the budget each); emerging = over-invoicing that starts "
      "after the training period, known = the patterns control results have shown\n",
      steps_);
  auto schema_proto = data::LoadDeclarationSchema(schema_);
  if (!schema_proto.ok()) return schema_proto.status();
  auto anomaly_model =
      analyst::LoadPulledModel(root_ + "/pulled", pull_.coordinator_public_key, *schema_proto);
  if (!anomaly_model.ok()) return anomaly_model.status();
  auto risk_model =
      analyst::LoadPulledModel(root_ + "/pulled-risk", pull_.coordinator_public_key, *schema_proto);
  if (!risk_model.ok()) return risk_model.status();
  auto comparison = EmergingSchemeComparison(nodes_, root_, *risk_model, *anomaly_model);
  if (!comparison.ok()) return comparison.status();
  summary_["emerging_scheme"] = *comparison;
  return absl::OkStatus();
}

}  // namespace

absl::Status RunDemo(const DemoOptions& o) {
  absl::StatusOr<std::unique_ptr<DemoRun>> run = DemoRun::Create(o);
  if (!run.ok()) return run.status();
  return (*run)->Run();
}

}  // namespace fedcustoms::tools
