// fedcustoms: the operator and analyst command line.
//   fedcustoms certs init --dir DIR --admins EE,FI,LV
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
#include <signal.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <optional>

#include "absl/strings/str_split.h"
#include "analyst/fusion/indicator_fusion.h"
#include "analyst/model/declarations_scoring.h"
#include "analyst/model/model_puller.h"
#include "analyst/model/xray_scoring.h"
#include "analyst/report/declarations_report.h"
#include "analyst/status/coordinator_status.h"
#include "common/crypto/atomic_file.h"
#include "common/log/logging.h"
#include "common/pki/dev_pki.h"
#include "common/synth/declarations_synth.h"
#include "common/xray/xray_synth.h"
#include "tools/demo/demo_runner.h"

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
  certs_revoke
      ->add_option("--names", revoke_names,
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

  auto* score = app.add_subcommand(
      "score",
      "score declarations (with reasons) or X-ray images (with Grad-CAM) with a pulled model");
  fedcustoms::analyst::ScoreFileOptions score_options;
  std::string score_task = "declarations", score_pki = "pki", score_gradcam;
  double score_threshold = 0;
  score->add_option("--task", score_task, "declarations (risk or anomaly model) or xray")
      ->check(CLI::IsMember({"declarations", "risk", "anomaly", "xray"}))
      ->capture_default_str();
  score->add_option("--model", score_options.model_dir, "directory written by fedcustoms pull")
      ->required();
  score
      ->add_option("--data", score_options.data_csv,
                   "declarations CSV, or for xray a labels CSV (header path[,label...])")
      ->required();
  score->add_option("--schema", score_options.schema_json, "declaration schema (JSON)");
  score->add_option("--out", score_options.out_csv, "scores CSV to write")->required();
  score->add_option("--pki", score_pki, "directory with coordinator-signing.pub")
      ->capture_default_str();
  score
      ->add_option("--explain", score_options.explain,
                   "K reasons per declaration: the features that pushed its score most, signed")
      ->capture_default_str();
  score->add_option("--anomaly-model", score_options.anomaly_model_dir,
                    "a pulled anomaly model scored alongside the risk model");
  score
      ->add_option("--budget", score_options.budget,
                   "share of declarations flagged, the top by score")
      ->capture_default_str();
  auto* threshold_option =
      score->add_option("--threshold", score_threshold, "flag scores >= this instead of a budget");
  score->add_option("--counterfactual", score_options.counterfactual,
                    "a feature (e.g. origin_country): the smallest change of it that unflags each "
                    "flagged declaration");
  score->add_option("--gradcam", score_gradcam, "xray: directory for Grad-CAM overlay PNGs");

  auto* report = app.add_subcommand(
      "report", "bias and random-control report of a pulled model (JSON and HTML)");
  fedcustoms::analyst::DeclarationsReportOptions report_options;
  std::string report_by, report_pki = "pki";
  report->add_option("--model", report_options.model_dir, "directory written by fedcustoms pull")
      ->required();
  report->add_option("--data", report_options.data_csv, "declarations CSV with control results")
      ->required();
  report->add_option("--schema", report_options.schema_json, "declaration schema (JSON)")
      ->required();
  report->add_option("--by", report_by, "columns to break down by, comma-separated")->required();
  report->add_option("--out", report_options.out_prefix, "writes <out>.json and <out>.html")
      ->capture_default_str();
  report->add_option("--pki", report_pki, "directory with coordinator-signing.pub")
      ->capture_default_str();
  report->add_option("--budget", report_options.report.budget, "share of declarations flagged")
      ->capture_default_str();
  report
      ->add_option("--random-value", report_options.report.random_value,
                   "SELECTION value of a randomly selected control")
      ->capture_default_str();
  report
      ->add_option("--min-group-rows", report_options.report.min_group_rows,
                   "smaller groups are marked too small to judge")
      ->capture_default_str();

  auto* fuse = app.add_subcommand(
      "fuse", "fuse risk indicators per goods category into a global risk indicator");
  std::string fuse_input, fuse_out;
  fuse->add_option("--input", fuse_input, "indicators and trust scores (JSON)")->required();
  fuse->add_option("--out", fuse_out, "also write the full result as JSON");

  auto* status = app.add_subcommand("status", "the coordinator's rounds and evaluations (admin)");
  std::string status_coordinator = "localhost:7443", status_pki = "pki", status_identity = "admin";
  status->add_option("--coordinator", status_coordinator)->capture_default_str();
  status->add_option("--pki", status_pki, "directory with ca.pem and <identity>.pem/.key")
      ->capture_default_str();
  status->add_option("--identity", status_identity, "an admin certificate in --pki")
      ->capture_default_str();

  auto* demo = app.add_subcommand("demo", "run a whole federation on this machine");
  fedcustoms::tools::DemoOptions demo_options;
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
      fedcustoms::analyst::PullOptions options;
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
      auto m = fedcustoms::analyst::PullModel(options);
      if (!m.ok()) return Report(m.status());
      spdlog::info("pulled {} v{} into {} (signature and SHA-256 verified)", m->task, m->version,
                   pull_out);
      return 0;
    }
    if (score->parsed()) {
      const std::string public_key = score_pki + "/coordinator-signing.pub";
      if (score_task == "xray") {
        for (const char* flag : {"--explain", "--counterfactual", "--anomaly-model", "--schema",
                                 "--budget", "--threshold"}) {
          if (score->count(flag) > 0) {
            spdlog::error("{} is for declarations; --task xray takes --gradcam", flag);
            return 2;
          }
        }
        fedcustoms::analyst::XrayScoreOptions x;
        x.model_dir = score_options.model_dir;
        x.public_key = public_key;
        x.data_csv = score_options.data_csv;
        x.out_csv = score_options.out_csv;
        x.gradcam_dir = score_gradcam;
        auto summary = fedcustoms::analyst::ScoreXrayFile(x);
        if (!summary.ok()) return Report(summary.status());
        spdlog::info("{}: scored {} images, {} most likely hold a threat; wrote {}", summary->model,
                     summary->images, summary->predicted_threats, x.out_csv);
        if (summary->boxed_images > 0) {
          spdlog::info(
              "Grad-CAM peak inside the threat's box on {:.1f} % of {} boxed images "
              "(a random peak: {:.1f} %)",
              100 * summary->peak_in_box_rate, summary->boxed_images,
              100 * summary->box_area_share);
        }
        return 0;
      }
      if (!score_gradcam.empty()) {
        spdlog::error("--gradcam is for X-ray images: add --task xray");
        return 2;
      }
      if (score_options.schema_json.empty()) {
        spdlog::error("--schema: the declaration schema (JSON) is required to score declarations");
        return 2;
      }
      score_options.public_key = public_key;
      if (score_task == "risk") score_options.expected_kind = fedcustoms::v1::TASK_RISK;
      if (score_task == "anomaly") score_options.expected_kind = fedcustoms::v1::TASK_ANOMALY;
      if (threshold_option->count() > 0) score_options.threshold = score_threshold;
      auto summary = fedcustoms::analyst::ScoreDeclarationsFile(score_options);
      if (!summary.ok()) return Report(summary.status());
      spdlog::info("{}: scored {} declarations, flagged {} (score >= {:.4g}); wrote {}",
                   summary->model, summary->rows, summary->flagged, summary->threshold,
                   score_options.out_csv);
      if (score_options.explain > 0) {
        spdlog::info(
            "reasons by {} from a baseline score of {:.4g}; largest completeness gap "
            "{:.2g}",
            summary->method, summary->baseline_score, summary->max_completeness_gap);
      }
      if (!score_options.counterfactual.empty()) {
        spdlog::info("counterfactual {}: found for {} of {} flagged declarations",
                     score_options.counterfactual, summary->counterfactuals_found,
                     summary->flagged);
      }
      return 0;
    }
    if (report->parsed()) {
      report_options.public_key = report_pki + "/coordinator-signing.pub";
      report_options.by = SplitCodes(report_by);
      auto summary = fedcustoms::analyst::ReportDeclarationsFile(report_options);
      if (!summary.ok()) return Report(summary.status());
      spdlog::info("{}: report by {} written to {} and {}", summary->model, report_by,
                   summary->json_path, summary->html_path);
      return 0;
    }
    if (fuse->parsed()) {
      auto input = fedcustoms::fusion::LoadFusionInput(fuse_input);
      if (!input.ok()) return Report(input.status());
      auto result = fedcustoms::fusion::Fuse(*input);
      if (!result.ok()) return Report(result.status());
      std::printf("%s", fedcustoms::fusion::FusionSummary(*result).c_str());
      if (!fuse_out.empty()) {
        if (int rc = Report(fedcustoms::crypto::WriteFileAtomically(
                fuse_out, fedcustoms::fusion::FusionResultToJson(*result).dump(2) + "\n"))) {
          return rc;
        }
      }
      return 0;
    }
    if (status->parsed()) {
      fedcustoms::v1::TlsFiles tls;
      tls.set_ca_cert(status_pki + "/ca.pem");
      tls.set_cert(status_pki + "/" + status_identity + ".pem");
      tls.set_key(status_pki + "/" + status_identity + ".key");
      auto response = fedcustoms::analyst::FetchCoordinatorStatus(status_coordinator, tls);
      if (!response.ok()) return Report(response.status());
      std::printf("%s\n", fedcustoms::analyst::CoordinatorStatusToJson(*response).dump(2).c_str());
      return 0;
    }
    if (demo->parsed()) {
      // Children inherit nothing odd; the demo kills them if it fails.
      signal(SIGPIPE, SIG_IGN);
      return Report(fedcustoms::tools::RunDemo(demo_options));
    }
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
  return 0;
}
