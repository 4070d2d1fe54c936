#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/secagg/masked_update.h"
#include "coordinator/aggregation/aggregator.h"
#include "coordinator/aggregation/masked_sum.h"
#include "coordinator/aggregation/mean_update.h"
#include "coordinator/aggregation/update_validator.h"

namespace fedcustoms::coordinator {

// The aggregator of mode SECURE: each node's masked input (the
// secagg::MaskedUpdate layout, masked) is added to a MaskedSum as it arrives;
// Finish removes the masks from the sum (through `unmask`, the round's
// SecureRound) and decodes the weighted mean update from it, weighted by the
// contributors' public rows (never by the count words they masked). The
// coordinator never holds an unmasked single update: only the sum is
// unmasked, once. Memory: one vector of 4-byte words, then one model of
// float32 while decoding. Validate may run concurrently with anything; the
// caller serializes Add and Finish.
class SecureAggregator final : public Aggregator {
 public:
  using Unmask = std::function<absl::StatusOr<std::vector<uint32_t>>(std::vector<uint32_t>)>;

  // `codec` holds the round's parameters; `unmask` is called once, from
  // Finish, and what it refers to must outlive that call.
  SecureAggregator(UpdateSpec spec, secagg::MaskedUpdate codec, Unmask unmask);

  // One int32 tensor secagg::kMaskedInputTensorName of
  // secagg::MaskedUpdate::Words(P) words.
  absl::Status Validate(const TensorSource& upload) const override;
  // Adds a validated masked input of a node whose public weight (the rows it
  // declared when the round opened) is `weight` >= 1. If reading fails
  // midway the sum is poisoned and Finish fails.
  absl::Status Add(const TensorSource& upload, uint64_t weight) override;
  uint32_t updates() const override { return sum_.inputs(); }
  // Subtracts an input added before, with the weight it was added with.
  absl::Status Remove(const TensorSource& upload, uint64_t weight) override;

  // Takes the masked sum, unmasks and decodes it (secagg::MaskedUpdate::Decode)
  // with Σ weight of the inputs added. Fails when nothing was added, the sum
  // is poisoned or unmasking fails. A count word that differs from Σ weight
  // is logged, not trusted.
  absl::StatusOr<MeanUpdate> Finish() override;

 private:
  const UpdateSpec spec_;
  const secagg::MaskedUpdate codec_;
  const uint64_t parameters_;
  Unmask unmask_;
  MaskedSum sum_;
  uint64_t weight_ = 0;  // Σ weight of the inputs added
};

}  // namespace fedcustoms::coordinator
