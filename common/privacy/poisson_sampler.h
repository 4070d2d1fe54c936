#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace fedcustoms::privacy {

// The batches of DP-SGD as the RDP accountant assumes them (rdp_accountant.h):
// at every step each of the n records is taken independently with
// probability q, so a batch has Binomial(n, q) records and may be empty (the
// step then adds noise only). A fixed-size shuffled batch would need another
// analysis and is deliberately not offered.
class PoissonSampler {
 public:
  // `seed` drives the draws (a node mixes its OS randomness into it; tests
  // fix it). q must be in [0, 1].
  PoissonSampler(uint64_t n, double q, uint64_t seed);

  // The indices of the next batch, ascending. Draws the gaps between taken
  // records from the geometric distribution, so a step costs O(q·n), not
  // O(n).
  std::vector<uint64_t> Next();

  uint64_t n() const { return n_; }
  double q() const { return q_; }

 private:
  uint64_t n_;
  double q_;
  std::mt19937_64 engine_;
};

}  // namespace fedcustoms::privacy
