// fedcustoms certs init | revoke: the development PKI.
#include <spdlog/spdlog.h>

#include <memory>

#include "common/pki/dev_pki.h"
#include "tools/cli/command.h"

namespace fedcustoms::tools {

std::vector<Command> AddCertsCommands(CLI::App& app) {
  struct Options {
    std::string dir = "pki", admins = "EE,FI,LV";
    bool force = false;
    std::string revoke_names, revoke_out;
    int revoke_days = 30;
  };
  auto o = std::make_shared<Options>();
  auto* certs = app.add_subcommand("certs", "development PKI");
  certs->require_subcommand(1);

  auto* init = certs->add_subcommand("init", "write a development CA and role certificates");
  init->add_option("--dir", o->dir, "output directory")->capture_default_str();
  init->add_option("--admins", o->admins, "administration codes, comma-separated")
      ->capture_default_str();
  init->add_flag("--force", o->force, "replace an existing CA");

  auto* revoke = certs->add_subcommand(
      "revoke", "write a CRL listing certificates the coordinator must refuse (tls.crl)");
  revoke->add_option("--dir", o->dir, "PKI directory (ca.pem, ca.key, <name>.pem)")
      ->capture_default_str();
  revoke
      ->add_option("--names", o->revoke_names,
                   "certificates to revoke, comma-separated (e.g. EE); the list "
                   "replaces any earlier one")
      ->required();
  revoke->add_option("--out", o->revoke_out, "CRL file (default <dir>/crl.pem)");
  revoke->add_option("--days", o->revoke_days, "days until the list must be renewed")
      ->capture_default_str();

  auto run_init = [o] {
    pki::DevPkiOptions options;
    options.dir = o->dir;
    options.admins = SplitCodes(o->admins);
    options.force = o->force;
    if (int rc = ExitCode(pki::InitDevPki(options))) return rc;
    spdlog::info("development PKI written to {} (private keys mode 0600; never commit them)",
                 o->dir);
    return 0;
  };
  auto run_revoke = [o] {
    pki::RevokeOptions options;
    options.dir = o->dir;
    options.names = SplitCodes(o->revoke_names);
    options.out = o->revoke_out;
    options.valid_days = o->revoke_days;
    if (int rc = ExitCode(pki::RevokeDevCertificates(options))) return rc;
    spdlog::info(
        "CRL written to {}: set it as tls.crl of the coordinator (a running one applies a "
        "new list written over its file within seconds)",
        o->revoke_out.empty() ? o->dir + "/crl.pem" : o->revoke_out);
    return 0;
  };
  return {{init, run_init}, {revoke, run_revoke}};
}

}  // namespace fedcustoms::tools
