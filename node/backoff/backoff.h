#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace fedcustoms::node {

// Exponential backoff with full jitter for reconnecting to the coordinator:
// the n-th wait is uniform in [0, min(cap, base * 2^n)]. Not thread-safe.
class Backoff {
 public:
  Backoff(std::chrono::milliseconds base, std::chrono::milliseconds cap, uint64_t seed);

  // The next wait; grows until Reset().
  std::chrono::milliseconds Next();
  // Call after a success.
  void Reset() { attempt_ = 0; }
  int attempt() const { return attempt_; }

 private:
  const std::chrono::milliseconds base_;
  const std::chrono::milliseconds cap_;
  int attempt_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace fedcustoms::node
