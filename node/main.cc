// fedcustoms-node --config node.json
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <memory>

#include "common/log/logging.h"
#include "common/process/stop_signals.h"
#include "node/config/node_config.h"
#include "node/node.h"

int main(int argc, char** argv) {
  CLI::App app{"fedcustoms node: trains on local declarations, sends only weight updates"};
  std::string config_path;
  app.add_option("--config", config_path, "node config (protobuf JSON)")
      ->required()
      ->check(CLI::ExistingFile);
  CLI11_PARSE(app, argc, argv);

  fedcustoms::process::BlockStopSignals();

  auto config = fedcustoms::node::LoadNodeConfig(config_path);
  fedcustoms::log::InitLogging("node", config.ok() && config->json_logs());
  if (!config.ok()) {
    spdlog::error("{}", config.status().message());
    return 2;
  }
  try {
    auto node = fedcustoms::node::Node::Create(*config);
    if (!node.ok()) {
      spdlog::error("{}", node.status().message());
      return 1;
    }
    // The signal thread may outlive main's scope: it only holds a weak reference.
    std::shared_ptr<fedcustoms::node::Node> running = std::move(*node);
    fedcustoms::process::OnStopSignal([weak = std::weak_ptr(running)](int signal) {
      spdlog::info("signal {} received, stopping", signal);
      if (auto alive = weak.lock()) alive->Stop();
    });
    absl::Status status = running->Run();
    if (!status.ok()) {
      spdlog::error("{}", status.message());
      return 1;
    }
  } catch (const std::exception& e) {
    spdlog::error("node stopped: {}", e.what());
    return 1;
  }
  return 0;
}
