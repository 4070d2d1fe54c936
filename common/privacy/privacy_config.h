#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/privacy/rdp_accountant.h"
#include "fedcustoms/v1/config.pb.h"
#include "fedcustoms/v1/node_service.pb.h"

namespace fedcustoms::privacy {

// How every figure of the product is accounted: Opacus's orders and the
// improved RDP → (ε, δ) conversion (what Opacus's RDPAccountant reports).
inline constexpr Orders kProductOrders = Orders::kOpacus;
inline constexpr Conversion kProductConversion = Conversion::kImproved;

// 1/(10·n) rounded down to a power of 10, for n ≥ 1 training rows: 1e-5 for
// 10 000 rows, 1e-6 for 10 001. δ must stay well below 1/n: a mechanism that
// publishes one random row outright is (0, 1/n)-DP.
double DefaultDelta(uint64_t n);

// The largest power of 10 strictly below 1/n: the most δ a node with n
// training rows accepts by default (1e-5 for 64 000 rows or for 10 001, 1e-5
// for 10 000 too, since 1e-4 is not below 1/10 000).
double DefaultMaxDelta(uint64_t n);

// Fills a task's privacy defaults (delta from max_train_rows, clip_norm 1,
// planned_rounds from the task's rounds, stats_noise_multiplier 20, numeric
// range [0, 30]) and checks the result. The error
// names the field, e.g. "privacy.target_epsilon: must be in (0, 100], found
// 0". Mode NONE (or unset) ignores the other fields.
// Without `numeric_statistics` (a task whose model has no standardized
// inputs: X-ray) there is no statistics query: stats_noise_multiplier must be
// unset and stays 0.
absl::Status FinalizePrivacyConfig(v1::PrivacyConfig* privacy, uint64_t max_train_rows,
                                   uint32_t task_rounds, bool numeric_statistics = true);

// OK when a finalized DP_SGD config is within FinalizePrivacyConfig's
// bounds: what a node checks of the config the coordinator sends before it
// spends anything on it (a coordinator cannot make it plan with a NaN
// target, a range that overflows or statistics noise below 1). The error
// names the field.
absl::Status CheckFinalizedPrivacyConfig(const v1::PrivacyConfig& privacy);

// True when `privacy` asks for DP-SGD.
inline bool IsDpSgd(const v1::PrivacyConfig& privacy) {
  return privacy.mode() == v1::PrivacyConfig::DP_SGD;
}

// One node's DP-SGD parameters for one round of local training.
struct DpSgdPlan {
  double sampling_rate = 0;     // q = min(batch_size, n) / n
  double noise_multiplier = 0;  // σ: configured, or calibrated to the target
  uint64_t steps = 0;           // per round: StepsForEpochs(local_epochs, q)
  double clip_norm = 0;         // C
  double delta = 0;             // δ
  // σ of the round's query of the numeric statistics (q = 1, one step); 0
  // when the task has none.
  double stats_noise_multiplier = 0;
};

// The plan of a node with n training rows, for a finalized DP_SGD `privacy`
// and the round's `training` config. σ, when not configured, is the smallest
// (to 0.01 in ε) that keeps planned_rounds rounds of `steps` steps and of
// the statistics query within target_epsilon (NoiseMultiplierFor's search
// with the product's orders and conversion), so every node spends the target
// over the planned rounds whatever its size. InvalidArgument for n = 0 or a config that is not
// DP_SGD; FailedPrecondition when no σ up to 10^6 reaches the target.
absl::StatusOr<DpSgdPlan> PlanDpSgd(const v1::PrivacyConfig& privacy,
                                    const v1::TrainingConfig& training, uint64_t n);

// Adds one round of `plan` to `spent`: its steps to the segment of the same
// (q, σ) (a new segment otherwise), one step of the statistics query to the
// segment (1, stats σ), rounds + 1, last_round, C, δ and the stats σ from
// the plan, and ε recomputed over every segment. What a node records and what
// the coordinator expects a report to contain.
absl::Status AddRound(const DpSgdPlan& plan, v1::PrivacySpent* spent);

// ε at δ of every step in `spent`'s segments, with the product's orders and
// conversion: what a node reports, the coordinator publishes and anyone can
// recompute. 0 without segments; errors for segments the accountant refuses
// (q outside [0, 1], σ not positive), naming them.
absl::StatusOr<double> EpsilonOfSegments(const v1::PrivacySpent& spent, double delta);

}  // namespace fedcustoms::privacy
