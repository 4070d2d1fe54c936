// fedcustoms report: the bias and random-control report of a pulled model.
#include <spdlog/spdlog.h>

#include <memory>

#include "analyst/report/declarations_report.h"
#include "tools/cli/command.h"

namespace fedcustoms::tools {

std::vector<Command> AddReportCommand(CLI::App& app) {
  struct Options {
    analyst::DeclarationsReportOptions report;
    std::string by, pki = "pki";
  };
  auto o = std::make_shared<Options>();
  auto* report = app.add_subcommand(
      "report", "bias and random-control report of a pulled model (JSON and HTML)");
  report->add_option("--model", o->report.model_dir, "directory written by fedcustoms pull")
      ->required();
  report->add_option("--data", o->report.data_csv, "declarations CSV with control results")
      ->required();
  report->add_option("--schema", o->report.schema_json, "declaration schema (JSON)")->required();
  report->add_option("--by", o->by, "columns to break down by, comma-separated")->required();
  report->add_option("--out", o->report.out_prefix, "writes <out>.json and <out>.html")
      ->capture_default_str();
  report->add_option("--pki", o->pki, "directory with coordinator-signing.pub")
      ->capture_default_str();
  report->add_option("--budget", o->report.report.budget, "share of declarations flagged")
      ->capture_default_str();
  report
      ->add_option("--random-value", o->report.report.random_value,
                   "SELECTION value of a randomly selected control")
      ->capture_default_str();
  report
      ->add_option("--min-group-rows", o->report.report.min_group_rows,
                   "smaller groups are marked too small to judge")
      ->capture_default_str();

  auto run = [o] {
    o->report.public_key = o->pki + "/coordinator-signing.pub";
    o->report.by = SplitCodes(o->by);
    auto summary = analyst::ReportDeclarationsFile(o->report);
    if (!summary.ok()) return ExitCode(summary.status());
    spdlog::info("{}: report by {} written to {} and {}", summary->model, o->by, summary->json_path,
                 summary->html_path);
    return 0;
  };
  return {{report, run}};
}

}  // namespace fedcustoms::tools
