// fedcustoms-coordinator --config coordinator.json
#include <signal.h>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <thread>

#include "common/log/logging.h"
#include "coordinator/config/coordinator_config.h"
#include "coordinator/coordinator.h"

int main(int argc, char** argv) {
  CLI::App app{"fedcustoms coordinator: runs federated rounds over mutual TLS"};
  std::string config_path;
  app.add_option("--config", config_path, "coordinator config (protobuf JSON)")
      ->required()
      ->check(CLI::ExistingFile);
  CLI11_PARSE(app, argc, argv);

  // Block the stop signals in every thread; one thread waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

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
    std::thread stopper([&] {
      int signal = 0;
      sigwait(&signals, &signal);
      spdlog::info("signal {} received, shutting down", signal);
      (*coordinator)->Shutdown();
    });
    (*coordinator)->Wait();
    stopper.join();
  } catch (const std::exception& e) {
    spdlog::error("coordinator stopped: {}", e.what());
    return 1;
  }
  return 0;
}
