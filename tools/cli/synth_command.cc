// fedcustoms synth declarations | xray: synthetic data for demos and tests.
#include <spdlog/spdlog.h>

#include <memory>

#include "common/synth/declarations_synth.h"
#include "common/xray/xray_synth.h"
#include "tools/cli/command.h"

namespace fedcustoms::tools {

std::vector<Command> AddSynthCommands(CLI::App& app) {
  struct Options {
    std::string admins = "EE,FI,LV", out = "data";
    uint64_t rows = 40000, seed = 7;
    bool emerging = false;
    xray::XraySynthOptions xray;
    std::string xray_admins = "EE,FI,LV";
    double xray_positive_rate = 0;
  };
  auto o = std::make_shared<Options>();
  auto* synth = app.add_subcommand("synth", "synthetic data");
  synth->require_subcommand(1);

  auto* decl = synth->add_subcommand("declarations", "declarations with control results");
  decl->add_option("--admins", o->admins, "administration codes")->capture_default_str();
  decl->add_option("--rows", o->rows, "rows of the largest administration")->capture_default_str();
  decl->add_option("--seed", o->seed, "random seed")->capture_default_str();
  decl->add_option("--out", o->out, "output directory")->capture_default_str();
  decl->add_flag("--emerging-scheme", o->emerging,
                 "add over-invoicing frauds from 2023-10-28 on (a scheme absent from the "
                 "training period; ground truth in declarations.truth.csv)");

  auto* xray = synth->add_subcommand(
      "xray", "cargo X-ray images (16-bit PNG) with a labels CSV per administration");
  xray->add_option("--admins", o->xray_admins, "administration codes")->capture_default_str();
  xray->add_option("--images", o->xray.images, "images per administration")->capture_default_str();
  xray->add_option("--seed", o->xray.seed, "random seed")->capture_default_str();
  xray->add_option("--out", o->xray.out_dir, "output directory")->capture_default_str();
  xray->add_option("--size", o->xray.size, "image width and height in pixels")
      ->capture_default_str();
  xray->add_flag("--dual-energy", o->xray.dual_energy, "a high- and a low-energy image per item");
  auto* rate_option = xray->add_option(
      "--positive-rate", o->xray_positive_rate,
      "share of threat images, for every administration (default: each its own, 5-15 %)");

  auto run_declarations = [o] {
    synth::SynthOptions options;
    options.admins = SplitCodes(o->admins);
    options.rows = o->rows;
    options.seed = o->seed;
    options.out_dir = o->out;
    options.emerging_scheme = o->emerging;
    if (int rc = ExitCode(synth::SynthesizeDeclarations(options))) return rc;
    spdlog::info("synthetic declarations written to {}", o->out);
    return 0;
  };
  auto run_xray = [o, rate_option] {
    o->xray.admins = SplitCodes(o->xray_admins);
    if (rate_option->count() > 0) o->xray.positive_rate = o->xray_positive_rate;
    if (int rc = ExitCode(xray::SynthesizeXrays(o->xray))) return rc;
    spdlog::info("synthetic X-rays written to {}", o->xray.out_dir);
    return 0;
  };
  return {{decl, run_declarations}, {xray, run_xray}};
}

}  // namespace fedcustoms::tools
