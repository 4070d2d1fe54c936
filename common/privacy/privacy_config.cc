#include "common/privacy/privacy_config.h"

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/training/local_training_loop.h"
#include "common/training/risk_trainer.h"

namespace fedcustoms::privacy {
namespace {

constexpr double kDefaultStatsNoise = 20;
constexpr double kDefaultNumericHigh = 30;

// Adds `steps` to the segment of (q, σ), or a new segment for it.
void AddSteps(double q, double sigma, uint64_t steps, v1::PrivacySpent* spent) {
  for (v1::PrivacySpent::Segment& s : *spent->mutable_segments()) {
    if (s.sampling_rate() == q && s.noise_multiplier() == sigma) {
      s.set_steps(s.steps() + steps);
      return;
    }
  }
  v1::PrivacySpent::Segment* segment = spent->add_segments();
  segment->set_sampling_rate(q);
  segment->set_noise_multiplier(sigma);
  segment->set_steps(steps);
}

}  // namespace

double DefaultMaxDelta(uint64_t n) {
  // 10^-k for the smallest k with 10^k > n, in integers so that the powers
  // of ten come out exact.
  const uint64_t rows = n == 0 ? 1 : n;
  double power = 1;
  for (uint64_t p = 1; p <= rows; p *= 10) power *= 10;
  return 1.0 / power;
}

// 10^-k for the smallest k with 10^k ≥ 10·n, i.e. 10^k > 10·n − 1.
double DefaultDelta(uint64_t n) { return DefaultMaxDelta(10 * (n == 0 ? 1 : n) - 1); }

absl::Status FinalizePrivacyConfig(v1::PrivacyConfig* p, uint64_t max_train_rows,
                                   uint32_t task_rounds, bool numeric_statistics) {
  if (p->mode() == v1::PrivacyConfig::MODE_UNSPECIFIED) p->set_mode(v1::PrivacyConfig::NONE);
  if (!IsDpSgd(*p)) return absl::OkStatus();
  auto bad = [](std::string field, auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat("privacy.", field, ": ", parts...));
  };
  if (p->delta() == 0) p->set_delta(DefaultDelta(max_train_rows));
  if (!(p->delta() > 0 && p->delta() <= 1e-3)) {
    return bad("delta", "must be in (0, 1e-3], found ", p->delta());
  }
  if (p->clip_norm() == 0) p->set_clip_norm(1.0);
  if (!(p->clip_norm() > 0 && p->clip_norm() <= 1e6)) {
    return bad("clip_norm", "must be in (0, 1e6], found ", p->clip_norm());
  }
  if (p->planned_rounds() == 0) p->set_planned_rounds(task_rounds);
  if (p->planned_rounds() > 100000) {
    return bad("planned_rounds", "must be at most 100000, found ", p->planned_rounds());
  }
  if (p->noise_multiplier() != 0) {
    if (!(p->noise_multiplier() > 0 && p->noise_multiplier() <= 1000)) {
      return bad("noise_multiplier", "must be in (0, 1000], found ", p->noise_multiplier());
    }
  } else {
    if (!(p->target_epsilon() > 0 && p->target_epsilon() <= 100)) {
      return bad("target_epsilon",
                 "must be in (0, 100] when noise_multiplier is not set (the noise is calibrated "
                 "to it), found ",
                 p->target_epsilon());
    }
    if (p->planned_rounds() == 0) {
      return bad("planned_rounds",
                 "required when the task runs forever (rounds 0) and noise_multiplier is not "
                 "set: the target ε is spread over the planned rounds");
    }
  }
  if (p->target_epsilon() != 0 && !(p->target_epsilon() > 0 && p->target_epsilon() <= 100)) {
    return bad("target_epsilon", "must be in (0, 100], found ", p->target_epsilon());
  }
  if (!numeric_statistics) {
    if (p->stats_noise_multiplier() != 0) {
      return bad("stats_noise_multiplier",
                 "this task has no standardization statistics to privatize; leave it unset");
    }
    return absl::OkStatus();
  }
  if (p->stats_noise_multiplier() == 0) p->set_stats_noise_multiplier(kDefaultStatsNoise);
  if (p->numeric_low() == 0 && p->numeric_high() == 0) {
    p->set_numeric_high(kDefaultNumericHigh);
  } else if (p->numeric_high() == 0) {
    // Only numeric_low set: a range ending at 0 would clip every log1p value.
    return bad("numeric_high", "set it with numeric_low (found only numeric_low ", p->numeric_low(),
               ")");
  }
  return CheckFinalizedPrivacyConfig(*p);
}

absl::Status CheckFinalizedPrivacyConfig(const v1::PrivacyConfig& p) {
  auto bad = [](std::string field, auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat("privacy.", field, ": ", parts...));
  };
  if (!IsDpSgd(p)) return absl::OkStatus();
  if (!(p.delta() > 0 && p.delta() <= 1e-3)) {
    return bad("delta", "must be in (0, 1e-3], found ", p.delta());
  }
  if (!(p.clip_norm() > 0 && p.clip_norm() <= 1e6)) {
    return bad("clip_norm", "must be in (0, 1e6], found ", p.clip_norm());
  }
  if (p.noise_multiplier() != 0 && !(p.noise_multiplier() > 0 && p.noise_multiplier() <= 1000)) {
    return bad("noise_multiplier", "must be in (0, 1000], found ", p.noise_multiplier());
  }
  if (p.noise_multiplier() == 0 && !(p.target_epsilon() > 0 && p.target_epsilon() <= 100 &&
                                     p.planned_rounds() > 0 && p.planned_rounds() <= 100000)) {
    return bad("target_epsilon", "must be in (0, 100] with planned_rounds in 1..100000, found ",
               p.target_epsilon(), " and ", p.planned_rounds());
  }
  if (p.stats_noise_multiplier() != 0 &&
      !(p.stats_noise_multiplier() >= 1 && p.stats_noise_multiplier() <= 1e6)) {
    return bad("stats_noise_multiplier", "must be in [1, 1e6], found ", p.stats_noise_multiplier());
  }
  const double low = p.numeric_low(), high = p.numeric_high();
  if (p.stats_noise_multiplier() != 0 &&
      !(std::isfinite(low) && std::isfinite(high) && low < high && std::abs(low) <= 1e9 &&
        std::abs(high) <= 1e9)) {
    return bad("numeric_high", "must be finite, within ±1e9 and above numeric_low ", low,
               ", found ", high);
  }
  return absl::OkStatus();
}

absl::StatusOr<DpSgdPlan> PlanDpSgd(const v1::PrivacyConfig& privacy,
                                    const v1::TrainingConfig& training, uint64_t n) {
  if (!IsDpSgd(privacy)) return absl::InvalidArgumentError("the task's privacy mode is not DP_SGD");
  if (n == 0) return absl::InvalidArgumentError("DP-SGD needs at least one training row");
  if (absl::Status s = CheckFinalizedPrivacyConfig(privacy); !s.ok()) return s;
  const v1::TrainingConfig c = training::WithDefaults(training);
  DpSgdPlan plan;
  plan.sampling_rate =
      training::ExpectedDpBatch(static_cast<int64_t>(n), c) / static_cast<double>(n);
  plan.steps = StepsForEpochs(c.local_epochs(), plan.sampling_rate);
  plan.clip_norm = privacy.clip_norm();
  plan.delta = privacy.delta();
  plan.noise_multiplier = privacy.noise_multiplier();
  // 0: the task has no statistics query (FinalizePrivacyConfig).
  plan.stats_noise_multiplier = privacy.stats_noise_multiplier();
  if (plan.noise_multiplier == 0) {
    const uint64_t rounds = privacy.planned_rounds();
    if (absl::Status s =
            CheckAccountingInputs(plan.sampling_rate, 1, plan.steps * rounds, plan.delta);
        !s.ok()) {
      return s;
    }
    absl::StatusOr<double> sigma = SearchNoiseMultiplier(
        privacy.target_epsilon(), [&](double sigma) -> absl::StatusOr<double> {
          RdpAccountant accountant;
          accountant.Step(plan.sampling_rate, sigma, plan.steps * rounds);
          if (plan.stats_noise_multiplier > 0) {
            accountant.Step(1, plan.stats_noise_multiplier, rounds);
          }
          absl::StatusOr<PrivacySpent> spent =
              accountant.Spent(plan.delta, kProductOrders, kProductConversion);
          if (!spent.ok()) return spent.status();
          return spent->epsilon;
        });
    if (absl::IsNotFound(sigma.status())) {
      return absl::FailedPreconditionError(absl::StrCat(
          "no noise multiplier up to 1e+06 keeps epsilon at ", privacy.target_epsilon(),
          " for delta ", plan.delta, " over ", rounds, " rounds of ", plan.steps,
          " steps and of the statistics query (noise multiplier ", plan.stats_noise_multiplier,
          "): the privacy budget is too low"));
    }
    if (!sigma.ok()) return sigma.status();
    plan.noise_multiplier = *sigma;
  }
  return plan;
}

absl::Status AddRound(const DpSgdPlan& plan, v1::PrivacySpent* spent) {
  AddSteps(plan.sampling_rate, plan.noise_multiplier, plan.steps, spent);
  if (plan.stats_noise_multiplier > 0) AddSteps(1, plan.stats_noise_multiplier, 1, spent);
  spent->set_stats_noise_multiplier(plan.stats_noise_multiplier);
  spent->set_clip_norm(plan.clip_norm);
  spent->set_delta(plan.delta);
  spent->set_rounds(spent->rounds() + 1);
  spent->mutable_last_round()->set_sampling_rate(plan.sampling_rate);
  spent->mutable_last_round()->set_noise_multiplier(plan.noise_multiplier);
  spent->mutable_last_round()->set_steps(plan.steps);
  absl::StatusOr<double> epsilon = EpsilonOfSegments(*spent, plan.delta);
  if (!epsilon.ok()) return epsilon.status();
  spent->set_epsilon(*epsilon);
  return absl::OkStatus();
}

absl::StatusOr<double> EpsilonOfSegments(const v1::PrivacySpent& spent, double delta) {
  RdpAccountant accountant;
  for (int i = 0; i < spent.segments_size(); ++i) {
    const v1::PrivacySpent::Segment& s = spent.segments(i);
    if (absl::Status ok =
            CheckAccountingInputs(s.sampling_rate(), s.noise_multiplier(), s.steps(), delta);
        !ok.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("segment ", i, ": ", ok.message()));
    }
    accountant.Step(s.sampling_rate(), s.noise_multiplier(), s.steps());
  }
  absl::StatusOr<PrivacySpent> eps = accountant.Spent(delta, kProductOrders, kProductConversion);
  if (!eps.ok()) return eps.status();
  return eps->epsilon;
}

}  // namespace fedcustoms::privacy
