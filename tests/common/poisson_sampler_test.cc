// The batches DP-SGD draws follow the sampling the RDP accountant assumes:
// every record in or out independently with probability q.
#include "common/privacy/poisson_sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace fedcustoms::privacy {
namespace {

// log of the Binomial(n, q) probability of k.
double LogBinomialPmf(uint64_t n, double q, uint64_t k) {
  return std::lgamma(n + 1.0) - std::lgamma(k + 1.0) - std::lgamma(n - k + 1.0) + k * std::log(q) +
         (n - k) * std::log1p(-q);
}

// A chi-square statistic with `df` degrees of freedom lies within 6 standard
// deviations of its mean (the normal approximation; far beyond any
// fluctuation of the fixed seed, yet a sampler off by a few percent fails).
void ExpectChiSquareFits(double chi2, double df) {
  EXPECT_LT(std::abs(chi2 - df), 6 * std::sqrt(2 * df)) << "chi2 " << chi2 << " df " << df;
}

TEST(PoissonSampler, BatchSizesFollowTheBinomial) {
  const uint64_t n = 1000;
  const double q = 0.05;
  const int steps = 4000;
  PoissonSampler sampler(n, q, 20261207);
  std::vector<int> size_counts(n + 1, 0);
  std::vector<int> taken(n, 0);
  double sum = 0, sum_sq = 0;
  for (int s = 0; s < steps; ++s) {
    const std::vector<uint64_t> batch = sampler.Next();
    ASSERT_TRUE(std::is_sorted(batch.begin(), batch.end()));
    ASSERT_TRUE(std::adjacent_find(batch.begin(), batch.end()) == batch.end());
    for (uint64_t i : batch) {
      ASSERT_LT(i, n);
      ++taken[i];
    }
    ++size_counts[batch.size()];
    sum += batch.size();
    sum_sq += static_cast<double>(batch.size()) * batch.size();
  }
  const double mean = sum / steps, var = (sum_sq - steps * mean * mean) / (steps - 1);
  EXPECT_NEAR(mean, n * q, 5 * std::sqrt(n * q * (1 - q) / steps));
  EXPECT_NEAR(var, n * q * (1 - q), 6.0);

  // The sizes against the Binomial(n, q) law, bins merged until each expects
  // at least 5.
  double chi2 = 0, expected_bin = 0, observed_bin = 0;
  int bins = 0;
  for (uint64_t k = 0; k <= n; ++k) {
    expected_bin += steps * std::exp(LogBinomialPmf(n, q, k));
    observed_bin += size_counts[k];
    if (expected_bin >= 5 || k == n) {
      chi2 += (observed_bin - expected_bin) * (observed_bin - expected_bin) / expected_bin;
      ++bins;
      expected_bin = observed_bin = 0;
    }
  }
  ExpectChiSquareFits(chi2, bins - 1);

  // Every record is taken with probability q, none favoured.
  double chi2_records = 0;
  const double expected = steps * q;
  for (int c : taken) chi2_records += (c - expected) * (c - expected) / (expected * (1 - q));
  ExpectChiSquareFits(chi2_records, n);
}

TEST(PoissonSampler, EdgesAndSeeds) {
  PoissonSampler all(5, 1, 1), none(5, 0, 1), empty(0, 0.5, 1);
  EXPECT_EQ(all.Next(), (std::vector<uint64_t>{0, 1, 2, 3, 4}));
  EXPECT_TRUE(none.Next().empty());
  EXPECT_TRUE(empty.Next().empty());
  // Small q: empty batches happen and are returned as such.
  PoissonSampler rare(10, 0.01, 7);
  int empties = 0;
  for (int s = 0; s < 100; ++s) empties += rare.Next().empty();
  EXPECT_GT(empties, 50);
  // The seed decides the draws: the same seed, the same batches.
  PoissonSampler a(500, 0.1, 42), b(500, 0.1, 42), c(500, 0.1, 43);
  const auto first = a.Next();
  EXPECT_EQ(first, b.Next());
  EXPECT_NE(first, c.Next());
}

}  // namespace
}  // namespace fedcustoms::privacy
