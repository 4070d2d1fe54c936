#include "node/demo/demo_runner.h"

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
#include "common/crypto/atomic_file.h"
#include "common/log/logging.h"
#include "common/pki/dev_pki.h"
#include "common/synth/declarations_synth.h"
#include "common/task/risk_task.h"
#include "common/task/task_model.h"
#include "common/tls/credentials.h"
#include "common/xray/xray_synth.h"
#include "fedcustoms/v1/admin_service.grpc.pb.h"
#include "node/analyst/model_puller.h"
#include "node/config/node_config.h"
#include "node/demo/child_process.h"
#include "node/demo/dev_federation.h"
#include "node/learner/local_learner.h"

namespace fedcustoms::node {
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

absl::Status WriteJson(const std::string& path, const json& j) {
  return crypto::WriteFileAtomically(path, j.dump(2) + "\n");
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

}  // namespace

absl::Status RunDemo(const DemoOptions& o) {
  if (o.task != "risk" && o.task != "anomaly" && o.task != "xray") {
    return absl::InvalidArgumentError(
        absl::StrCat("--task ", o.task, ": expected risk, anomaly or xray"));
  }
  const v1::TaskKind kind = task::ResolveKind(v1::TASK_KIND_UNSPECIFIED, o.task);
  if (o.nodes < 2 || o.nodes > kAdministrations.size()) {
    return absl::InvalidArgumentError(absl::StrCat("--nodes must be 2..", kAdministrations.size()));
  }
  if (o.rounds < 1 || o.rounds > 100) return absl::InvalidArgumentError("--rounds must be 1..100");
  const std::vector<std::string> admins(kAdministrations.begin(),
                                        kAdministrations.begin() + o.nodes);
  const std::string root = fs::absolute(o.workdir).lexically_normal().string();
  const std::string pki = root + "/pki";
  std::error_code ec;
  fs::remove_all(root + "/registry", ec);
  fs::remove_all(root + "/state", ec);
  fs::remove_all(root + "/nodes", ec);
  fs::remove_all(root + "/pulled", ec);
  fs::create_directories(root + "/logs", ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot create ", root, ": ", ec.message()));

  std::printf("[1/6] development PKI in %s (CA, coordinator, %s, analyst, admin)\n", pki.c_str(),
              absl::StrJoin(admins, ", ").c_str());
  pki::DevPkiOptions pki_options;
  pki_options.dir = pki;
  pki_options.admins = admins;
  pki_options.force = true;
  if (absl::Status s = pki::InitDevPki(pki_options); !s.ok()) return s;

  if (kind == v1::TASK_XRAY) {
    std::printf("[2/6] synthetic cargo X-rays (seed %llu, %llu images per administration)\n",
                static_cast<unsigned long long>(o.seed), static_cast<unsigned long long>(o.images));
    xray::XraySynthOptions synth_options;
    synth_options.admins = admins;
    synth_options.images = o.images;
    synth_options.seed = o.seed;
    synth_options.out_dir = root + "/data";
    if (absl::Status s = xray::SynthesizeXrays(synth_options); !s.ok()) return s;
  } else {
    std::printf("[2/6] synthetic declarations (seed %llu, largest administration %llu rows)\n",
                static_cast<unsigned long long>(o.seed), static_cast<unsigned long long>(o.rows));
    synth::SynthOptions synth_options;
    synth_options.admins = admins;
    synth_options.rows = o.rows;
    synth_options.seed = o.seed;
    synth_options.out_dir = root + "/data";
    if (absl::Status s = synth::SynthesizeDeclarations(synth_options); !s.ok()) return s;
  }

  // Configs: every path absolute so the processes can run from anywhere.
  const std::string schema = absl::StrCat(root, "/data/", admins[0], "/declarations.schema.json");
  json training{{"local_epochs", 2},
                {"batch_size", 128},
                {"learning_rate", 0.006},
                {"optimizer", "adam"},
                {"seed", 11}};
  json model{{"hidden_units", {64, 32}}, {"embedding_dim", 8}, {"dropout", 0.1}};
  std::string model_field = "model";
  if (kind == v1::TASK_ANOMALY) {
    model_field = "anomaly_model";
    model = {{"hidden_units", {32, 8}}, {"embedding_dim", 4}, {"flag_quantile", 0.99}};
  } else if (kind == v1::TASK_XRAY) {
    model_field = "xray_model";
    model = {{"channels", {16, 32, 64}}, {"image_size", 64}, {"hidden_units", 128}};
    training = {{"local_epochs", 2},
                {"batch_size", 32},
                {"learning_rate", 0.002},
                {"optimizer", "adam"},
                {"seed", 11}};
  }
  json task_json{{"name", o.task},
                 {"min_nodes", o.nodes},
                 {"rounds", o.rounds},
                 {"round_deadline_seconds", 300},
                 {"eval_deadline_seconds", 120},
                 {"gather_seconds", 1},
                 {"training", training},
                 {model_field, model}};
  if (kind != v1::TASK_XRAY) task_json["schema_file"] = schema;
  json coordinator = DevCoordinatorConfig(pki, root, json::array({task_json}));
  if (absl::Status s = WriteJson(root + "/coordinator.json", coordinator); !s.ok()) return s;

  std::printf("[3/6] coordinator and %u nodes over mutual TLS 1.3 on 127.0.0.1\n", o.nodes);
  const std::string bin = ExecutableDir();
  auto running = StartCoordinatorProcess(root + "/coordinator.json", root + "/state/port",
                                         root + "/logs/coordinator.log");
  if (!running.ok()) return running.status();
  std::unique_ptr<ChildProcess>& coord = running->process;
  const std::string& port = running->port;
  const std::string address = "localhost:" + port;
  // Keep the port in the config, so the coordinator restarted by hand from it
  // listens where the nodes' configs point.
  coordinator["listen_address"] = "127.0.0.1:" + port;
  if (absl::Status s = WriteJson(root + "/coordinator.json", coordinator); !s.ok()) return s;

  std::vector<std::unique_ptr<ChildProcess>> nodes;
  std::vector<v1::NodeConfig> node_configs;
  for (const std::string& admin : admins) {
    const std::string dir = absl::StrCat(root, "/nodes/", admin);
    fs::create_directories(dir, ec);
    json node = DevNodeConfig(pki, admin, address, o.task, dir);
    if (kind == v1::TASK_XRAY) {
      node["xray"] = {{"labels_csv", absl::StrCat(root, "/data/", admin, "/labels.csv")}};
    } else {
      node["data_file"] = absl::StrCat(root, "/data/", admin, "/declarations.csv");
      node["schema_file"] = absl::StrCat(root, "/data/", admin, "/declarations.schema.json");
    }
    const std::string config_path = dir + "/node.json";
    if (absl::Status s = WriteJson(config_path, node); !s.ok()) return s;
    auto config = LoadNodeConfig(config_path);
    if (!config.ok()) return config.status();
    node_configs.push_back(*config);
    auto process = ChildProcess::Spawn({bin + "/fedcustoms-node", "--config", config_path},
                                       absl::StrCat(root, "/logs/node-", admin, ".log"));
    if (!process.ok()) return process.status();
    nodes.push_back(*std::move(process));
  }

  // Progress: watch the registry through the admin service.
  v1::TlsFiles admin_tls;
  admin_tls.set_ca_cert(pki + "/ca.pem");
  admin_tls.set_cert(pki + "/admin.pem");
  admin_tls.set_key(pki + "/admin.key");
  auto admin_credentials = tls::MakeChannelCredentials(admin_tls);
  if (!admin_credentials.ok()) return admin_credentials.status();
  auto admin = v1::AdminService::NewStub(grpc::CreateChannel(address, *admin_credentials));
  std::printf("[4/6] %u federated rounds (logs in %s/logs)\n", o.rounds, root.c_str());
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(o.timeout_seconds);
  uint32_t shown = 0;
  uint64_t final_version = 0;
  while (true) {
    for (size_t i = 0; i < nodes.size(); ++i) {
      auto code = nodes[i]->Poll();
      if (code && *code != 0) {
        return absl::InternalError(absl::StrCat("node ", admins[i], " exited with code ", *code,
                                                "; see ", nodes[i]->log_path()));
      }
    }
    if (auto code = coord->Poll()) {
      return absl::InternalError(
          absl::StrCat("the coordinator exited with code ", *code, "; see ", coord->log_path()));
    }
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::GetStatusResponse status;
    if (admin->GetStatus(&context, v1::GetStatusRequest(), &status).ok() &&
        status.tasks_size() == 1) {
      const v1::TaskStatus& t = status.tasks(0);
      while (shown < t.rounds_completed()) {
        ++shown;
        std::printf("      round %u/%u done: global model version %llu, %d nodes", shown, o.rounds,
                    static_cast<unsigned long long>(t.latest_version()),
                    status.joined_nodes_size());
        // The metrics belong to the latest version only.
        if (shown == t.rounds_completed() && t.has_latest_metrics()) {
          std::printf(", mean hold-out PR-AUC %.3f, ROC-AUC %.3f", t.latest_metrics().pr_auc(),
                      t.latest_metrics().roc_auc());
          if (kind == v1::TASK_XRAY) {
            std::printf(", accuracy %.3f", t.latest_metrics().accuracy());
          }
        }
        std::printf("\n");
        std::fflush(stdout);
      }
      if (t.phase() == "finished") {
        final_version = t.latest_version();
        break;
      }
    }
    if (std::chrono::steady_clock::now() > give_up) {
      return absl::DeadlineExceededError(absl::StrCat(
          "the rounds did not finish in ", o.timeout_seconds, " s; see ", root, "/logs"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  for (size_t i = 0; i < nodes.size(); ++i) {
    int code = nodes[i]->Wait();
    if (code != 0) {
      return absl::InternalError(absl::StrCat("node ", admins[i], " exited with code ", code,
                                              "; see ", nodes[i]->log_path()));
    }
  }

  std::printf("[5/6] analyst pull of the final model (signature and SHA-256 verified)\n");
  PullOptions pull;
  pull.coordinator_address = address;
  pull.tls.set_ca_cert(pki + "/ca.pem");
  pull.tls.set_cert(pki + "/analyst.pem");
  pull.tls.set_key(pki + "/analyst.key");
  pull.coordinator_public_key = pki + "/coordinator-signing.pub";
  pull.out_dir = root + "/pulled";
  pull.task = o.task;
  auto pulled = PullModel(pull);
  coord->Signal(SIGTERM);
  coord->Wait();
  if (!pulled.ok()) return pulled.status();
  std::printf("      %s/model.pt: %s v%llu from %u nodes, %llu samples, aggregated in mode %s\n",
              pull.out_dir.c_str(), o.task.c_str(),
              static_cast<unsigned long long>(pulled->version), pulled->contributing_nodes,
              static_cast<unsigned long long>(pulled->total_samples),
              pulled->aggregation_mode.c_str());

  std::printf("[6/6] local-only baselines (each administration alone, same epochs)\n");
  v1::TaskConfig task_config;
  task_config.set_name(o.task);
  if (!google::protobuf::util::JsonStringToMessage(training.dump(), task_config.mutable_training())
           .ok() ||
      !google::protobuf::util::JsonStringToMessage(
           model.dump(),
           kind == v1::TASK_ANOMALY
               ? static_cast<google::protobuf::Message*>(task_config.mutable_anomaly_model())
           : kind == v1::TASK_XRAY
               ? static_cast<google::protobuf::Message*>(task_config.mutable_xray_model())
               : task_config.mutable_model())
           .ok()) {
    return absl::InternalError("the demo's own training or model config does not parse");
  }
  if (absl::Status s = task::FinalizeTrainingConfig(task_config.mutable_training()); !s.ok()) {
    return s;
  }
  if (absl::Status s = task::FinalizeTaskModel(&task_config); !s.ok()) return s;
  const v1::TrainingConfig& training_config = task_config.training();
  v1::TaskAssignment assignment;
  assignment.set_task(o.task);
  task::CopyModelConfig(task::SpecOf(task_config, v1::DeclarationSchema()), &assignment);
  torch::set_num_threads(2);
  // The mode comes from the pulled model's signed manifest, so the summary
  // says how the model was really aggregated.
  json summary{{"task", o.task},
               {"rounds", o.rounds},
               {"mode", pulled->aggregation_mode},
               {"global_version", final_version},
               {"nodes", json::object()}};
  std::vector<std::string> losers;
  // The second pair of columns: ROC-AUC, or for X-rays the accuracy over all
  // classes.
  const bool xray_task = kind == v1::TASK_XRAY;
  auto second = [&](const v1::EvaluationMetrics& m) {
    return xray_task ? m.accuracy() : m.roc_auc();
  };
  std::printf("      %-4s %12s %12s %12s %12s\n", "node", "local PR-AUC", "fed PR-AUC",
              xray_task ? "local acc" : "local ROC", xray_task ? "fed acc" : "fed ROC");
  for (size_t i = 0; i < admins.size(); ++i) {
    auto learner = CreateLocalLearner(node_configs[i]);
    if (!learner.ok()) return learner.status();
    auto local = (*learner)->TrainLocalOnly((*learner)->SpecOf(assignment), training_config,
                                            o.rounds * training_config.local_epochs());
    if (!local.ok()) return local.status();
    auto federated =
        FederatedMetrics(absl::StrCat(root, "/nodes/", admins[i], "/metrics.jsonl"), final_version);
    if (!federated.ok()) return federated.status();
    summary["nodes"][admins[i]] = {{"local_only", MetricsJson(kind, *local)},
                                   {"federated", MetricsJson(kind, *federated)}};
    std::printf("      %-4s %12.4f %12.4f %12.4f %12.4f\n", admins[i].c_str(), local->pr_auc(),
                federated->pr_auc(), second(*local), second(*federated));
    if (!(federated->pr_auc() > local->pr_auc())) losers.push_back(admins[i]);
  }
  summary["federated_beats_local_only"] = losers.empty();
  if (absl::Status s = WriteJson(root + "/summary.json", summary); !s.ok()) return s;
  std::printf("summary: %s/summary.json\n", root.c_str());
  if (!losers.empty() && kind == v1::TASK_RISK) {
    return absl::FailedPreconditionError(
        absl::StrCat("the federated model did not beat local-only training on PR-AUC for ",
                     absl::StrJoin(losers, ", ")));
  }
  return absl::OkStatus();
}

}  // namespace fedcustoms::node
