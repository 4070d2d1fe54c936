#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace fedcustoms::privacy {

// Rényi differential privacy of the sampled Gaussian mechanism (Mironov,
// Talwar, Zhang 2019, "Rényi Differential Privacy of the Sampled Gaussian
// Mechanism"): one DP-SGD step that samples each record independently with
// probability q (Poisson sampling — the sampling this analysis assumes),
// clips each per-record gradient to L2 norm C and adds N(0, (σC)²) to their
// sum. RDP composes by addition over steps, per order α; the accountant
// turns the total into (ε, δ) at the best order.
//
// The numbers follow the published implementations so that a data
// protection officer can check them against either: the log-space series of
// Opacus (opacus/accountants/analysis/rdp.py) and TF-Privacy's
// rdp_accountant (signed fractional-order series, as both had it before
// dp_accounting's 2024 change to a conservative absolute sum).

// The orders α an accountant tries.
enum class Orders {
  kTfPrivacy,  // compute_dp_sgd_privacy: 1.25 … 4.5, 5 … 63, 128, 256, 512 (72)
  kOpacus,     // RDPAccountant.DEFAULT_ALPHAS: 1.1 … 10.9 by 0.1, 12 … 63 (151)
};
std::vector<double> RdpOrders(Orders orders);

// RDP → (ε, δ).
enum class Conversion {
  // ε = RDP − log δ / (α − 1) (Mironov 2017, Proposition 3).
  kClassic,
  // ε = RDP + log(1 − 1/α) − (log δ + log α) / (α − 1) (Balle et al. 2020,
  // Theorem 21; Canonne, Kamath, Steinke 2020), with TF-Privacy's edge
  // cases: ε = 0 when δ² + expm1(−RDP) ≥ 0, ∞ for α ≤ 1.01, never below 0.
  kImproved,
};

// log A_α of one step (the α-th moment of the privacy loss), for integer α
// by the binomial sum and for fractional α by the two-sided series.
double LogA(double q, double sigma, double alpha);

// RDP at each order of `steps` steps with sampling rate q and noise
// multiplier σ: steps × log A_α / (α − 1); 0 for q = 0, ∞ for σ = 0 or α = ∞,
// α/(2σ²) per step for q = 1. A fractional order whose series cannot be
// summed in log space gives NaN (skipped by the conversion).
std::vector<double> ComputeRdp(double q, double sigma, uint64_t steps,
                               const std::vector<double>& orders);

struct PrivacySpent {
  double epsilon = 0;
  double order = 0;  // the α that gave it
};

// The smallest ε over the orders for δ; NaN entries are skipped. Orders and
// RDP values must pair up (InvalidArgument otherwise), δ in (0, 1).
absl::StatusOr<PrivacySpent> EpsilonFromRdp(const std::vector<double>& orders,
                                            const std::vector<double>& rdp, double delta,
                                            Conversion conversion);

// Composes every step a node took, in any mix of (q, σ).
class RdpAccountant {
 public:
  // Adds `count` steps with sampling rate q and noise multiplier σ.
  void Step(double q, double sigma, uint64_t count = 1);
  // (ε, order) for δ over all steps so far; ε = 0 before any step.
  absl::StatusOr<PrivacySpent> Spent(double delta, Orders orders, Conversion conversion) const;

 private:
  struct Steps {
    double q, sigma;
    uint64_t count;
  };
  std::vector<Steps> history_;
};

// The checked inputs of the two questions a data protection officer asks.
// Each refusal names the option (as the command line spells it).
absl::Status CheckAccountingInputs(double q, double sigma, uint64_t steps, double delta);

// ε of `steps` steps (q, σ) for δ.
absl::StatusOr<PrivacySpent> EpsilonOf(double q, double sigma, uint64_t steps, double delta,
                                       Orders orders, Conversion conversion);

// The noise multiplier that keeps ε at or below `target_epsilon` for δ
// after `steps` steps of rate q, found as Opacus's get_noise_multiplier
// finds it: σ doubles from 20 until ε ≤ target, then bisection on [0, σ]
// until target − ε ≤ `epsilon_tolerance`; the upper end is returned, so its
// ε never exceeds the target. FailedPrecondition when σ would pass 10^6.
absl::StatusOr<double> NoiseMultiplierFor(double target_epsilon, double delta, double q,
                                          uint64_t steps, Orders orders, Conversion conversion,
                                          double epsilon_tolerance = 0.01);

// NoiseMultiplierFor's search over any `epsilon_of(σ)` that falls as σ
// grows (e.g. DP-SGD composed with a fixed mechanism): the smallest σ found
// whose ε is at most the target. NotFound when σ would pass 10^6; the
// errors of `epsilon_of` pass through.
absl::StatusOr<double> SearchNoiseMultiplier(
    double target_epsilon, const std::function<absl::StatusOr<double>(double sigma)>& epsilon_of,
    double epsilon_tolerance = 0.01);

// Opacus's step count for `epochs` epochs at rate q: int(epochs / q).
uint64_t StepsForEpochs(double epochs, double q);

}  // namespace fedcustoms::privacy
