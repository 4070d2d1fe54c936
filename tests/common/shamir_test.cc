#include "common/secagg/shamir.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace fedcustoms::secagg {
namespace {

using field::kPrime;
using ::testing::HasSubstr;

constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();

uint64_t ReferenceMod(unsigned __int128 value) { return static_cast<uint64_t>(value % kPrime); }

std::vector<uint8_t> RandomSecret(std::mt19937_64& rng, size_t bytes) {
  std::vector<uint8_t> secret(bytes);
  for (uint8_t& b : secret) b = static_cast<uint8_t>(rng());
  return secret;
}

std::vector<ShamirShare> Pick(const std::vector<ShamirShare>& all,
                              const std::vector<size_t>& indices) {
  std::vector<ShamirShare> picked;
  for (size_t i : indices) picked.push_back(all[i]);
  return picked;
}

// Every subset of {0..n-1} with `size` elements, in increasing order.
std::vector<std::vector<size_t>> SubsetsOfSize(uint32_t n, uint32_t size) {
  std::vector<std::vector<size_t>> subsets;
  for (uint32_t mask = 0; mask < (uint32_t{1} << n); ++mask) {
    if (static_cast<uint32_t>(std::popcount(mask)) != size) continue;
    std::vector<size_t> subset;
    for (uint32_t i = 0; i < n; ++i) {
      if (mask & (uint32_t{1} << i)) subset.push_back(i);
    }
    subsets.push_back(subset);
  }
  return subsets;
}

// Coefficients, lowest degree first, of the polynomial of degree < points.size()
// through `points` (x, y), by expanding the Lagrange form.
std::vector<uint64_t> Interpolate(const std::vector<std::pair<uint64_t, uint64_t>>& points) {
  std::vector<uint64_t> result(points.size(), 0);
  for (size_t i = 0; i < points.size(); ++i) {
    std::vector<uint64_t> basis{1};
    uint64_t denominator = 1;
    for (size_t j = 0; j < points.size(); ++j) {
      if (j == i) continue;
      std::vector<uint64_t> next(basis.size() + 1, 0);
      for (size_t k = 0; k < basis.size(); ++k) {
        next[k + 1] = field::Add(next[k + 1], basis[k]);
        next[k] = field::Add(next[k], field::Mul(basis[k], field::Sub(0, points[j].first)));
      }
      basis = std::move(next);
      denominator = field::Mul(denominator, field::Sub(points[i].first, points[j].first));
    }
    const uint64_t scale = field::Mul(points[i].second, field::Inverse(denominator));
    for (size_t k = 0; k < basis.size(); ++k) {
      result[k] = field::Add(result[k], field::Mul(basis[k], scale));
    }
  }
  return result;
}

uint64_t Evaluate(const std::vector<uint64_t>& coefficients, uint64_t x) {
  uint64_t y = 0;
  for (size_t k = coefficients.size(); k > 0; --k) {
    y = field::Add(field::Mul(y, x), coefficients[k - 1]);
  }
  return y;
}

// ---- GF(2^61 - 1) ----

static_assert(field::Mul(field::Inverse(3), 3) == 1);

TEST(ShamirField, ReduceEdgeCases) {
  EXPECT_EQ(field::Reduce(0), 0u);
  EXPECT_EQ(field::Reduce(kPrime - 1), kPrime - 1);
  EXPECT_EQ(field::Reduce(kPrime), 0u);
  EXPECT_EQ(field::Reduce(kPrime + 1), 1u);
  EXPECT_EQ(field::Reduce(2 * kPrime), 0u);
  // 2^64 = 8 * 2^61 = 8 (mod p), so 2^64 - 1 = 7.
  EXPECT_EQ(field::Reduce(kU64Max), 7u);
  EXPECT_EQ(field::Reduce(kU64Max), ReferenceMod(kU64Max));
  // 2^128 = 2^(2*61 + 6) = 64 (mod p), so 2^128 - 1 = 63.
  const unsigned __int128 u128_max = ~static_cast<unsigned __int128>(0);
  EXPECT_EQ(field::Reduce(u128_max), 63u);
  EXPECT_EQ(field::Reduce(u128_max), ReferenceMod(u128_max));
  // The largest product of two reduced elements: (p-1)^2 = (-1)^2 = 1.
  EXPECT_EQ(field::Reduce(static_cast<unsigned __int128>(kPrime - 1) * (kPrime - 1)), 1u);
}

TEST(ShamirField, MatchesInt128Reference) {
  std::mt19937_64 rng(20170);
  std::vector<uint64_t> values = {0, 1, 2, kPrime - 2, kPrime - 1, uint64_t{1} << 60};
  for (int i = 0; i < 2000; ++i) values.push_back(rng() % kPrime);
  for (size_t i = 0; i + 1 < values.size(); ++i) {
    const uint64_t a = values[i];
    const uint64_t b = values[values.size() - 1 - i];
    const unsigned __int128 wide_a = a;
    EXPECT_EQ(field::Add(a, b), ReferenceMod(wide_a + b)) << a << " + " << b;
    EXPECT_EQ(field::Sub(a, b), ReferenceMod(wide_a + kPrime - b)) << a << " - " << b;
    EXPECT_EQ(field::Mul(a, b), ReferenceMod(wide_a * b)) << a << " * " << b;
    EXPECT_EQ(field::Reduce(wide_a * b + (wide_a << 64)),
              ReferenceMod(wide_a * b + (wide_a << 64)));
  }
}

TEST(ShamirField, InverseTimesValueIsOne) {
  std::mt19937_64 rng(17);
  std::vector<uint64_t> values = {1, 2, 3, kPrime - 2, kPrime - 1};
  for (int i = 0; i < 200; ++i) values.push_back(1 + rng() % (kPrime - 1));
  for (uint64_t a : values) EXPECT_EQ(field::Mul(a, field::Inverse(a)), 1u) << a;
  EXPECT_EQ(field::Inverse(kPrime - 1), kPrime - 1);
}

TEST(ShamirField, FromRandomWordRejectsOnlyTheValueP) {
  EXPECT_EQ(field::FromRandomWord(kU64Max), std::nullopt);
  EXPECT_EQ(field::FromRandomWord(kPrime), std::nullopt);
  EXPECT_EQ(field::FromRandomWord(kPrime - 1), std::optional<uint64_t>(kPrime - 1));
  EXPECT_EQ(field::FromRandomWord(0), std::optional<uint64_t>(0));
  // The three high bits are dropped, not folded in.
  EXPECT_EQ(field::FromRandomWord((uint64_t{7} << 61) | 5), std::optional<uint64_t>(5));
}

// ---- Splitting and reconstructing ----

TEST(Shamir, SharesHaveXOneToNAndReducedValues) {
  std::mt19937_64 rng(1);
  const std::vector<uint8_t> secret = RandomSecret(rng, 32);
  absl::StatusOr<std::vector<ShamirShare>> shares = SplitSecret(secret, 3, 5);
  ASSERT_TRUE(shares.ok()) << shares.status();
  ASSERT_EQ(shares->size(), 5u);
  for (size_t i = 0; i < shares->size(); ++i) {
    EXPECT_EQ((*shares)[i].x, i + 1);
    ASSERT_EQ((*shares)[i].y.size(), 5u);  // ceil(32 / 7)
    for (uint64_t y : (*shares)[i].y) EXPECT_LT(y, kPrime);
  }
}

TEST(Shamir, AnyThresholdSubsetReconstructs) {
  std::mt19937_64 rng(2);
  const std::vector<std::pair<uint32_t, uint32_t>> cases = {{2, 2}, {2, 3}, {3, 4},
                                                            {3, 5}, {4, 7}, {6, 10}};
  for (auto [threshold, n] : cases) {
    SCOPED_TRACE(std::to_string(threshold) + " of " + std::to_string(n));
    const std::vector<uint8_t> secret = RandomSecret(rng, 32);
    absl::StatusOr<std::vector<ShamirShare>> shares = SplitSecret(secret, threshold, n);
    ASSERT_TRUE(shares.ok()) << shares.status();
    const std::vector<std::vector<size_t>> subsets = SubsetsOfSize(n, threshold);
    if (threshold == 3 && n == 5) {
      EXPECT_EQ(subsets.size(), 10u);
    }
    if (threshold == 6 && n == 10) {
      EXPECT_EQ(subsets.size(), 210u);
    }
    for (std::vector<size_t> subset : subsets) {
      absl::StatusOr<std::vector<uint8_t>> got =
          ReconstructSecret(Pick(*shares, subset), threshold, secret.size());
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_EQ(*got, secret);
      std::reverse(subset.begin(), subset.end());
      got = ReconstructSecret(Pick(*shares, subset), threshold, secret.size());
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_EQ(*got, secret);
    }
  }
}

TEST(Shamir, RandomSubsetsOfALargeGroupReconstruct) {
  std::mt19937_64 rng(3);
  const std::vector<uint8_t> secret = RandomSecret(rng, 32);
  absl::StatusOr<std::vector<ShamirShare>> shares = SplitSecret(secret, 51, 100);
  ASSERT_TRUE(shares.ok()) << shares.status();
  std::vector<size_t> order(100);
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  for (int trial = 0; trial < 10; ++trial) {
    std::shuffle(order.begin(), order.end(), rng);
    const std::vector<size_t> subset(order.begin(), order.begin() + 51);
    absl::StatusOr<std::vector<uint8_t>> got = ReconstructSecret(Pick(*shares, subset), 51, 32);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, secret);
  }
}

TEST(Shamir, SecretLengthsRoundTrip) {
  std::mt19937_64 rng(4);
  for (size_t bytes : {1, 6, 7, 8, 13, 14, 15, 32, 1023, 1024}) {
    SCOPED_TRACE(bytes);
    const std::vector<uint8_t> secret = RandomSecret(rng, bytes);
    absl::StatusOr<std::vector<ShamirShare>> shares = SplitSecret(secret, 3, 5);
    ASSERT_TRUE(shares.ok()) << shares.status();
    EXPECT_EQ((*shares)[0].y.size(), (bytes + 6) / 7);
    absl::StatusOr<std::vector<uint8_t>> got =
        ReconstructSecret(Pick(*shares, {4, 0, 2}), 3, bytes);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, secret);
  }
}

TEST(Shamir, ExtremeByteValuesRoundTrip) {
  for (uint8_t fill : {uint8_t{0x00}, uint8_t{0xff}}) {
    const std::vector<uint8_t> secret(32, fill);
    absl::StatusOr<std::vector<ShamirShare>> shares = SplitSecret(secret, 2, 3);
    ASSERT_TRUE(shares.ok()) << shares.status();
    absl::StatusOr<std::vector<uint8_t>> got = ReconstructSecret(Pick(*shares, {2, 1}), 2, 32);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, secret);
  }
}

TEST(Shamir, SplittingTwiceGivesDifferentShares) {
  const std::vector<uint8_t> secret(32, 0x42);
  absl::StatusOr<std::vector<ShamirShare>> first = SplitSecret(secret, 3, 5);
  absl::StatusOr<std::vector<ShamirShare>> second = SplitSecret(secret, 3, 5);
  ASSERT_TRUE(first.ok() && second.ok());
  for (size_t i = 0; i < 5; ++i) EXPECT_NE((*first)[i].y, (*second)[i].y) << "share " << i;
}

TEST(Shamir, SharesPastThresholdAreValidatedButNotInterpolated) {
  const std::vector<uint8_t> secret(32, 0x42);
  absl::StatusOr<std::vector<ShamirShare>> shares = SplitSecret(secret, 3, 5);
  ASSERT_TRUE(shares.ok());
  (*shares)[4].y[0] = field::Add((*shares)[4].y[0], 1);
  absl::StatusOr<std::vector<uint8_t>> got = ReconstructSecret(*shares, 3, 32);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, secret);
}

// ---- Fewer than threshold shares reveal nothing ----

// For t-1 real shares and any candidate value of a limb, there is a polynomial
// of degree t-1 through (0, candidate) and those shares, and only one: the t
// points have distinct x, so their Vandermonde matrix is invertible.
TEST(ShamirPrivacy, FewerThanThresholdSharesFitEveryCandidateLimb) {
  std::mt19937_64 rng(5);
  const std::vector<uint8_t> secret = RandomSecret(rng, 32);
  absl::StatusOr<std::vector<ShamirShare>> shares = SplitSecret(secret, 3, 5);
  ASSERT_TRUE(shares.ok());
  const ShamirShare& a = (*shares)[1];
  const ShamirShare& b = (*shares)[3];

  uint64_t true_limb = 0;
  for (size_t i = 7; i > 0; --i) true_limb = (true_limb << 8) | secret[i - 1];
  const std::vector<uint64_t> candidates = {
      0, 1, true_limb, (uint64_t{1} << 56) - 1, rng() % kPrime, kPrime - 1};
  std::vector<std::vector<uint64_t>> polynomials;
  for (uint64_t candidate : candidates) {
    const std::vector<uint64_t> polynomial =
        Interpolate({{0, candidate}, {a.x, a.y[0]}, {b.x, b.y[0]}});
    ASSERT_EQ(polynomial.size(), 3u);  // degree <= t-1
    EXPECT_EQ(Evaluate(polynomial, 0), candidate);
    EXPECT_EQ(Evaluate(polynomial, a.x), a.y[0]);
    EXPECT_EQ(Evaluate(polynomial, b.x), b.y[0]);
    polynomials.push_back(polynomial);
  }
  for (size_t i = 0; i < polynomials.size(); ++i) {
    for (size_t j = i + 1; j < polynomials.size(); ++j) {
      if (candidates[i] != candidates[j]) {
        EXPECT_NE(polynomials[i], polynomials[j]);
      }
    }
  }
  const uint64_t vandermonde =
      field::Mul(field::Mul(field::Sub(a.x, 0), field::Sub(b.x, 0)), field::Sub(b.x, a.x));
  EXPECT_NE(vandermonde, 0u);
}

// The same at the level of whole secrets: t-1 real shares plus one forged
// share reconstruct to any secret the forger likes.
TEST(ShamirPrivacy, FewerThanThresholdSharesFitEveryCandidateSecret) {
  std::mt19937_64 rng(6);
  const std::vector<uint8_t> secret = RandomSecret(rng, 32);
  absl::StatusOr<std::vector<ShamirShare>> shares = SplitSecret(secret, 3, 5);
  ASSERT_TRUE(shares.ok());
  const std::vector<ShamirShare> known = Pick(*shares, {1, 3});

  for (const std::vector<uint8_t>& candidate :
       {std::vector<uint8_t>(32, 0), std::vector<uint8_t>(32, 0xff), RandomSecret(rng, 32)}) {
    ShamirShare forged{.x = 5, .y = {}};
    for (size_t limb = 0; limb < LimbCount(32); ++limb) {
      uint64_t value = 0;
      for (size_t i = std::min<size_t>(32, 7 * limb + 7); i > 7 * limb; --i) {
        value = (value << 8) | candidate[i - 1];
      }
      const std::vector<uint64_t> polynomial =
          Interpolate({{0, value}, {known[0].x, known[0].y[limb]}, {known[1].x, known[1].y[limb]}});
      forged.y.push_back(Evaluate(polynomial, forged.x));
    }
    std::vector<ShamirShare> mixed = known;
    mixed.push_back(forged);
    absl::StatusOr<std::vector<uint8_t>> got = ReconstructSecret(mixed, 3, 32);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, candidate);
  }
}

// A share's value is uniform whatever the secret: its top bit (bit 60) is set
// with probability (2^60 - 1) / (2^61 - 1), about 1/2. A share that leaked the
// secret (say, weak or missing coefficients) would give 0 or 2000 here.
TEST(ShamirPrivacy, SingleShareTopBitIsBalanced) {
  constexpr int kSplits = 2000;
  const double tolerance = 5 * std::sqrt(kSplits * 0.25);  // 5 sigma, about 112.
  for (uint8_t fill : {uint8_t{0x00}, uint8_t{0xff}}) {
    const std::vector<uint8_t> secret(32, fill);
    std::vector<int> set_count(5, 0);
    for (int i = 0; i < kSplits; ++i) {
      absl::StatusOr<std::vector<ShamirShare>> shares = SplitSecret(secret, 3, 5);
      ASSERT_TRUE(shares.ok());
      for (size_t s = 0; s < 5; ++s) set_count[s] += ((*shares)[s].y[0] >> 60) & 1;
    }
    for (size_t s = 0; s < 5; ++s) {
      EXPECT_NEAR(set_count[s], kSplits / 2.0, tolerance)
          << "share " << s << " of secret filled with " << int{fill};
    }
  }
}

// ---- Tests of all the error paths follow ----

TEST(ShamirThreshold, AcceptsMajorityThresholds) {
  for (auto [threshold, n] : std::vector<std::pair<uint32_t, uint32_t>>{
           {2, 2}, {2, 3}, {3, 4}, {3, 5}, {6, 10}, {50001, 100000}, {100000, 100000}}) {
    EXPECT_TRUE(CheckThreshold(threshold, n).ok()) << threshold << " of " << n;
  }
}

TEST(ShamirThreshold, RefusesThresholdBelowTwo) {
  absl::Status status = CheckThreshold(1, 3);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(status.message()),
            "threshold 1 of n = 3 is below 2: with threshold 1 every single share is the secret "
            "itself");
  EXPECT_THAT(std::string(CheckThreshold(0, 3).message()), HasSubstr("threshold 0 of n = 3"));
  EXPECT_THAT(std::string(CheckThreshold(1, 1).message()), HasSubstr("is below 2"));
}

TEST(ShamirThreshold, RefusesThresholdAboveN) {
  absl::Status status = CheckThreshold(4, 3);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(status.message()),
            "threshold 4 exceeds n = 3 shares: the secret could never be reconstructed");
}

TEST(ShamirThreshold, RefusesThresholdAtOrBelowHalf) {
  absl::Status status = CheckThreshold(2, 4);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(status.message()),
            "threshold 2 of n = 4 is unsafe: it must exceed n/2 so that two disjoint groups of "
            "shareholders can never both reconstruct the secret");
  EXPECT_THAT(std::string(CheckThreshold(3, 6).message()), HasSubstr("must exceed n/2"));
  EXPECT_THAT(std::string(CheckThreshold(5, 10).message()), HasSubstr("must exceed n/2"));
  EXPECT_THAT(std::string(CheckThreshold(50000, 100000).message()), HasSubstr("must exceed n/2"));
}

TEST(ShamirThreshold, RefusesTooManyShares) {
  absl::Status status = CheckThreshold(60000, 100001);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(status.message()), "n = 100001 shares exceeds the maximum of 100000");
}

TEST(ShamirSplitErrors, RefusesUnsafeThreshold) {
  const std::vector<uint8_t> secret(32, 1);
  absl::StatusOr<std::vector<ShamirShare>> shares = SplitSecret(secret, 2, 4);
  EXPECT_EQ(shares.status(), CheckThreshold(2, 4));
  EXPECT_FALSE(SplitSecret(secret, 1, 1).ok());
  EXPECT_FALSE(SplitSecret(secret, 6, 5).ok());
}

TEST(ShamirSplitErrors, RefusesEmptySecret) {
  absl::StatusOr<std::vector<ShamirShare>> shares = SplitSecret({}, 2, 3);
  EXPECT_EQ(shares.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(shares.status().message()), "secret is empty");
}

TEST(ShamirSplitErrors, RefusesOverlongSecret) {
  const std::vector<uint8_t> secret(1025, 1);
  absl::StatusOr<std::vector<ShamirShare>> shares = SplitSecret(secret, 2, 3);
  EXPECT_EQ(shares.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(shares.status().message()),
            "secret is 1025 bytes; at most 1024 are supported");
}

class ShamirReconstructErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::vector<ShamirShare>> shares = SplitSecret(secret_, 3, 5);
    ASSERT_TRUE(shares.ok()) << shares.status();
    shares_ = *std::move(shares);
  }

  std::string ErrorOf(const std::vector<ShamirShare>& shares, uint32_t threshold = 3,
                      size_t secret_bytes = 32) {
    absl::StatusOr<std::vector<uint8_t>> got = ReconstructSecret(shares, threshold, secret_bytes);
    if (got.ok()) return "unexpectedly OK";
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument) << got.status();
    return std::string(got.status().message());
  }

  const std::vector<uint8_t> secret_ = std::vector<uint8_t>(32, 0x5a);
  std::vector<ShamirShare> shares_;
};

TEST_F(ShamirReconstructErrors, FewerSharesThanThreshold) {
  EXPECT_EQ(ErrorOf(Pick(shares_, {0, 1})), "got 2 shares; reconstruction needs threshold 3");
  EXPECT_EQ(ErrorOf({}), "got 0 shares; reconstruction needs threshold 3");
}

TEST_F(ShamirReconstructErrors, ZeroX) {
  shares_[1].x = 0;
  EXPECT_EQ(ErrorOf(shares_), "share 1 has x = 0, the point that holds the secret itself");
}

TEST_F(ShamirReconstructErrors, DuplicateX) {
  shares_[2].x = shares_[0].x;
  EXPECT_EQ(ErrorOf(shares_), "shares 0 and 2 both have x = 1");
  // Also when the duplicate is an exact copy, and past the first `threshold`.
  std::vector<ShamirShare> copied = Pick(shares_, {0, 1, 3, 1});
  EXPECT_EQ(ErrorOf(copied), "shares 1 and 3 both have x = 2");
}

TEST_F(ShamirReconstructErrors, ValueNotBelowPrime) {
  shares_[1].y[3] = kPrime;
  EXPECT_EQ(ErrorOf(shares_),
            "share 1 limb 3 is 2305843009213693951, not below the field prime 2^61 - 1");
  shares_[1].y[3] = kU64Max;
  EXPECT_THAT(ErrorOf(shares_), HasSubstr("share 1 limb 3 is 18446744073709551615"));
}

TEST_F(ShamirReconstructErrors, DifferentLimbCounts) {
  shares_[2].y.pop_back();
  EXPECT_EQ(ErrorOf(shares_), "share 2 has 4 limbs but share 0 has 5");
}

TEST_F(ShamirReconstructErrors, LimbCountDoesNotFitSecretLength) {
  EXPECT_EQ(ErrorOf(shares_, 3, 28), "shares have 5 limbs but a 28-byte secret has 4");
  EXPECT_EQ(ErrorOf(shares_, 3, 36), "shares have 5 limbs but a 36-byte secret has 6");
}

TEST_F(ShamirReconstructErrors, BadThresholdOrSecretLength) {
  EXPECT_EQ(ErrorOf(shares_, 1), "threshold 1 is outside 2..100000");
  EXPECT_EQ(ErrorOf(shares_, 100001), "threshold 100001 is outside 2..100000");
  EXPECT_EQ(ErrorOf(shares_, 3, 0), "secret is empty");
  EXPECT_EQ(ErrorOf(shares_, 3, 1025), "secret is 1025 bytes; at most 1024 are supported");
}

TEST_F(ShamirReconstructErrors, LimbTooWideForItsBytes) {
  // The constant polynomial p - 1: consistent shares of a value that no 7-byte
  // limb can have.
  const std::vector<ShamirShare> wide = {{.x = 1, .y = {kPrime - 1}}, {.x = 2, .y = {kPrime - 1}}};
  EXPECT_EQ(ErrorOf(wide, 2, 7),
            "limb 0 reconstructs to a value wider than its 7-byte slot of the secret: the shares "
            "are wrong or have been tampered with");
  // A short last limb is held to its own width: 256 does not fit in one byte.
  const std::vector<ShamirShare> short_limb = {{.x = 1, .y = {256}}, {.x = 2, .y = {256}}};
  EXPECT_THAT(ErrorOf(short_limb, 2, 1), HasSubstr("wider than its 1-byte slot"));
  const std::vector<ShamirShare> fits = {{.x = 1, .y = {255}}, {.x = 2, .y = {255}}};
  absl::StatusOr<std::vector<uint8_t>> got = ReconstructSecret(fits, 2, 1);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, std::vector<uint8_t>{0xff});
}

TEST_F(ShamirReconstructErrors, TamperedShareNeverYieldsTheSecret) {
  // Shamir has no integrity; the guarantee is that a changed value changes the
  // result (an error, or a different secret), never silently the same secret.
  for (size_t limb = 0; limb < 5; ++limb) {
    std::vector<ShamirShare> tampered = shares_;
    tampered[0].y[limb] = field::Add(tampered[0].y[limb], 1);
    absl::StatusOr<std::vector<uint8_t>> got = ReconstructSecret(tampered, 3, 32);
    EXPECT_TRUE(!got.ok() || *got != secret_) << "limb " << limb;
  }
}

}  // namespace
}  // namespace fedcustoms::secagg
