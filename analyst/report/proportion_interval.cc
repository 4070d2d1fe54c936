#include "analyst/report/proportion_interval.h"

#include <algorithm>
#include <cmath>

namespace fedcustoms::report {

Proportion WilsonInterval(uint64_t successes, uint64_t trials, double z) {
  Proportion p;
  p.trials = trials;
  p.successes = std::min(successes, trials);
  if (trials == 0) return p;  // value 0, [0, 1]: the defaults say "nothing known"
  const double n = static_cast<double>(trials);
  p.value = static_cast<double>(p.successes) / n;
  if (!(z > 0) || !std::isfinite(z)) {
    p.low = p.high = p.value;
    return p;
  }
  const double z2 = z * z;
  const double denominator = 1 + z2 / n;
  const double center = (p.value + z2 / (2 * n)) / denominator;
  const double half = z / denominator * std::sqrt(p.value * (1 - p.value) / n + z2 / (4 * n * n));
  p.low = p.successes == 0 ? 0.0 : std::clamp(center - half, 0.0, p.value);
  p.high = p.successes == trials ? 1.0 : std::clamp(center + half, p.value, 1.0);
  return p;
}

}  // namespace fedcustoms::report
