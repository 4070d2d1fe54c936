#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/ledger/round_ledger.h"
#include "coordinator/registry/model_registry.h"
#include "coordinator/rounds/model_snapshot.h"
#include "fedcustoms/v1/admin_service.pb.h"
#include "fedcustoms/v1/metrics.pb.h"

namespace fedcustoms::coordinator {

// What a task's earlier runs left behind, as a TaskRunner needs it to go on
// after a restart.
struct RoundHistory {
  // The last round id used (never reused), from the ledger or, when a crash
  // left the ledger behind the registry, from the latest version's manifest.
  uint64_t last_round_id = 0;
  uint32_t rounds_completed = 0;  // at least the latest version number
  uint32_t rounds_aborted = 0;
  // The last completed round's mean metrics and the administrations' random
  // control counts, when that round made the latest version.
  std::optional<v1::EvaluationMetrics> latest_metrics;
  std::vector<v1::NodeSelectionEvaluation> latest_selection_evaluations;
};

// Reads the history of `task` whose latest published version is `global`.
// First records in the ledger what became of rounds a previous run opened and
// never finished: completed when their version reached the registry (its
// signed manifest names the round), aborted otherwise. Called once, before
// the task's runner starts; `ledger` and `registry` are only used during the
// call. The ledger's or the registry's error on failure (some interrupted
// rounds may already be recorded then; recording again is harmless).
absl::StatusOr<RoundHistory> RecoverRoundHistory(const std::string& task,
                                                 const ModelSnapshot& global, RoundLedger& ledger,
                                                 const ModelRegistry& registry);

}  // namespace fedcustoms::coordinator
