#pragma once

#include <ATen/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/tensor/named_tensors.h"
#include "coordinator/aggregation/update_validator.h"
#include "fedcustoms/v1/config.pb.h"

namespace fedcustoms::coordinator {

// The server-side update rule of a task (FedAvg, FedAvgM, FedAdagrad, FedAdam,
// FedYogi; the formulas are in ServerStrategyConfig, proto/.../config.proto).
// It sees only the round's weighted mean update, so it works in mode SECURE.
// FedAvg::Apply calls Step on each slice of the mean update as it computes the
// new model, so the rule adds no pass over memory of its own; the state (one
// model of float32 for FedAvgM, two for the adaptive rules) is kept here and
// saved with every registry version. Not thread-safe.
class ServerOptimizer {
 public:
  // `config` must be finalized (FinalizeCoordinatorConfig fills defaults).
  ServerOptimizer(const v1::ServerStrategyConfig& config, const UpdateSpec& spec);

  // "fedavg", "fedavgm", "fedadagrad", "fedadam" or "fedyogi": the name in
  // manifests and the ledger.
  const std::string& name() const { return name_; }

  // Turns `mean`, elements [offset, offset + numel) of spec entry `entry`'s
  // weighted mean update (float32, contiguous), into the step to add to the
  // weights, in place, and advances the state of those elements. Each element
  // is stepped once per round.
  void Step(size_t entry, int64_t offset, at::Tensor mean);

  // The state to persist: "m/<tensor>" and "v/<tensor>" (float32) as the rule
  // has them; empty for FedAvg.
  tensor::NamedTensors State() const;

  // Replaces the state with a saved one. The error names the missing, extra
  // or mis-shaped tensor; on error the state is left as it was.
  absl::Status Restore(const tensor::NamedTensors& state);

  // The initial state (m = 0; v = 0 for FedAvgM, tau^2 for the adaptive rules),
  // for a task's first version.
  void Reset();

 private:
  const v1::ServerStrategyConfig config_;
  const UpdateSpec spec_;
  const std::string name_;
  // Per spec entry, flat; empty when the rule keeps no such moment.
  std::vector<at::Tensor> m_;
  std::vector<at::Tensor> v_;
};

}  // namespace fedcustoms::coordinator
