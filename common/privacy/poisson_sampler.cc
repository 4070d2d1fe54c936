#include "common/privacy/poisson_sampler.h"

#include <numeric>

namespace fedcustoms::privacy {

PoissonSampler::PoissonSampler(uint64_t n, double q, uint64_t seed)
    : n_(n), q_(q < 0 ? 0 : (q > 1 ? 1 : q)), engine_(seed) {}

std::vector<uint64_t> PoissonSampler::Next() {
  std::vector<uint64_t> batch;
  if (q_ == 0 || n_ == 0) return batch;
  if (q_ == 1) {
    batch.resize(n_);
    std::iota(batch.begin(), batch.end(), uint64_t{0});
    return batch;
  }
  // The number of records skipped before the next one taken is Geometric(q):
  // the same law as n independent Bernoulli(q) draws, record by record.
  std::geometric_distribution<uint64_t> skip(q_);
  batch.reserve(static_cast<size_t>(q_ * static_cast<double>(n_) * 1.2) + 8);
  for (uint64_t i = skip(engine_); i < n_; i += 1 + skip(engine_)) batch.push_back(i);
  return batch;
}

}  // namespace fedcustoms::privacy
