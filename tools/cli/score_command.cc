// fedcustoms score: declarations with reasons, or X-ray images with Grad-CAM.
#include <spdlog/spdlog.h>

#include <memory>

#include "analyst/model/declarations_scoring.h"
#include "analyst/model/xray_scoring.h"
#include "tools/cli/command.h"

namespace fedcustoms::tools {
namespace {

struct ScoreOptions {
  analyst::ScoreFileOptions declarations;
  std::string task = "declarations", pki = "pki", gradcam;
  double threshold = 0;
};

int ScoreXrays(const ScoreOptions& o, CLI::App* score) {
  for (const char* flag : {"--explain", "--counterfactual", "--anomaly-model", "--schema",
                           "--budget", "--threshold"}) {
    if (score->count(flag) > 0) {
      spdlog::error("{} is for declarations; --task xray takes --gradcam", flag);
      return 2;
    }
  }
  analyst::XrayScoreOptions x;
  x.model_dir = o.declarations.model_dir;
  x.public_key = o.pki + "/coordinator-signing.pub";
  x.data_csv = o.declarations.data_csv;
  x.out_csv = o.declarations.out_csv;
  x.gradcam_dir = o.gradcam;
  auto summary = analyst::ScoreXrayFile(x);
  if (!summary.ok()) return ExitCode(summary.status());
  spdlog::info("{}: scored {} images, {} most likely hold a threat; wrote {}", summary->model,
               summary->images, summary->predicted_threats, x.out_csv);
  if (summary->boxed_images > 0) {
    spdlog::info(
        "Grad-CAM peak inside the threat's box on {:.1f} % of {} boxed images "
        "(a random peak: {:.1f} %)",
        100 * summary->peak_in_box_rate, summary->boxed_images, 100 * summary->box_area_share);
  }
  return 0;
}

int ScoreDeclarations(ScoreOptions& o, bool threshold_given) {
  if (!o.gradcam.empty()) {
    spdlog::error("--gradcam is for X-ray images: add --task xray");
    return 2;
  }
  analyst::ScoreFileOptions& options = o.declarations;
  if (options.schema_json.empty()) {
    spdlog::error("--schema: the declaration schema (JSON) is required to score declarations");
    return 2;
  }
  options.public_key = o.pki + "/coordinator-signing.pub";
  if (o.task == "risk") options.expected_kind = v1::TASK_RISK;
  if (o.task == "anomaly") options.expected_kind = v1::TASK_ANOMALY;
  if (threshold_given) options.threshold = o.threshold;
  auto summary = analyst::ScoreDeclarationsFile(options);
  if (!summary.ok()) return ExitCode(summary.status());
  spdlog::info("{}: scored {} declarations, flagged {} (score >= {:.4g}); wrote {}", summary->model,
               summary->rows, summary->flagged, summary->threshold, options.out_csv);
  if (options.explain > 0) {
    spdlog::info("reasons by {} from a baseline score of {:.4g}; largest completeness gap {:.2g}",
                 summary->method, summary->baseline_score, summary->max_completeness_gap);
  }
  if (!options.counterfactual.empty()) {
    spdlog::info("counterfactual {}: found for {} of {} flagged declarations",
                 options.counterfactual, summary->counterfactuals_found, summary->flagged);
  }
  return 0;
}

}  // namespace

std::vector<Command> AddScoreCommand(CLI::App& app) {
  auto o = std::make_shared<ScoreOptions>();
  auto* score = app.add_subcommand(
      "score",
      "score declarations (with reasons) or X-ray images (with Grad-CAM) with a pulled model");
  score->add_option("--task", o->task, "declarations (risk or anomaly model) or xray")
      ->check(CLI::IsMember({"declarations", "risk", "anomaly", "xray"}))
      ->capture_default_str();
  score->add_option("--model", o->declarations.model_dir, "directory written by fedcustoms pull")
      ->required();
  score
      ->add_option("--data", o->declarations.data_csv,
                   "declarations CSV, or for xray a labels CSV (header path[,label...])")
      ->required();
  score->add_option("--schema", o->declarations.schema_json, "declaration schema (JSON)");
  score->add_option("--out", o->declarations.out_csv, "scores CSV to write")->required();
  score->add_option("--pki", o->pki, "directory with coordinator-signing.pub")
      ->capture_default_str();
  score
      ->add_option("--explain", o->declarations.explain,
                   "K reasons per declaration: the features that pushed its score most, signed")
      ->capture_default_str();
  score->add_option("--anomaly-model", o->declarations.anomaly_model_dir,
                    "a pulled anomaly model scored alongside the risk model");
  score
      ->add_option("--budget", o->declarations.budget,
                   "share of declarations flagged, the top by score")
      ->capture_default_str();
  auto* threshold_option =
      score->add_option("--threshold", o->threshold, "flag scores >= this instead of a budget");
  score->add_option("--counterfactual", o->declarations.counterfactual,
                    "a feature (e.g. origin_country): the smallest change of it that unflags each "
                    "flagged declaration");
  score->add_option("--gradcam", o->gradcam, "xray: directory for Grad-CAM overlay PNGs");

  auto run = [o, score, threshold_option] {
    if (o->task == "xray") return ScoreXrays(*o, score);
    return ScoreDeclarations(*o, threshold_option->count() > 0);
  };
  return {{score, run}};
}

}  // namespace fedcustoms::tools
