#include "coordinator/aggregation/fed_avg.h"

#include <torch/torch.h>

#include <unordered_map>

#include "absl/strings/str_cat.h"

namespace fedcustoms::coordinator {

FedAvg::FedAvg(UpdateSpec spec) : spec_(std::move(spec)) {}

absl::Status FedAvg::Add(const UpdateSource& update, uint64_t sample_count) {
  if (sample_count == 0) return absl::InvalidArgumentError("sample count must be > 0");
  if (sum_.empty()) {
    sum_.reserve(spec_.entries.size());
    for (const UpdateSpec::Entry& e : spec_.entries) {
      sum_.push_back(torch::zeros(e.shape, torch::kFloat32));
    }
  }
  const float weight = static_cast<float>(sample_count);
  size_t index = 0;
  bool touched = false;
  absl::Status status = update.ForEach([&](const UpdateSlice& slice) -> absl::Status {
    if (index >= sum_.size() || slice.name != spec_.entries[index].name) {
      return absl::InternalError(absl::StrCat("unvalidated update tensor \"", slice.name, "\""));
    }
    if (slice.data.numel() > 0) {
      sum_[index].view(-1).narrow(0, slice.offset, slice.data.numel()).add_(slice.data, weight);
      touched = true;
    }
    if (slice.last()) ++index;
    return absl::OkStatus();
  });
  if (!status.ok()) {
    if (touched) poisoned_ = true;
    return status;
  }
  ++updates_;
  samples_ += sample_count;
  return absl::OkStatus();
}

absl::StatusOr<tensor::NamedTensors> FedAvg::Apply(const tensor::NamedTensors& global) const {
  if (poisoned_) {
    return absl::DataLossError("an update failed to read midway; the running sum is unusable");
  }
  if (samples_ == 0) return absl::FailedPreconditionError("no update was aggregated");
  std::unordered_map<std::string, size_t> position;
  for (size_t i = 0; i < spec_.entries.size(); ++i) position[spec_.entries[i].name] = i;
  const double inverse = 1.0 / static_cast<double>(samples_);
  tensor::NamedTensors out;
  out.reserve(global.size());
  for (const auto& [name, w] : global) {
    auto it = position.find(name);
    if (it == position.end() || sum_.empty()) {
      out.emplace_back(name, w.clone());
      continue;
    }
    torch::Tensor mean = sum_[it->second] * inverse;
    torch::Tensor next = (w + mean.to(w.scalar_type())).contiguous();
    // Each update was finite, but a weighted sum of huge finite values can
    // overflow: such an aggregate is refused, never published.
    if (!tensor::AllFinite(next)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the aggregate of tensor \"", name, "\" overflows to Inf or NaN (updates too large)"));
    }
    out.emplace_back(name, std::move(next));
  }
  return out;
}

}  // namespace fedcustoms::coordinator
