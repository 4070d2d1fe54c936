// fedcustoms-node --config node.json
#include <signal.h>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <thread>

#include "common/log/logging.h"
#include "node/config/node_config.h"
#include "node/node.h"

int main(int argc, char** argv) {
  CLI::App app{"fedcustoms node: trains on local declarations, sends only weight updates"};
  std::string config_path;
  app.add_option("--config", config_path, "node config (protobuf JSON)")
      ->required()
      ->check(CLI::ExistingFile);
  CLI11_PARSE(app, argc, argv);

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

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
    std::thread stopper([&] {
      int signal = 0;
      sigwait(&signals, &signal);
      if (signal != 0) (*node)->Stop();
    });
    stopper.detach();
    absl::Status status = (*node)->Run();
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
