#include "node/backoff/backoff.h"

#include <algorithm>

namespace fedcustoms::node {

Backoff::Backoff(std::chrono::milliseconds base, std::chrono::milliseconds cap, uint64_t seed)
    : base_(base), cap_(cap), rng_(seed) {}

std::chrono::milliseconds Backoff::Next() {
  const int shift = std::min(attempt_, 20);
  ++attempt_;
  const int64_t ceiling = std::min<int64_t>(cap_.count(), base_.count() << shift);
  std::uniform_int_distribution<int64_t> jitter(0, std::max<int64_t>(ceiling, 1));
  return std::chrono::milliseconds(jitter(rng_));
}

}  // namespace fedcustoms::node
