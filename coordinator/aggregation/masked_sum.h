#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/secagg/masked_update.h"
#include "coordinator/aggregation/tensor_source.h"

namespace fedcustoms::coordinator {

// The aggregator of mode SECURE: adds the nodes' masked inputs word by word
// modulo 2^32 as they arrive. It is the only place a masked input goes, and
// what it holds before unmasking is a sum of vectors each of which is
// uniformly random on its own; no unmasked update ever passes through it.
// Memory: one vector of 4-byte words. Not thread-safe: the caller serializes.
class MaskedSum {
 public:
  // Name of the single int32 tensor a masked upload consists of.
  static constexpr const char* kTensorName = secagg::kMaskedInputTensorName;

  explicit MaskedSum(size_t words) : sum_(words, 0) {}

  // Checks an upload before anything of it is added: exactly one int32 tensor
  // kTensorName of shape [words] (secagg::MaskedUpdate::Words).
  static absl::Status Validate(const TensorSource& input, size_t words);

  // Adds a validated input. If reading fails midway the sum is poisoned and
  // Take fails, so the round aborts.
  absl::Status Add(const TensorSource& input);

  // Takes out an input added before (the same bytes): the sum is as if it
  // had never been added. Poisons the sum like Add if reading fails.
  absl::Status Subtract(const TensorSource& input);

  uint32_t inputs() const { return inputs_; }

  // The sum of the masked inputs; the aggregator is empty afterwards.
  absl::StatusOr<std::vector<uint32_t>> Take();

 private:
  absl::Status Fold(const TensorSource& input, bool subtract);

  std::vector<uint32_t> sum_;
  uint32_t inputs_ = 0;
  bool poisoned_ = false;
};

}  // namespace fedcustoms::coordinator
