#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "coordinator/aggregation/aggregator.h"
#include "coordinator/aggregation/mean_update.h"
#include "coordinator/aggregation/server_optimizer.h"
#include "coordinator/aggregation/tensor_source.h"
#include "coordinator/aggregation/update_validator.h"

namespace fedcustoms::coordinator {

// Federated averaging (McMahan et al. 2017) with streaming accumulation:
// updates are folded into a running sum Σ nᵢΔᵢ as they arrive, so memory is one
// model's worth of float32 whatever the number of nodes, allocated (and first
// touched) up front so that folding the first update costs no more than the
// others. The result is w + Σ nᵢΔᵢ / Σ nᵢ, computed in place in the running
// sum. Validate may run concurrently with anything; the caller serializes Add,
// Finish and Apply.
class FedAvg final : public Aggregator {
 public:
  explicit FedAvg(UpdateSpec spec);

  // ValidateUpdate against the spec.
  absl::Status Validate(const TensorSource& update) const override;

  // Folds an update weighted by `sample_count` (> 0). The update must have
  // passed ValidateUpdate against the same spec. If reading the source fails
  // midway, the running sum holds part of an update: the aggregator is then
  // poisoned and Finish fails, so the round aborts and the model is unchanged.
  absl::Status Add(const TensorSource& update, uint64_t sample_count) override;

  // Number of updates and samples folded so far.
  uint32_t updates() const override { return updates_; }
  uint64_t samples() const { return samples_; }

  // The running sum handed over as the mean update (scaled by 1 / Σ nᵢ when
  // applied, in its own memory); the aggregator is spent afterwards. Fails
  // when nothing was folded (FailedPrecondition), the aggregator is poisoned
  // (DataLoss) or already spent (FailedPrecondition).
  absl::StatusOr<MeanUpdate> Finish() override;

  // Finish, then MeanUpdate::Apply: the new global model, `global` plus the
  // weighted mean update (through `optimizer`'s step when given). Fails as
  // either does; the aggregator is spent afterwards.
  absl::StatusOr<tensor::NamedTensors> Apply(const TensorSource& global,
                                             ServerOptimizer* optimizer = nullptr);

 private:
  const UpdateSpec spec_;
  // Σ nᵢΔᵢ per spec entry.
  std::vector<at::Tensor> sum_;
  uint32_t updates_ = 0;
  uint64_t samples_ = 0;
  bool poisoned_ = false;
  bool spent_ = false;  // Finish ran: the sum became the mean update
};

}  // namespace fedcustoms::coordinator
