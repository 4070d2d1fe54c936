#pragma once

namespace fedcustoms::coordinator {

// Where a task's round is (see DESIGN.md "The round"). The key phases and
// unmasking occur only in mode SECURE.
enum class RoundPhase {
  kGathering,
  kAdvertising,
  kSharing,
  kTraining,
  kConfirming,
  kUnmasking,
  kAggregating,
  // A boosting session (risk tasks of kind BOOSTED_TREES) instead of the
  // key phases, training and aggregation.
  kBoosting,
  kEvaluating,
  kFinished
};

// How status, the ledger and error messages name a phase ("sharing keys").
const char* RoundPhaseName(RoundPhase phase);

}  // namespace fedcustoms::coordinator
