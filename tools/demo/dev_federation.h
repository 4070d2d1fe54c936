#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tools/demo/child_process.h"

namespace fedcustoms::tools {

// Building blocks of a federation on one machine with a development PKI
// (pki::InitDevPki in `pki_dir`), shared by the demo and the benchmarks that
// run real coordinator and node processes.

// A coordinator config (JSON, every path absolute) listening on
// 127.0.0.1:0 in mode SECURE, with registry, state and port file under
// `root`, serving `tasks` (a JSON array of TaskConfig).
nlohmann::json DevCoordinatorConfig(const std::string& pki_dir, const std::string& root,
                                    nlohmann::json tasks);

// A node config (JSON) for administration `admin` of task `task` dialing
// `coordinator_address`, with its work_dir, one training thread, exiting when
// the task has finished. The caller adds the data fields.
nlohmann::json DevNodeConfig(const std::string& pki_dir, const std::string& admin,
                             const std::string& coordinator_address, const std::string& task,
                             const std::string& work_dir);

// Adds the synthetic declarations of `admin` (synth layout:
// <data_dir>/<admin>/declarations.csv and .schema.json) to a node config.
void AddDeclarationFiles(nlohmann::json& node_config, const std::string& data_dir,
                         const std::string& admin);

// Writes `value` as indented JSON to `path` atomically.
absl::Status WriteJsonFile(const std::string& path, const nlohmann::json& value);

struct RunningCoordinator {
  std::unique_ptr<ChildProcess> process;
  // The port it listens on (read from its port file).
  std::string port;
};

// Starts fedcustoms-coordinator (next to this executable) with `config_path`
// (whose port_file is `port_file`, removed first), logging to `log_path`, and
// waits up to 60 s for the port. `env` ("NAME=value") is added to its
// environment (the crash-safety tests arm a crash point this way). Errors say
// where the log is.
absl::StatusOr<RunningCoordinator> StartCoordinatorProcess(
    const std::string& config_path, const std::string& port_file, const std::string& log_path,
    const std::vector<std::string>& env = {});

// Runs a federation of processes to the end, for benchmarks: writes
// `coordinator` to root/coordinator.json and starts it (StartCoordinatorProcess,
// logs in root/logs), then one fedcustoms-node per admin with the config
// `node_config(admin, address, dir)` returns (dir = root/nodes/<admin>, its
// config written there), and waits for every node to exit. Returns the
// seconds from the coordinator's start to the last node's exit; a node that
// exits with an error is Internal naming its log. The coordinator is stopped
// (SIGTERM) either way.
absl::StatusOr<double> RunProcessFederation(
    const std::string& root, const nlohmann::json& coordinator,
    const std::vector<std::string>& admins,
    const std::function<nlohmann::json(const std::string& admin, const std::string& address,
                                       const std::string& dir)>& node_config);

}  // namespace fedcustoms::tools
