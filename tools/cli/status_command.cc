// fedcustoms status: the coordinator's rounds and evaluations (admin certificate).
#include <cstdio>
#include <memory>

#include "analyst/status/coordinator_status.h"
#include "common/pki/dev_pki.h"
#include "tools/cli/command.h"

namespace fedcustoms::tools {

std::vector<Command> AddStatusCommand(CLI::App& app) {
  struct Options {
    std::string coordinator = "localhost:7443", pki = "pki", identity = "admin";
  };
  auto o = std::make_shared<Options>();
  auto* status = app.add_subcommand("status", "the coordinator's rounds and evaluations (admin)");
  status->add_option("--coordinator", o->coordinator)->capture_default_str();
  status->add_option("--pki", o->pki, "directory with ca.pem and <identity>.pem/.key")
      ->capture_default_str();
  status->add_option("--identity", o->identity, "an admin certificate in --pki")
      ->capture_default_str();

  auto run = [o] {
    auto response =
        analyst::FetchCoordinatorStatus(o->coordinator, pki::IdentityFiles(o->pki, o->identity));
    if (!response.ok()) return ExitCode(response.status());
    std::printf("%s\n", analyst::CoordinatorStatusToJson(*response).dump(2).c_str());
    return 0;
  };
  return {{status, run}};
}

}  // namespace fedcustoms::tools
