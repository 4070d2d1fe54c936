#include "coordinator/aggregation/fed_avg.h"

#include <torch/torch.h>

#include "absl/strings/str_cat.h"

namespace fedcustoms::coordinator {

FedAvg::FedAvg(UpdateSpec spec) : spec_(std::move(spec)) {
  sum_.reserve(spec_.entries.size());
  for (const UpdateSpec::Entry& e : spec_.entries) {
    sum_.push_back(torch::zeros(e.shape, torch::kFloat32));
  }
}

absl::Status FedAvg::Validate(const TensorSource& update) const {
  return ValidateUpdate(update, spec_);
}

absl::Status FedAvg::Add(const TensorSource& update, uint64_t sample_count) {
  if (sample_count == 0) return absl::InvalidArgumentError("sample count must be > 0");
  if (spent_) return absl::FailedPreconditionError("the running sum was already applied");
  const float weight = static_cast<float>(sample_count);
  size_t index = 0;
  bool touched = false;
  absl::Status status = update.ForEach([&](const TensorSlice& slice) -> absl::Status {
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

absl::StatusOr<MeanUpdate> FedAvg::Finish() {
  if (poisoned_) {
    return absl::DataLossError("an update failed to read midway; the running sum is unusable");
  }
  if (spent_) return absl::FailedPreconditionError("the running sum was already applied");
  if (samples_ == 0) return absl::FailedPreconditionError("no update was aggregated");
  spent_ = true;
  return MeanUpdate(spec_, std::move(sum_), 1.0 / static_cast<double>(samples_), samples_);
}

absl::StatusOr<tensor::NamedTensors> FedAvg::Apply(const TensorSource& global,
                                                   ServerOptimizer* optimizer) {
  absl::StatusOr<MeanUpdate> mean = Finish();
  if (!mean.ok()) return mean.status();
  return mean->Apply(global, optimizer);
}

}  // namespace fedcustoms::coordinator
