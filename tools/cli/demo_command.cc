// fedcustoms demo: a whole federation on this machine.
#include <signal.h>

#include <memory>

#include "tools/cli/command.h"
#include "tools/demo/demo_runner.h"

namespace fedcustoms::tools {

std::vector<Command> AddDemoCommand(CLI::App& app) {
  auto o = std::make_shared<DemoOptions>();
  auto* demo = app.add_subcommand("demo", "run a whole federation on this machine");
  demo->add_option("--task", o->task, "risk, anomaly or xray")
      ->check(CLI::IsMember({"risk", "anomaly", "xray"}))
      ->capture_default_str();
  demo->add_option("--workdir", o->workdir)->capture_default_str();
  demo->add_option("--nodes", o->nodes)->capture_default_str();
  demo->add_option("--rounds", o->rounds)->capture_default_str();
  demo->add_option("--rows", o->rows, "rows of the largest administration")->capture_default_str();
  demo->add_option("--seed", o->seed)->capture_default_str();
  demo->add_option("--epsilon", o->epsilon,
                   "train with DP-SGD, spending this epsilon per administration over the rounds "
                   "(delta 1e-5); 0: no differential privacy")
      ->capture_default_str();
  demo->add_option("--images", o->images, "X-ray images per administration (xray)")
      ->capture_default_str();

  auto run = [o] {
    // A child that exits early must not kill the demo with SIGPIPE; the demo
    // stops its children itself when it fails.
    signal(SIGPIPE, SIG_IGN);
    return ExitCode(RunDemo(*o));
  };
  return {{demo, run}};
}

}  // namespace fedcustoms::tools
