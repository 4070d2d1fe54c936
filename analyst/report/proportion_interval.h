#pragma once

#include <cstdint>

namespace fedcustoms::report {

// The normal quantile for a two-sided 95 % interval.
inline constexpr double kZ95 = 1.959963984540054;

// An estimated proportion successes / trials with a confidence interval.
// Invariant: 0 <= low <= value <= high <= 1 and successes <= trials.
struct Proportion {
  uint64_t successes = 0;
  uint64_t trials = 0;
  double value = 0;  // successes / trials; 0 when trials == 0
  double low = 0;
  double high = 1;
};

// The Wilson score interval for successes out of trials at the normal quantile `z` (default: 95 %).
// Wilson rather than the textbook p +- z*sqrt(p(1-p)/n) because customs groups are small and rates
// sit near 0 (a 2 % hit rate in 40 rows): the textbook interval collapses to a point at 0 and
// leaves [0, 1], Wilson does neither.
//
// With 0 trials nothing is known: value 0, low 0, high 1. With 0 successes low is exactly 0 and
// with successes == trials high is exactly 1 (rounding would otherwise leave 1e-17 either side).
// Bounds are clamped to [0, 1]. successes > trials is a caller bug: successes is cut to trials.
// A z that is not a positive finite number gives the point estimate as both bounds. Pure function,
// thread-safe.
Proportion WilsonInterval(uint64_t successes, uint64_t trials, double z = kZ95);

}  // namespace fedcustoms::report
