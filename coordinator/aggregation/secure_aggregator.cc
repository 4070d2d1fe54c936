#include "coordinator/aggregation/secure_aggregator.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

namespace fedcustoms::coordinator {
SecureAggregator::SecureAggregator(UpdateSpec spec, secagg::MaskedUpdate codec, Unmask unmask)
    : spec_(std::move(spec)),
      codec_(std::move(codec)),
      parameters_(spec_.Parameters()),
      unmask_(std::move(unmask)),
      sum_(secagg::MaskedUpdate::Words(parameters_)) {}

absl::Status SecureAggregator::Validate(const TensorSource& upload) const {
  return MaskedSum::Validate(upload, secagg::MaskedUpdate::Words(parameters_));
}

absl::Status SecureAggregator::Add(const TensorSource& upload, uint64_t weight) {
  if (weight == 0) return absl::InvalidArgumentError("a masked input needs its node's weight");
  if (absl::Status s = sum_.Add(upload); !s.ok()) return s;
  weight_ += weight;
  return absl::OkStatus();
}

absl::Status SecureAggregator::Remove(const TensorSource& upload, uint64_t weight) {
  if (weight > weight_) {
    return absl::InternalError("SecureAggregator::Remove: more weight than was added");
  }
  if (absl::Status s = sum_.Subtract(upload); !s.ok()) return s;
  weight_ -= weight;
  return absl::OkStatus();
}

absl::StatusOr<MeanUpdate> SecureAggregator::Finish() {
  absl::StatusOr<std::vector<uint32_t>> sum = sum_.Take();
  if (!sum.ok()) return sum.status();
  absl::StatusOr<std::vector<uint32_t>> unmasked = unmask_(*std::move(sum));
  if (!unmasked.ok()) return unmasked.status();
  std::vector<secagg::MaskedUpdate::Entry> layout;
  layout.reserve(spec_.entries.size());
  for (const UpdateSpec::Entry& e : spec_.entries) layout.push_back({e.name, UpdateSpec::Size(e)});
  at::Tensor mean = torch::empty({static_cast<int64_t>(parameters_)}, torch::kFloat32);
  absl::StatusOr<uint64_t> masked_count = codec_.Decode(
      *unmasked, layout, std::span<float>(mean.data_ptr<float>(), parameters_), weight_);
  if (!masked_count.ok()) return masked_count.status();
  if (*masked_count != weight_) {
    // Honest nodes mask their training rows; the mean used the public rows
    // either way, so a false count changed nothing but is worth a look.
    spdlog::warn(
        "secure sum: the masked sample counts add up to {}, the contributors declared "
        "{} rows; the mean is weighted by the declared rows",
        *masked_count, weight_);
  }
  unmasked->clear();
  unmasked->shrink_to_fit();
  return MeanUpdate::FromFlat(spec_, std::move(mean), weight_);
}

}  // namespace fedcustoms::coordinator
