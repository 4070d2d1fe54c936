#include "coordinator/rounds/round_phase.h"

namespace fedcustoms::coordinator {

const char* RoundPhaseName(RoundPhase phase) {
  switch (phase) {
    case RoundPhase::kGathering:
      return "gathering";
    case RoundPhase::kAdvertising:
      return "advertising keys";
    case RoundPhase::kSharing:
      return "sharing keys";
    case RoundPhase::kConfirming:
      return "confirming survivors";
    case RoundPhase::kUnmasking:
      return "unmasking";
    case RoundPhase::kTraining:
      return "training";
    case RoundPhase::kAggregating:
      return "aggregating";
    case RoundPhase::kBoosting:
      return "boosting";
    case RoundPhase::kEvaluating:
      return "evaluating";
    case RoundPhase::kFinished:
      return "finished";
  }
  return "unknown";
}

}  // namespace fedcustoms::coordinator
