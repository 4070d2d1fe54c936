// fedcustoms: the operator and analyst command line.
//   fedcustoms certs init --dir DIR --admins EE,FI,LV
//   fedcustoms synth declarations --admins EE,FI,LV --rows N --seed S --out DIR
//                                 [--emerging-scheme]
//   fedcustoms synth xray --admins EE,FI,LV --images N --seed S --out DIR [--size 64]
//                         [--dual-energy] [--positive-rate R]
//   fedcustoms pull --task risk --version latest --out DIR
//   fedcustoms demo [--task risk|anomaly|xray] --workdir DIR --nodes 3 --rounds 5
#include <signal.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <optional>

#include "absl/strings/str_split.h"
#include "common/log/logging.h"
#include "common/pki/dev_pki.h"
#include "common/synth/declarations_synth.h"
#include "common/xray/xray_synth.h"
#include "node/analyst/model_puller.h"
#include "node/demo/demo_runner.h"

namespace {

int Report(const absl::Status& status) {
  if (status.ok()) return 0;
  spdlog::error("{}", status.message());
  return 1;
}

std::vector<std::string> SplitCodes(const std::string& list) {
  return absl::StrSplit(list, ',', absl::SkipEmpty());
}

}  // namespace

int main(int argc, char** argv) {
  fedcustoms::log::InitLogging("fedcustoms", false);
  CLI::App app{"fedcustoms: federated learning for customs administrations"};
  app.require_subcommand(1);

  auto* certs = app.add_subcommand("certs", "development PKI");
  auto* certs_init = certs->add_subcommand("init", "write a development CA and role certificates");
  certs->require_subcommand(1);
  std::string certs_dir = "pki", certs_admins = "EE,FI,LV";
  bool certs_force = false;
  certs_init->add_option("--dir", certs_dir, "output directory")->capture_default_str();
  certs_init->add_option("--admins", certs_admins, "administration codes, comma-separated")
      ->capture_default_str();
  certs_init->add_flag("--force", certs_force, "replace an existing CA");
  auto* certs_revoke = certs->add_subcommand(
      "revoke", "write a CRL listing certificates the coordinator must refuse (tls.crl)");
  std::string revoke_names, revoke_out;
  int revoke_days = 30;
  certs_revoke->add_option("--dir", certs_dir, "PKI directory (ca.pem, ca.key, <name>.pem)")
      ->capture_default_str();
  certs_revoke->add_option("--names", revoke_names,
                           "certificates to revoke, comma-separated (e.g. EE); the list "
                           "replaces any earlier one")
      ->required();
  certs_revoke->add_option("--out", revoke_out, "CRL file (default <dir>/crl.pem)");
  certs_revoke->add_option("--days", revoke_days, "days until the list must be renewed")
      ->capture_default_str();

  auto* synth = app.add_subcommand("synth", "synthetic data");
  auto* synth_decl = synth->add_subcommand("declarations", "declarations with control results");
  synth->require_subcommand(1);
  std::string synth_admins = "EE,FI,LV", synth_out = "data";
  uint64_t synth_rows = 40000, synth_seed = 7;
  synth_decl->add_option("--admins", synth_admins, "administration codes")->capture_default_str();
  synth_decl->add_option("--rows", synth_rows, "rows of the largest administration")
      ->capture_default_str();
  synth_decl->add_option("--seed", synth_seed, "random seed")->capture_default_str();
  synth_decl->add_option("--out", synth_out, "output directory")->capture_default_str();
  bool synth_emerging = false;
  synth_decl->add_flag("--emerging-scheme", synth_emerging,
                       "add over-invoicing frauds from 2023-10-28 on (a scheme absent from the "
                       "training period; ground truth in declarations.truth.csv)");

  auto* synth_xray = synth->add_subcommand(
      "xray", "cargo X-ray images (16-bit PNG) with a labels CSV per administration");
  fedcustoms::xray::XraySynthOptions xray_options;
  std::string xray_admins = "EE,FI,LV";
  double xray_positive_rate = 0;
  synth_xray->add_option("--admins", xray_admins, "administration codes")->capture_default_str();
  synth_xray->add_option("--images", xray_options.images, "images per administration")
      ->capture_default_str();
  synth_xray->add_option("--seed", xray_options.seed, "random seed")->capture_default_str();
  synth_xray->add_option("--out", xray_options.out_dir, "output directory")->capture_default_str();
  synth_xray->add_option("--size", xray_options.size, "image width and height in pixels")
      ->capture_default_str();
  synth_xray->add_flag("--dual-energy", xray_options.dual_energy,
                       "a high- and a low-energy image per item");
  auto* xray_rate_option = synth_xray->add_option(
      "--positive-rate", xray_positive_rate,
      "share of threat images, for every administration (default: each its own, 5-15 %)");

  auto* pull = app.add_subcommand("pull", "fetch a signed global model (analyst certificate)");
  std::string pull_task = "risk", pull_version = "latest", pull_out = "model",
              pull_coordinator = "localhost:7443", pull_pki = "pki", pull_identity = "analyst";
  pull->add_option("--task", pull_task)->capture_default_str();
  pull->add_option("--version", pull_version, "a version number or \"latest\"")
      ->capture_default_str();
  pull->add_option("--out", pull_out, "output directory")->capture_default_str();
  pull->add_option("--coordinator", pull_coordinator, "coordinator address")->capture_default_str();
  pull->add_option("--pki", pull_pki,
                   "directory with ca.pem, <identity>.pem/.key and coordinator-signing.pub")
      ->capture_default_str();
  pull->add_option("--identity", pull_identity, "certificate name in --pki (analyst or admin)")
      ->capture_default_str();

  auto* demo = app.add_subcommand("demo", "run a whole federation on this machine");
  fedcustoms::node::DemoOptions demo_options;
  demo->add_option("--task", demo_options.task, "risk, anomaly or xray")
      ->check(CLI::IsMember({"risk", "anomaly", "xray"}))
      ->capture_default_str();
  demo->add_option("--workdir", demo_options.workdir)->capture_default_str();
  demo->add_option("--nodes", demo_options.nodes)->capture_default_str();
  demo->add_option("--rounds", demo_options.rounds)->capture_default_str();
  demo->add_option("--rows", demo_options.rows, "rows of the largest administration")
      ->capture_default_str();
  demo->add_option("--seed", demo_options.seed)->capture_default_str();
  demo->add_option("--images", demo_options.images, "X-ray images per administration (xray)")
      ->capture_default_str();

  CLI11_PARSE(app, argc, argv);
  try {
    if (certs_init->parsed()) {
      fedcustoms::pki::DevPkiOptions options;
      options.dir = certs_dir;
      options.admins = SplitCodes(certs_admins);
      options.force = certs_force;
      if (int rc = Report(fedcustoms::pki::InitDevPki(options))) return rc;
      spdlog::info("development PKI written to {} (private keys mode 0600; never commit them)",
                   certs_dir);
      return 0;
    }
    if (certs_revoke->parsed()) {
      fedcustoms::pki::RevokeOptions options;
      options.dir = certs_dir;
      options.names = SplitCodes(revoke_names);
      options.out = revoke_out;
      options.valid_days = revoke_days;
      if (int rc = Report(fedcustoms::pki::RevokeDevCertificates(options))) return rc;
      spdlog::info("CRL written to {}: set it as tls.crl of the coordinator and restart it",
                   revoke_out.empty() ? certs_dir + "/crl.pem" : revoke_out);
      return 0;
    }
    if (synth_decl->parsed()) {
      fedcustoms::synth::SynthOptions options;
      options.admins = SplitCodes(synth_admins);
      options.rows = synth_rows;
      options.seed = synth_seed;
      options.out_dir = synth_out;
      options.emerging_scheme = synth_emerging;
      if (int rc = Report(fedcustoms::synth::SynthesizeDeclarations(options))) return rc;
      spdlog::info("synthetic declarations written to {}", synth_out);
      return 0;
    }
    if (synth_xray->parsed()) {
      xray_options.admins = SplitCodes(xray_admins);
      if (xray_rate_option->count() > 0) xray_options.positive_rate = xray_positive_rate;
      if (int rc = Report(fedcustoms::xray::SynthesizeXrays(xray_options))) return rc;
      spdlog::info("synthetic X-rays written to {}", xray_options.out_dir);
      return 0;
    }
    if (pull->parsed()) {
      fedcustoms::node::PullOptions options;
      options.coordinator_address = pull_coordinator;
      options.tls.set_ca_cert(pull_pki + "/ca.pem");
      options.tls.set_cert(pull_pki + "/" + pull_identity + ".pem");
      options.tls.set_key(pull_pki + "/" + pull_identity + ".key");
      options.coordinator_public_key = pull_pki + "/coordinator-signing.pub";
      options.task = pull_task;
      options.out_dir = pull_out;
      if (pull_version != "latest") {
        try {
          options.version = std::stoull(pull_version);
        } catch (const std::exception&) {
          spdlog::error("--version: expected a number or \"latest\", got \"{}\"", pull_version);
          return 2;
        }
      }
      auto m = fedcustoms::node::PullModel(options);
      if (!m.ok()) return Report(m.status());
      spdlog::info("pulled {} v{} into {} (signature and SHA-256 verified)", m->task, m->version,
                   pull_out);
      return 0;
    }
    if (demo->parsed()) {
      // Children inherit nothing odd; the demo kills them if it fails.
      signal(SIGPIPE, SIG_IGN);
      return Report(fedcustoms::node::RunDemo(demo_options));
    }
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
  return 0;
}
