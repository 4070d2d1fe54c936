#pragma once

#include <ATen/Tensor.h>

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "coordinator/aggregation/aggregator.h"
#include "coordinator/aggregation/mean_update.h"
#include "coordinator/aggregation/tensor_source.h"
#include "coordinator/aggregation/update_validator.h"
#include "fedcustoms/v1/config.pb.h"

namespace fedcustoms::coordinator {

// Combines a round's updates with a rule that looks at each of them (mode
// TRUSTED only): coordinate-wise median, trimmed mean, Krum, Multi-Krum, or
// the weighted mean after norm bounding (RobustAggregationConfig). Unlike
// FedAvg it keeps every update: capacity x model float32, allocated when the
// round opens, which the caller checks against the configured memory cap with
// MemoryBytes first (MakeAggregator does). Validate may run concurrently with
// anything; the caller serializes Add, Aggregate and Finish.
class RobustAggregator final : public Aggregator {
 public:
  // Room for `capacity` updates (the round's selected nodes).
  RobustAggregator(const v1::RobustAggregationConfig& config, UpdateSpec spec, uint32_t capacity);

  // Bytes that `capacity` updates of `spec` take.
  static uint64_t MemoryBytes(const UpdateSpec& spec, uint32_t capacity);

  // ValidateUpdate against the spec.
  absl::Status Validate(const TensorSource& update) const override;

  // Copies an update that passed ValidateUpdate against the same spec. If
  // reading fails midway the partial copy is not counted.
  absl::Status Add(const TensorSource& update, uint64_t sample_count) override;

  uint32_t updates() const override { return count_; }
  uint64_t samples() const { return samples_; }

  // The combined update as one flat float32 vector (the spec's tensors in
  // order). Fails when nothing was added, or Krum has too few updates for its
  // f (n must exceed 2f + 2). Bounds the stored updates' norms in place.
  absl::StatusOr<at::Tensor> Aggregate();

  // Aggregate, as the mean update the server optimizer applies (weight 1,
  // with the samples of every stored update). Aggregate's errors, prefixed
  // "robust aggregation failed: ".
  absl::StatusOr<MeanUpdate> Finish() override;

  // Krum and Multi-Krum: the indexes (in Add order) of the updates chosen by
  // the last Aggregate; empty for the other rules.
  const std::vector<uint32_t>& chosen() const { return chosen_; }

 private:
  // Krum scores: for each update, the sum of its squared distances to its
  // n - f - 2 nearest others.
  std::vector<double> KrumScores(const at::Tensor& updates) const;

  // Median (median = true) or trimmed mean of every coordinate of the n
  // updates in `x` ([n, parameters], row-contiguous) into `result`, by a
  // sorting network over blocks of columns; for small n.
  void SortedColumnsByNetwork(const at::Tensor& x, bool median, int64_t trim, float* result) const;

  const v1::RobustAggregationConfig config_;
  const UpdateSpec spec_;
  std::vector<int64_t> offsets_;  // flat offset of each spec entry
  int64_t parameters_ = 0;
  at::Tensor rows_;  // [capacity, parameters]
  std::vector<uint64_t> sample_counts_;
  uint32_t count_ = 0;
  uint64_t samples_ = 0;
  std::vector<uint32_t> chosen_;
};

}  // namespace fedcustoms::coordinator
