// fedcustoms fuse: risk indicators per goods category fused into a global one.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "analyst/fusion/indicator_fusion.h"
#include "common/io/atomic_file.h"
#include "tools/cli/command.h"

namespace fedcustoms::tools {

std::vector<Command> AddFuseCommand(CLI::App& app) {
  struct Options {
    std::string input, out;
  };
  auto o = std::make_shared<Options>();
  auto* fuse = app.add_subcommand(
      "fuse", "fuse risk indicators per goods category into a global risk indicator");
  fuse->add_option("--input", o->input, "indicators and trust scores (JSON)")->required();
  fuse->add_option("--out", o->out, "also write the full result as JSON");

  auto run = [o] {
    auto input = fusion::LoadFusionInput(o->input);
    if (!input.ok()) return ExitCode(input.status());
    auto result = fusion::Fuse(*input);
    if (!result.ok()) return ExitCode(result.status());
    std::printf("%s", fusion::FusionSummary(*result).c_str());
    if (o->out.empty()) return 0;
    return ExitCode(
        io::WriteFileAtomically(o->out, fusion::FusionResultToJson(*result).dump(2) + "\n"));
  };
  return {{fuse, run}};
}

}  // namespace fedcustoms::tools
