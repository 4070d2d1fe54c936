#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "coordinator/aggregation/update_source.h"
#include "coordinator/aggregation/update_validator.h"

namespace fedcustoms::coordinator {

// Federated averaging (McMahan et al. 2017) with streaming accumulation:
// updates are folded into a running sum Σ nᵢΔᵢ as they arrive, so memory is one
// model's worth of float32 whatever the number of nodes. The result is
// w + Σ nᵢΔᵢ / Σ nᵢ. Not thread-safe: the caller serializes Add and Apply.
class FedAvg {
 public:
  explicit FedAvg(UpdateSpec spec);

  // Folds an update weighted by `sample_count` (> 0). The update must have
  // passed ValidateUpdate against the same spec. If reading the source fails
  // midway, the running sum holds part of an update: the aggregator is then
  // poisoned and Apply fails, so the round aborts and the model is unchanged.
  absl::Status Add(const UpdateSource& update, uint64_t sample_count);

  // Number of updates and samples folded so far.
  uint32_t updates() const { return updates_; }
  uint64_t samples() const { return samples_; }

  // The new global model: `global` plus the weighted mean update on every
  // aggregatable tensor; other tensors copied unchanged. Fails when nothing was
  // folded or the aggregator is poisoned.
  absl::StatusOr<tensor::NamedTensors> Apply(const tensor::NamedTensors& global) const;

 private:
  const UpdateSpec spec_;
  // Σ nᵢΔᵢ per spec entry, allocated on the first Add.
  std::vector<at::Tensor> sum_;
  uint32_t updates_ = 0;
  uint64_t samples_ = 0;
  bool poisoned_ = false;
};

}  // namespace fedcustoms::coordinator
