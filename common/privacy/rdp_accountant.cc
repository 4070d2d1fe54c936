#include "common/privacy/rdp_accountant.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"

namespace fedcustoms::privacy {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// log(e^x + e^y) without overflow.
double LogAdd(double x, double y) {
  const double a = std::min(x, y), b = std::max(x, y);
  if (a == -kInf) return b;
  return std::log1p(std::exp(a - b)) + b;
}

// log(e^x − e^y) for x ≥ y; NaN when x < y (the signed series went below
// zero in log space, which Opacus reports as an error: the order is then
// skipped).
double LogSub(double x, double y) {
  if (x < y) return kNaN;
  if (y == -kInf) return x;
  if (x == y) return -kInf;
  const double d = x - y;
  if (d > 700) return x;  // expm1 would overflow; e^y is negligible
  return std::log(std::expm1(d)) + y;
}

// log erfc(x); past x = 25 erfc nears the bottom of the double range, and
// the asymptotic series (the one TF-Privacy falls back to) is exact to
// x^-10.
double LogErfc(double x) {
  if (x <= 25) return std::log(std::erfc(x));
  const double x2 = x * x, inv2 = 1 / x2;
  return -0.5 * std::log(M_PI) - std::log(x) - x2 - 0.5 * inv2 + 0.625 * inv2 * inv2 -
         37.0 / 24.0 * inv2 * inv2 * inv2 + 353.0 / 64.0 * inv2 * inv2 * inv2 * inv2;
}

double LogAInteger(double q, double sigma, int alpha) {
  double log_a = -kInf;
  for (int i = 0; i <= alpha; ++i) {
    const double log_coef = std::lgamma(alpha + 1.0) - std::lgamma(i + 1.0) -
                            std::lgamma(static_cast<double>(alpha - i) + 1.0);
    const double s = log_coef + i * std::log(q) + (alpha - i) * std::log(1 - q) +
                     (static_cast<double>(i) * i - i) / (2 * sigma * sigma);
    log_a = LogAdd(log_a, s);
  }
  return log_a;
}

// The fractional-order series of Mironov, Talwar, Zhang 2019 (§3.3), with
// the generalized binomial coefficient's sign carried (terms past
// floor(α) + 1 alternate); it stops once both new terms are below e^-30.
double LogAFractional(double q, double sigma, double alpha) {
  double log_a0 = -kInf, log_a1 = -kInf;
  const double z0 = sigma * sigma * std::log(1 / q - 1) + 0.5;
  const double log_q = std::log(q), log_1q = std::log(1 - q);
  double coef = 1;  // binom(alpha, i), built up term by term
  for (int i = 0; i < 1000000; ++i) {
    if (i > 0) coef *= (alpha - (i - 1)) / i;
    const double log_coef = std::log(std::abs(coef));
    const double j = alpha - i;
    const double log_t0 = log_coef + i * log_q + j * log_1q;
    const double log_t1 = log_coef + j * log_q + i * log_1q;
    const double log_e0 = std::log(0.5) + LogErfc((i - z0) / (M_SQRT2 * sigma));
    const double log_e1 = std::log(0.5) + LogErfc((z0 - j) / (M_SQRT2 * sigma));
    const double log_s0 = log_t0 + (static_cast<double>(i) * i - i) / (2 * sigma * sigma) + log_e0;
    const double log_s1 = log_t1 + (j * j - j) / (2 * sigma * sigma) + log_e1;
    if (coef > 0) {
      log_a0 = LogAdd(log_a0, log_s0);
      log_a1 = LogAdd(log_a1, log_s1);
    } else {
      log_a0 = LogSub(log_a0, log_s0);
      log_a1 = LogSub(log_a1, log_s1);
    }
    if (std::isnan(log_a0) || std::isnan(log_a1)) return kNaN;
    if (std::max(log_s0, log_s1) < -30) return LogAdd(log_a0, log_a1);
  }
  return kNaN;  // did not converge: the order is skipped
}

absl::Status Refuse(const std::string& option, const std::string& expected, double got) {
  return absl::InvalidArgumentError(absl::StrCat(option, " must be ", expected, "; got ", got));
}

}  // namespace

std::vector<double> RdpOrders(Orders orders) {
  std::vector<double> out;
  if (orders == Orders::kTfPrivacy) {
    out = {1.25, 1.5, 1.75, 2., 2.25, 2.5, 3., 3.5, 4., 4.5};
    for (int a = 5; a < 64; ++a) out.push_back(a);
    for (double a : {128., 256., 512.}) out.push_back(a);
  } else {
    for (int x = 1; x < 100; ++x) out.push_back(1 + x / 10.0);
    for (int a = 12; a < 64; ++a) out.push_back(a);
  }
  return out;
}

double LogA(double q, double sigma, double alpha) {
  if (alpha == std::floor(alpha)) return LogAInteger(q, sigma, static_cast<int>(alpha));
  return LogAFractional(q, sigma, alpha);
}

std::vector<double> ComputeRdp(double q, double sigma, uint64_t steps,
                               const std::vector<double>& orders) {
  std::vector<double> rdp;
  rdp.reserve(orders.size());
  for (double alpha : orders) {
    double per_step;
    if (q == 0) {
      per_step = 0;
    } else if (sigma == 0 || std::isinf(alpha)) {
      per_step = kInf;
    } else if (q == 1) {
      per_step = alpha / (2 * sigma * sigma);
    } else {
      per_step = LogA(q, sigma, alpha) / (alpha - 1);
    }
    rdp.push_back(per_step * static_cast<double>(steps));
  }
  return rdp;
}

absl::StatusOr<PrivacySpent> EpsilonFromRdp(const std::vector<double>& orders,
                                            const std::vector<double>& rdp, double delta,
                                            Conversion conversion) {
  if (orders.size() != rdp.size() || orders.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("RDP has ", rdp.size(), " values for ",
                                                   orders.size(), " orders; expected one each"));
  }
  if (!(delta > 0 && delta < 1)) return Refuse("--delta", "in (0, 1)", delta);
  PrivacySpent best{kNaN, kNaN};
  for (size_t k = 0; k < orders.size(); ++k) {
    const double a = orders[k], r = rdp[k];
    double eps;
    if (conversion == Conversion::kClassic) {
      eps = r - std::log(delta) / (a - 1);
    } else if (delta * delta + std::expm1(-r) >= 0) {
      eps = 0;  // the KL bound alone gives δ
    } else if (a > 1.01) {
      eps = r + std::log1p(-1 / a) - std::log(delta * a) / (a - 1);
    } else {
      eps = kInf;
    }
    if (std::isnan(eps)) continue;
    if (std::isnan(best.epsilon) || eps < best.epsilon) best = {eps, a};
  }
  if (std::isnan(best.epsilon)) return PrivacySpent{kInf, kNaN};
  if (conversion == Conversion::kImproved) best.epsilon = std::max(0.0, best.epsilon);
  return best;
}

void RdpAccountant::Step(double q, double sigma, uint64_t count) {
  if (!history_.empty() && history_.back().q == q && history_.back().sigma == sigma) {
    history_.back().count += count;
  } else {
    history_.push_back({q, sigma, count});
  }
}

absl::StatusOr<PrivacySpent> RdpAccountant::Spent(double delta, Orders orders,
                                                  Conversion conversion) const {
  if (history_.empty()) return PrivacySpent{0, 0};
  const std::vector<double> alphas = RdpOrders(orders);
  std::vector<double> total(alphas.size(), 0);
  for (const Steps& s : history_) {
    const std::vector<double> rdp = ComputeRdp(s.q, s.sigma, s.count, alphas);
    for (size_t k = 0; k < total.size(); ++k) total[k] += rdp[k];
  }
  return EpsilonFromRdp(alphas, total, delta, conversion);
}

absl::Status CheckAccountingInputs(double q, double sigma, uint64_t steps, double delta) {
  if (!(q > 0 && q <= 1)) return Refuse("--sampling-rate", "in (0, 1]", q);
  if (!(sigma >= 0) || std::isinf(sigma))
    return Refuse("--noise-multiplier", "finite, >= 0", sigma);
  if (steps == 0) return absl::InvalidArgumentError("--steps must be at least 1");
  if (!(delta > 0 && delta < 1)) return Refuse("--delta", "in (0, 1)", delta);
  return absl::OkStatus();
}

absl::StatusOr<PrivacySpent> EpsilonOf(double q, double sigma, uint64_t steps, double delta,
                                       Orders orders, Conversion conversion) {
  if (absl::Status s = CheckAccountingInputs(q, sigma, steps, delta); !s.ok()) return s;
  RdpAccountant accountant;
  accountant.Step(q, sigma, steps);
  return accountant.Spent(delta, orders, conversion);
}

absl::StatusOr<double> SearchNoiseMultiplier(
    double target_epsilon, const std::function<absl::StatusOr<double>(double sigma)>& epsilon_of,
    double epsilon_tolerance) {
  if (!(target_epsilon > 0) || !std::isfinite(target_epsilon)) {
    return Refuse("--target-epsilon", "finite, > 0", target_epsilon);
  }
  constexpr double kMaxSigma = 1e6;
  double sigma_low = 0, sigma_high = 10, eps_high = kInf;
  while (eps_high > target_epsilon) {
    sigma_high *= 2;
    absl::StatusOr<double> e = epsilon_of(sigma_high);
    if (!e.ok()) return e.status();
    eps_high = *e;
    if (sigma_high > kMaxSigma) {
      return absl::NotFoundError(absl::StrCat("no noise multiplier up to ", kMaxSigma,
                                              " keeps epsilon at ", target_epsilon));
    }
  }
  // 200 halvings reach any tolerance a double can express; a target the
  // search cannot approach (1e300) stops there instead of looping.
  for (int i = 0; i < 200 && target_epsilon - eps_high > epsilon_tolerance; ++i) {
    const double sigma = (sigma_low + sigma_high) / 2;
    absl::StatusOr<double> e = epsilon_of(sigma);
    if (!e.ok()) return e.status();
    if (*e < target_epsilon) {
      sigma_high = sigma;
      eps_high = *e;
    } else {
      sigma_low = sigma;
    }
  }
  return sigma_high;
}

absl::StatusOr<double> NoiseMultiplierFor(double target_epsilon, double delta, double q,
                                          uint64_t steps, Orders orders, Conversion conversion,
                                          double epsilon_tolerance) {
  if (!(target_epsilon > 0) || std::isinf(target_epsilon)) {
    return Refuse("--target-epsilon", "finite, > 0", target_epsilon);
  }
  if (absl::Status s = CheckAccountingInputs(q, 1, steps, delta); !s.ok()) return s;
  absl::StatusOr<double> sigma = SearchNoiseMultiplier(
      target_epsilon,
      [&](double sigma) -> absl::StatusOr<double> {
        absl::StatusOr<PrivacySpent> spent = EpsilonOf(q, sigma, steps, delta, orders, conversion);
        if (!spent.ok()) return spent.status();
        return spent->epsilon;
      },
      epsilon_tolerance);
  if (absl::IsNotFound(sigma.status())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no noise multiplier up to 1e+06 keeps epsilon at ", target_epsilon, " for delta ", delta,
        " after ", steps, " steps: the privacy budget is too low"));
  }
  return sigma;
}

uint64_t StepsForEpochs(double epochs, double q) { return static_cast<uint64_t>(epochs / q); }

}  // namespace fedcustoms::privacy
