#include "tools/demo/dev_federation.h"

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/io/atomic_file.h"

namespace fedcustoms::tools {

nlohmann::json DevCoordinatorConfig(const std::string& pki_dir, const std::string& root,
                                    nlohmann::json tasks) {
  return {{"listen_address", "127.0.0.1:0"},
          {"tls",
           {{"ca_cert", pki_dir + "/ca.pem"},
            {"cert", pki_dir + "/coordinator.pem"},
            {"key", pki_dir + "/coordinator.key"}}},
          {"signing_key", pki_dir + "/coordinator-signing.key"},
          {"registry_dir", root + "/registry"},
          {"state_dir", root + "/state"},
          {"port_file", root + "/state/port"},
          {"aggregation_mode", "SECURE"},
          {"tasks", std::move(tasks)}};
}

nlohmann::json DevNodeConfig(const std::string& pki_dir, const std::string& admin,
                             const std::string& coordinator_address, const std::string& task,
                             const std::string& work_dir) {
  return {{"coordinator_address", coordinator_address},
          {"tls",
           {{"ca_cert", pki_dir + "/ca.pem"},
            {"cert", absl::StrCat(pki_dir, "/", admin, ".pem")},
            {"key", absl::StrCat(pki_dir, "/", admin, ".key")}}},
          {"coordinator_public_key", pki_dir + "/coordinator-signing.pub"},
          {"task", task},
          {"work_dir", work_dir},
          {"exit_when_finished", true},
          {"threads", 1}};
}

void AddDeclarationFiles(nlohmann::json& node_config, const std::string& data_dir,
                         const std::string& admin) {
  node_config["data_file"] = absl::StrCat(data_dir, "/", admin, "/declarations.csv");
  node_config["schema_file"] = absl::StrCat(data_dir, "/", admin, "/declarations.schema.json");
}

absl::Status WriteJsonFile(const std::string& path, const nlohmann::json& value) {
  return io::WriteFileAtomically(path, value.dump(2) + "\n");
}

absl::StatusOr<RunningCoordinator> StartCoordinatorProcess(const std::string& config_path,
                                                           const std::string& port_file,
                                                           const std::string& log_path,
                                                           const std::vector<std::string>& env) {
  std::error_code ec;
  std::filesystem::remove(port_file, ec);
  std::vector<std::string> argv;
  if (!env.empty()) {
    // env(1) execs the coordinator in place: the pid stays the coordinator's.
    argv.push_back("/usr/bin/env");
    argv.insert(argv.end(), env.begin(), env.end());
  }
  argv.insert(argv.end(), {ExecutableDir() + "/fedcustoms-coordinator", "--config", config_path});
  auto process = ChildProcess::Spawn(argv, log_path);
  if (!process.ok()) return process.status();
  RunningCoordinator running{*std::move(process), ""};
  for (int i = 0; i < 600 && running.port.empty(); ++i) {
    if (auto code = running.process->Poll()) {
      return absl::InternalError(absl::StrCat("the coordinator exited with code ", *code,
                                              " during start-up; see ", log_path));
    }
    auto text = io::ReadFile(port_file);
    if (text.ok()) {
      running.port = *text;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  if (running.port.empty()) {
    return absl::DeadlineExceededError(
        absl::StrCat("the coordinator did not start in 60 s; see ", log_path));
  }
  return running;
}

absl::StatusOr<double> RunProcessFederation(
    const std::string& root, const nlohmann::json& coordinator,
    const std::vector<std::string>& admins,
    const std::function<nlohmann::json(const std::string& admin, const std::string& address,
                                       const std::string& dir)>& node_config) {
  std::error_code ec;
  std::filesystem::create_directories(root + "/logs", ec);
  if (absl::Status s = WriteJsonFile(root + "/coordinator.json", coordinator); !s.ok()) return s;
  const auto start = std::chrono::steady_clock::now();
  auto running = StartCoordinatorProcess(root + "/coordinator.json", root + "/state/port",
                                         root + "/logs/coordinator.log");
  if (!running.ok()) return running.status();
  auto stop = [&] {
    running->process->Signal(SIGTERM);
    running->process->Wait();
  };
  std::vector<std::unique_ptr<ChildProcess>> nodes;
  for (const std::string& admin : admins) {
    const std::string dir = absl::StrCat(root, "/nodes/", admin);
    std::filesystem::create_directories(dir, ec);
    absl::Status s =
        WriteJsonFile(dir + "/node.json", node_config(admin, "localhost:" + running->port, dir));
    absl::StatusOr<std::unique_ptr<ChildProcess>> process =
        s.ok() ? ChildProcess::Spawn(
                     {ExecutableDir() + "/fedcustoms-node", "--config", dir + "/node.json"},
                     absl::StrCat(root, "/logs/node-", admin, ".log"))
               : absl::StatusOr<std::unique_ptr<ChildProcess>>(s);
    if (!process.ok()) {
      for (auto& n : nodes) n->Signal(SIGTERM);
      stop();
      return process.status();
    }
    nodes.push_back(*std::move(process));
  }
  absl::Status failed;
  for (size_t k = 0; k < nodes.size(); ++k) {
    if (int code = nodes[k]->Wait(); code != 0 && failed.ok()) {
      failed = absl::InternalError(absl::StrCat("node ", admins[k], " exited with code ", code,
                                                "; see ", nodes[k]->log_path()));
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  stop();
  if (!failed.ok()) return failed;
  return seconds;
}

}  // namespace fedcustoms::tools
