#include "coordinator/aggregation/secure_aggregator.h"

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

absl::Status SecureAggregator::Add(const TensorSource& upload, uint64_t /*sample_count*/) {
  return sum_.Add(upload);
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
  absl::StatusOr<uint64_t> samples =
      codec_.Decode(*unmasked, layout, std::span<float>(mean.data_ptr<float>(), parameters_));
  if (!samples.ok()) return samples.status();
  unmasked->clear();
  unmasked->shrink_to_fit();
  return MeanUpdate::FromFlat(spec_, std::move(mean), *samples);
}

}  // namespace fedcustoms::coordinator
