#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "coordinator/aggregation/server_optimizer.h"
#include "coordinator/aggregation/tensor_source.h"
#include "coordinator/aggregation/update_validator.h"

namespace fedcustoms::coordinator {

// Federated averaging (McMahan et al. 2017) with streaming accumulation:
// updates are folded into a running sum Σ nᵢΔᵢ as they arrive, so memory is one
// model's worth of float32 whatever the number of nodes, allocated (and first
// touched) up front so that folding the first update costs no more than the
// others. The result is w + Σ nᵢΔᵢ / Σ nᵢ, computed in place in the running
// sum. Not thread-safe: the caller serializes Add and Apply.
class FedAvg {
 public:
  explicit FedAvg(UpdateSpec spec);

  // Folds an update weighted by `sample_count` (> 0). The update must have
  // passed ValidateUpdate against the same spec. If reading the source fails
  // midway, the running sum holds part of an update: the aggregator is then
  // poisoned and Apply fails, so the round aborts and the model is unchanged.
  absl::Status Add(const TensorSource& update, uint64_t sample_count);

  // Folds an update given as one flat vector: the spec's tensors
  // concatenated in order (mode SECURE decodes the unmasked sum's weighted
  // mean this way, with the decoded total sample count).
  absl::Status AddFlat(std::span<const float> update, uint64_t sample_count);

  // Number of updates and samples folded so far.
  uint32_t updates() const { return updates_; }
  uint64_t samples() const { return samples_; }

  // The new global model: `global` (read slice by slice, e.g. from its file)
  // plus the weighted mean update on every aggregatable tensor; other tensors
  // copied unchanged. Float32 results are computed in the running sum's own
  // memory, so the whole step needs no second model in memory; the aggregator
  // is spent afterwards and a second call fails. Fails when nothing was folded,
  // the aggregator is poisoned, `global` does not match the spec, or a result
  // overflows to Inf/NaN.
  // With `optimizer`, the mean update is first turned into the optimizer's
  // step (ServerOptimizer::Step, slice by slice), advancing its state.
  absl::StatusOr<tensor::NamedTensors> Apply(const TensorSource& global,
                                             ServerOptimizer* optimizer = nullptr);

 private:
  const UpdateSpec spec_;
  // Σ nᵢΔᵢ per spec entry.
  std::vector<at::Tensor> sum_;
  uint32_t updates_ = 0;
  uint64_t samples_ = 0;
  bool poisoned_ = false;
  bool spent_ = false;  // Apply ran: the sum became (part of) a result
};

}  // namespace fedcustoms::coordinator
