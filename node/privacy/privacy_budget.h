#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/privacy/privacy_config.h"
#include "fedcustoms/v1/config.pb.h"
#include "fedcustoms/v1/node_service.pb.h"

namespace fedcustoms::node {

// What one administration has spent of its records' privacy on one task, and
// what it accepts to spend (NodeConfig.privacy). The spending is kept in
// work_dir/privacy_<task>.json (a v1::PrivacySpent, replaced atomically) and
// recorded *before* an update leaves the node, so a crash can only overstate
// it and a restart never resets it.
//
// Not thread-safe; the node's round loop owns it.
class PrivacyBudget {
 public:
  // Loads the task's spending from `work_dir` (none yet when the file does
  // not exist). `train_rows` sets the default of the node's max_delta. Errors
  // name the file and what is wrong with it; a file that cannot be read is
  // never taken for "nothing spent".
  static absl::StatusOr<PrivacyBudget> Open(const std::string& work_dir, const std::string& task,
                                            const v1::NodePrivacyConfig& limits,
                                            uint64_t train_rows);

  // Whether the node may train this round under `privacy` (the assignment's
  // terms) with `training`: nullopt for a task without DP when the node sets
  // no budget (plain training); the round's DP-SGD plan when the task uses
  // DP-SGD and the spending, this round included, stays within max_epsilon.
  // PermissionDenied, naming the figures, for a task without DP at a node
  // with a budget, a δ above the node's max_delta, or a round that would pass
  // the budget (ResourceExhausted then).
  absl::StatusOr<std::optional<privacy::DpSgdPlan>> Check(const v1::PrivacyConfig& privacy,
                                                          const v1::TrainingConfig& training) const;

  // Adds the round's steps (q, σ from `plan`) and writes the file before
  // returning. The spent ε is recomputed over every step.
  absl::Status Record(const privacy::DpSgdPlan& plan);

  // Everything spent so far (empty when the node never trained with DP).
  const v1::PrivacySpent& spent() const { return spent_; }

  // The reason the node declines to train for the task when one more round
  // like the last one recorded would pass the budget; empty otherwise.
  std::string DeclineReason() const;

  const std::string& path() const { return path_; }

 private:
  PrivacyBudget(std::string path, v1::NodePrivacyConfig limits, uint64_t train_rows)
      : path_(std::move(path)), limits_(std::move(limits)), train_rows_(train_rows) {}

  // ε of the recorded steps plus one more round of `round` (AddRound), at
  // its δ.
  absl::StatusOr<double> EpsilonWith(const privacy::DpSgdPlan& round) const;

  std::string path_;
  v1::NodePrivacyConfig limits_;
  uint64_t train_rows_;
  v1::PrivacySpent spent_;
};

}  // namespace fedcustoms::node
