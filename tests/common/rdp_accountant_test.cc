// The RDP accountant against the published test cases of Opacus
// (opacus/tests/accountants_test.py) and TF-Privacy
// (compute_dp_sgd_privacy_test.py, rdp_accountant_test.py), and against a
// numerical integral of the moment it sums in closed form.
#include "common/privacy/rdp_accountant.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace fedcustoms::privacy {
namespace {

// |got − want| ≤ 1e-9 × |want|.
void ExpectRelative(double got, double want, double rel = 1e-9) {
  EXPECT_LE(std::abs(got - want), rel * std::abs(want)) << "got " << got << ", want " << want;
}

// TF-Privacy's compute_dp_sgd_privacy(n, batch_size, σ, epochs, δ).
PrivacySpent TfComputeDpSgdPrivacy(double n, double batch, double sigma, double epochs,
                                   double delta, Conversion conversion) {
  const double q = batch / n;
  const auto steps = static_cast<uint64_t>(std::ceil(epochs * n / batch));
  auto spent = EpsilonOf(q, sigma, steps, delta, Orders::kTfPrivacy, conversion);
  EXPECT_TRUE(spent.ok()) << spent.status();
  return spent.ok() ? *spent : PrivacySpent{};
}

TEST(RdpAccountant, ReproducesOpacusRdpAccountant) {
  // accountants_test.py test_rdp_accountant: σ 1.5, q 0.04, int(90 / 0.04)
  // steps one at a time, δ 1e-5 → 7.32911117143.
  RdpAccountant accountant;
  for (uint64_t i = 0; i < StepsForEpochs(90, 0.04); ++i) accountant.Step(0.04, 1.5);
  auto spent = accountant.Spent(1e-5, Orders::kOpacus, Conversion::kImproved);
  ASSERT_TRUE(spent.ok()) << spent.status();
  ExpectRelative(spent->epsilon, 7.32911117143);
  EXPECT_DOUBLE_EQ(spent->order, 3.9);
  EXPECT_EQ(StepsForEpochs(90, 0.04), 2250u);
}

TEST(RdpAccountant, ReproducesOpacusGetNoiseMultiplier) {
  // test_get_noise_multiplier: ε 8, δ 1e-5, q 0.04, 90 epochs → 1.416 and
  // 2000 steps → 1.3562 (to 4 places). The bisection on binary fractions
  // lands exactly on 1.416015625 and 1.356201171875.
  auto epochs = NoiseMultiplierFor(8, 1e-5, 0.04, StepsForEpochs(90, 0.04), Orders::kOpacus,
                                   Conversion::kImproved);
  ASSERT_TRUE(epochs.ok()) << epochs.status();
  EXPECT_NEAR(*epochs, 1.416, 5e-5);
  EXPECT_EQ(*epochs, 1.416015625);
  auto steps = NoiseMultiplierFor(8, 1e-5, 0.04, 2000, Orders::kOpacus, Conversion::kImproved);
  ASSERT_TRUE(steps.ok()) << steps.status();
  EXPECT_NEAR(*steps, 1.3562, 5e-5);
  EXPECT_EQ(*steps, 1.356201171875);
  // Its ε stays at or below the target.
  auto spent = EpsilonOf(0.04, *epochs, 2250, 1e-5, Orders::kOpacus, Conversion::kImproved);
  ASSERT_TRUE(spent.ok());
  EXPECT_LE(spent->epsilon, 8);
  EXPECT_GE(spent->epsilon, 8 - 0.01);
}

TEST(RdpAccountant, ReproducesTfPrivacyComputeDpSgdPrivacy) {
  // compute_dp_sgd_privacy_test.py, improved conversion (2020-12 …).
  PrivacySpent a = TfComputeDpSgdPrivacy(60000, 150, 1.3, 15, 1e-5, Conversion::kImproved);
  ExpectRelative(a.epsilon, 0.7242234026109595);
  EXPECT_EQ(a.order, 19);
  PrivacySpent b = TfComputeDpSgdPrivacy(100000, 100, 1.0, 30, 1e-7, Conversion::kImproved);
  ExpectRelative(b.epsilon, 1.4154988495444845);
  EXPECT_EQ(b.order, 13);
  PrivacySpent c = TfComputeDpSgdPrivacy(1e8, 1024, 0.1, 10, 1e-7, Conversion::kImproved);
  ExpectRelative(c.epsilon, 5907982.31138195);
  EXPECT_EQ(c.order, 1.25);
  // The same cases with the classic conversion (… 2020-12), published to
  // 7 decimal places (1.70928734 is 1.709287337… rounded).
  EXPECT_NEAR(TfComputeDpSgdPrivacy(60000, 150, 1.3, 15, 1e-5, Conversion::kClassic).epsilon,
              0.941870567, 0.5e-7);
  EXPECT_NEAR(TfComputeDpSgdPrivacy(100000, 100, 1.0, 30, 1e-7, Conversion::kClassic).epsilon,
              1.70928734, 0.5e-7);
  ExpectRelative(TfComputeDpSgdPrivacy(1e8, 1024, 0.1, 10, 1e-7, Conversion::kClassic).epsilon,
                 5907984.81339406);
}

TEST(RdpAccountant, ReproducesTfPrivacyRdpAccountantTests) {
  EXPECT_EQ(ComputeRdp(0, 10, 1, {20})[0], 0);
  EXPECT_DOUBLE_EQ(ComputeRdp(1, 10, 1, {20})[0], 0.1);
  EXPECT_NEAR(ComputeRdp(0.1, 2, 10, {5})[0], 0.07737, 0.5e-5);
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> rdp = ComputeRdp(0.01, 2.5, 50, {1.5, 2.5, 5, 50, 100, inf});
  const std::vector<double> want = {0.00065, 0.001085, 0.00218075, 0.023846, 167.416307};
  for (size_t k = 0; k < want.size(); ++k) EXPECT_NEAR(rdp[k], want[k], 1e-5) << k;
  EXPECT_TRUE(std::isinf(rdp[5]));

  // get_privacy_spent: orders 2..32, RDP 1.1 everywhere, δ 1e-5.
  std::vector<double> orders;
  for (int a = 2; a <= 32; ++a) orders.push_back(a);
  auto flat =
      EpsilonFromRdp(orders, std::vector<double>(orders.size(), 1.1), 1e-5, Conversion::kImproved);
  ASSERT_TRUE(flat.ok());
  EXPECT_NEAR(flat->epsilon, 1.32783806176, 0.5e-7);
  EXPECT_EQ(flat->order, 32);
  // Classic: 10 000 steps of q 0.01, σ 4 → 1.258575 at order 20.
  auto classic =
      EpsilonFromRdp(orders, ComputeRdp(0.01, 4, 10000, orders), 1e-5, Conversion::kClassic);
  ASSERT_TRUE(classic.ok());
  EXPECT_NEAR(classic->epsilon, 1.258575, 0.5e-5);
  EXPECT_EQ(classic->order, 20);
  // Composition of two mechanisms (test_check_composition): 8.509656 at 2.5.
  const std::vector<double> mixed = {1.25, 1.5, 1.75, 2,  2.5, 3,  4,  5,  6,  7,  8,
                                     10,   12,  14,   16, 20,  24, 28, 32, 64, 256};
  std::vector<double> total = ComputeRdp(1e-4, 0.4, 40000, mixed);
  std::vector<double> more = ComputeRdp(0.1, 2, 100, mixed);
  for (size_t k = 0; k < total.size(); ++k) total[k] += more[k];
  auto composed = EpsilonFromRdp(mixed, total, 1e-5, Conversion::kClassic);
  ASSERT_TRUE(composed.ok());
  EXPECT_NEAR(composed->epsilon, 8.509656, 0.5e-5);
  EXPECT_EQ(composed->order, 2.5);
  auto improved = EpsilonFromRdp(mixed, total, 1e-5, Conversion::kImproved);
  ASSERT_TRUE(improved.ok());
  EXPECT_LE(improved->epsilon, composed->epsilon);
}

// A_α = E_{x~N(0,σ²)} [((1 − q) + q·exp((2x − 1)/(2σ²)))^α], by Simpson's
// rule on a fine grid: an independent check of the series, fractional
// orders included.
TEST(RdpAccountant, LogAMatchesTheIntegralItSums) {
  struct Case {
    double q, sigma, alpha;
  };
  for (const Case& c : {Case{0.01, 2.5, 1.5}, Case{0.04, 1.5, 3.9}, Case{0.1, 1.0, 2.25},
                        Case{0.01, 1.0, 20}, Case{0.5, 3.0, 7.5}}) {
    // The q-part of the integrand peaks near x = α: integrate well past it.
    const double lo = -20 * c.sigma, hi = c.alpha + 20 * c.sigma + 1;
    const int n = 200000;
    const double h = (hi - lo) / n;
    // In log space (the integrand overflows a double for large α), summed
    // with the largest term factored out.
    std::vector<double> log_terms;
    for (int i = 0; i <= n; ++i) {
      const double x = lo + i * h;
      const double log_mu0 =
          -x * x / (2 * c.sigma * c.sigma) - std::log(c.sigma * std::sqrt(2 * M_PI));
      const double t = (2 * x - 1) / (2 * c.sigma * c.sigma);
      const double a = std::log(1 - c.q), b = std::log(c.q) + t;
      const double log_mix = std::max(a, b) + std::log1p(std::exp(std::min(a, b) - std::max(a, b)));
      const double weight = i == 0 || i == n ? 1 : (i % 2 == 1 ? 4 : 2);
      log_terms.push_back(log_mu0 + c.alpha * log_mix + std::log(weight));
    }
    const double top = *std::max_element(log_terms.begin(), log_terms.end());
    double sum = 0;
    for (double l : log_terms) sum += std::exp(l - top);
    const double log_integral = top + std::log(sum * h / 3);
    EXPECT_NEAR(LogA(c.q, c.sigma, c.alpha), log_integral, 1e-9)
        << "q " << c.q << " sigma " << c.sigma << " alpha " << c.alpha;
  }
}

TEST(RdpAccountant, BadInputsNameTheOption) {
  auto bad_q = EpsilonOf(1.5, 1, 10, 1e-5, Orders::kOpacus, Conversion::kImproved);
  EXPECT_EQ(bad_q.status().message(), "--sampling-rate must be in (0, 1]; got 1.5");
  auto bad_delta = EpsilonOf(0.1, 1, 10, 1, Orders::kOpacus, Conversion::kImproved);
  EXPECT_EQ(bad_delta.status().message(), "--delta must be in (0, 1); got 1");
  auto no_steps = EpsilonOf(0.1, 1, 0, 1e-5, Orders::kOpacus, Conversion::kImproved);
  EXPECT_EQ(no_steps.status().message(), "--steps must be at least 1");
  auto too_low = NoiseMultiplierFor(1e-9, 1e-5, 1, 1000, Orders::kOpacus, Conversion::kImproved);
  EXPECT_TRUE(absl::IsFailedPrecondition(too_low.status())) << too_low.status();
  // No steps spent: ε 0; σ 0: no privacy.
  RdpAccountant none;
  EXPECT_EQ(none.Spent(1e-5, Orders::kOpacus, Conversion::kImproved)->epsilon, 0);
  EXPECT_TRUE(
      std::isinf(EpsilonOf(0.1, 0, 10, 1e-5, Orders::kOpacus, Conversion::kImproved)->epsilon));
}

}  // namespace
}  // namespace fedcustoms::privacy
