#pragma once

#include <ATen/Tensor.h>

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "common/tensor/named_tensors.h"
#include "coordinator/aggregation/server_optimizer.h"
#include "coordinator/aggregation/tensor_source.h"
#include "coordinator/aggregation/update_validator.h"

namespace fedcustoms::coordinator {

// What every Aggregator finishes into: the round's combined update (one
// float32 tensor per spec entry, holding the update times `scale`) and the
// samples behind it. Apply turns it into the next global model; it is the only
// place the server optimizer meets an update, whatever rule combined it.
// Move-only; not thread-safe.
class MeanUpdate {
 public:
  // `values` has one float32 tensor per entry of `spec`, of the entry's shape
  // (it may view one flat buffer); the update is values * scale (FedAvg keeps
  // its running sum and scales by 1 / Σ n, slice by slice, at Apply).
  MeanUpdate(UpdateSpec spec, std::vector<at::Tensor> values, double scale, uint64_t samples);

  // Views a flat float32 vector (the spec's tensors concatenated in order) as
  // the update, without copying. InvalidArgument when its length is not the
  // spec's parameter count or it is not float32.
  static absl::StatusOr<MeanUpdate> FromFlat(UpdateSpec spec, at::Tensor flat, uint64_t samples);

  MeanUpdate(MeanUpdate&&) = default;
  MeanUpdate& operator=(MeanUpdate&&) = default;

  // Σ n of the contributions (the manifest's total_samples).
  uint64_t samples() const { return samples_; }

  // The new global model: `global` (read slice by slice, e.g. from its file)
  // plus the update on every spec tensor; other tensors copied unchanged.
  // Float32 results are computed in the update's own memory, so the step needs
  // no second model in memory; the update is spent afterwards and a second
  // call fails (FailedPrecondition). With `optimizer` (not owned, may be
  // null), each slice of the update is first turned into the optimizer's step
  // (ServerOptimizer::Step), advancing its state. Fails when `global` does
  // not match the spec or a result overflows to Inf/NaN (InvalidArgument).
  absl::StatusOr<tensor::NamedTensors> Apply(const TensorSource& global,
                                             ServerOptimizer* optimizer = nullptr);

 private:
  UpdateSpec spec_;
  std::vector<at::Tensor> values_;
  double scale_;
  uint64_t samples_;
  bool spent_ = false;
};

}  // namespace fedcustoms::coordinator
