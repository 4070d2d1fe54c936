// fedcustoms contributions: what this administration's node let leave in
// secure rounds (its contributions.jsonl), and the administration's way out
// of a task stalled by the one-list rule (docs/threat_model.md).
//   fedcustoms contributions list --config node.json
//   fedcustoms contributions release --config node.json --model-version V --reason TEXT
#include <cstdio>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "node/config/node_config.h"
#include "node/secure/contribution_record.h"
#include "tools/cli/command.h"

namespace fedcustoms::tools {
namespace {

using Entry = node::ContributionRecord::Entry;

// One line per entry, oldest first: what left the node, in which round, on
// which model.
std::string Describe(const Entry& e) {
  const std::string model =
      absl::StrCat(e.task, " v", e.model_version, " (weights ", e.model_sha256.substr(0, 12), ")");
  if (!e.release_reason.empty()) {
    return absl::StrCat("released ", model, " after round ", e.round_id, ": ", e.release_reason);
  }
  if (!e.survivors.empty()) {
    return absl::StrCat("round ", e.round_id, ": confirmed the survivor list [",
                        absl::StrJoin(e.survivors, ", "), "] for a sum from ", model);
  }
  return absl::StrCat("round ", e.round_id, ": sent a masked update computed from ", model);
}

}  // namespace

std::vector<Command> AddContributionsCommands(CLI::App& app) {
  struct Options {
    std::string config;
    uint64_t model_version = 0;
    std::string reason;
  };
  auto o = std::make_shared<Options>();
  auto* group = app.add_subcommand("contributions",
                                   "what this node sent in secure rounds; release a stalled model");
  group->require_subcommand(1);

  auto* list = group->add_subcommand("list", "every masked update and survivor list, oldest first");
  list->add_option("--config", o->config, "the node's config (protobuf JSON)")->required();
  auto run_list = [o] {
    // Read only: the node may be running and holding the record.
    absl::StatusOr<v1::NodeConfig> config = node::LoadNodeConfig(o->config);
    if (!config.ok()) return ExitCode(config.status());
    auto entries = node::ContributionRecord::Read(node::ContributionRecordPath(config->work_dir()));
    if (!entries.ok()) return ExitCode(entries.status());
    if (entries->empty()) std::printf("no contributions recorded yet\n");
    for (const Entry& e : *entries) std::printf("%s\n", Describe(e).c_str());
    return 0;
  };

  auto* release = group->add_subcommand(
      "release",
      "let this node confirm one other survivor list on a model (a task stalled by a node that "
      "left); the coordinator may then learn the left-out nodes' update");
  release->add_option("--config", o->config, "the node's config (protobuf JSON)")->required();
  release->add_option("--model-version", o->model_version, "the model the task is stalled on")
      ->required();
  release->add_option("--reason", o->reason, "why (kept in the record, one line)")->required();
  auto run_release = [o] {
    absl::StatusOr<v1::NodeConfig> config = node::LoadNodeConfig(o->config);
    if (!config.ok()) return ExitCode(config.status());
    // Held while it lives: refused while the node runs.
    auto record =
        node::ContributionRecord::Open(node::ContributionRecordPath(config->work_dir()),
                                       config->secure_aggregation().max_contributions_per_model());
    if (!record.ok()) return ExitCode(record.status());
    auto lifted = (*record)->Release(config->task(), o->model_version, o->reason);
    if (!lifted.ok()) return ExitCode(lifted.status());
    std::printf("no longer counted (still in the record):\n");
    for (const Entry& e : *lifted) std::printf("  %s\n", Describe(e).c_str());
    std::printf(
        "released %s v%lu. The node may now send masked updates again (up to its allowance) "
        "and confirm one other survivor list on it. If the coordinator unmasked a sum over the "
        "list above, the "
        "difference to the next sum is close to the update of the nodes the next list leaves "
        "out. Start the node again for the release to take effect.\n",
        config->task().c_str(), static_cast<unsigned long>(o->model_version));
    return 0;
  };
  return {{list, run_list}, {release, run_release}};
}

}  // namespace fedcustoms::tools
