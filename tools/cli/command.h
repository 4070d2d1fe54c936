#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace fedcustoms::tools {

// One subcommand of `fedcustoms` (one file each in tools/cli/): its options
// are registered on the app, and `run` is called only when it was the one
// parsed. `run` returns the process exit code: 0 done, 1 failed (the reason
// already logged), 2 a usage error. It may throw; main turns an exception
// into exit code 1 with its message.
struct Command {
  CLI::App* subcommand = nullptr;
  std::function<int()> run;
};

// The commands of each file, registered on `app`. The option values live in
// the returned closures, which must outlive parsing (main keeps them).
std::vector<Command> AddCertsCommands(CLI::App& app);
std::vector<Command> AddSynthCommands(CLI::App& app);
std::vector<Command> AddPullCommand(CLI::App& app);
std::vector<Command> AddScoreCommand(CLI::App& app);
std::vector<Command> AddReportCommand(CLI::App& app);
std::vector<Command> AddFuseCommand(CLI::App& app);
std::vector<Command> AddStatusCommand(CLI::App& app);
std::vector<Command> AddDemoCommand(CLI::App& app);
std::vector<Command> AddContributionsCommands(CLI::App& app);
std::vector<Command> AddPrivacyCommands(CLI::App& app);

// 0 for OK; otherwise logs the status's message and returns 1.
int ExitCode(const absl::Status& status);
// "EE,FI,,LV" → {"EE", "FI", "LV"}.
std::vector<std::string> SplitCodes(const std::string& list);

}  // namespace fedcustoms::tools
