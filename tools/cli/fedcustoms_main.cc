// fedcustoms: the operator and analyst command line.
//   fedcustoms certs init --dir DIR --admins EE,FI,LV
//   fedcustoms certs revoke --dir DIR --names EE [--out crl.pem] [--days 30]
//   fedcustoms synth declarations --admins EE,FI,LV --rows N --seed S --out DIR
//                                 [--emerging-scheme]
//   fedcustoms synth xray --admins EE,FI,LV --images N --seed S --out DIR [--size 64]
//                         [--dual-energy] [--positive-rate R]
//   fedcustoms pull --task risk --version latest --out DIR
//   fedcustoms score --model DIR --data CSV --schema JSON --out scores.csv [--explain K]
//                    [--anomaly-model DIR] [--counterfactual FEATURE] [--budget B]
//   fedcustoms score --task xray --model DIR --data labels.csv --out scores.csv
//                    [--gradcam OUTDIR]
//   fedcustoms report --model DIR --data CSV --schema JSON --by origin_country,office
//                     [--out report]
//   fedcustoms fuse --input indicators.json [--out result.json]
//   fedcustoms status [--coordinator HOST:PORT] [--pki DIR] [--identity admin]
//   fedcustoms demo [--task risk|anomaly|xray] --workdir DIR --nodes 3 --rounds 5
//   fedcustoms contributions list --config node.json
//   fedcustoms contributions release --config node.json --model-version V --reason TEXT
//   fedcustoms privacy epsilon --sampling-rate Q --noise-multiplier S --steps N --delta D
//   fedcustoms privacy noise --target-epsilon E --delta D --sampling-rate Q --epochs K
// Each subcommand is in its own file beside this one (command.h).
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <exception>
#include <vector>

#include "common/log/logging.h"
#include "tools/cli/command.h"

int main(int argc, char** argv) {
  namespace tools = fedcustoms::tools;
  fedcustoms::log::InitLogging("fedcustoms", false);
  CLI::App app{"fedcustoms: federated learning for customs administrations"};
  app.require_subcommand(1);
  std::vector<tools::Command> commands;
  for (auto add : {tools::AddCertsCommands, tools::AddSynthCommands, tools::AddPullCommand,
                   tools::AddScoreCommand, tools::AddReportCommand, tools::AddFuseCommand,
                   tools::AddStatusCommand, tools::AddDemoCommand, tools::AddContributionsCommands,
                   tools::AddPrivacyCommands}) {
    for (tools::Command& c : add(app)) commands.push_back(std::move(c));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help prints and exits 0; anything else is a usage error: exit code 2
    // (command.h), not CLI11's own codes.
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    for (const tools::Command& c : commands) {
      if (c.subcommand->parsed()) return c.run();
    }
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
  return 0;
}
