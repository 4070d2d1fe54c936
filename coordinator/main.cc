// fedcustoms-coordinator --config coordinator.json
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <memory>

#include "common/log/logging.h"
#include "common/process/stop_signals.h"
#include "coordinator/config/coordinator_config.h"
#include "coordinator/coordinator.h"

int main(int argc, char** argv) {
  CLI::App app{"fedcustoms coordinator: runs federated rounds over mutual TLS"};
  std::string config_path;
  app.add_option("--config", config_path, "coordinator config (protobuf JSON)")
      ->required()
      ->check(CLI::ExistingFile);
  CLI11_PARSE(app, argc, argv);

  fedcustoms::process::BlockStopSignals();

  auto config = fedcustoms::coordinator::LoadCoordinatorConfig(config_path);
  fedcustoms::log::InitLogging("coordinator", config.ok() && config->json_logs());
  if (!config.ok()) {
    spdlog::error("{}", config.status().message());
    return 2;
  }
  try {
    auto coordinator = fedcustoms::coordinator::Coordinator::Create(*config);
    if (!coordinator.ok()) {
      spdlog::error("{}", coordinator.status().message());
      return 1;
    }
    if (absl::Status s = (*coordinator)->Start(); !s.ok()) {
      spdlog::error("{}", s.message());
      return 1;
    }
    // The signal thread may outlive main's scope: it only holds a weak reference.
    std::shared_ptr<fedcustoms::coordinator::Coordinator> running = std::move(*coordinator);
    fedcustoms::process::OnStopSignal([weak = std::weak_ptr(running)](int signal) {
      spdlog::info("signal {} received, shutting down", signal);
      if (auto alive = weak.lock()) alive->Shutdown();
    });
    running->Wait();
  } catch (const std::exception& e) {
    spdlog::error("coordinator stopped: {}", e.what());
    return 1;
  }
  return 0;
}
