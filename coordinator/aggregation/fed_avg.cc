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

absl::Status FedAvg::AddFlat(std::span<const float> update, uint64_t sample_count) {
  if (sample_count == 0) return absl::InvalidArgumentError("sample count must be > 0");
  if (spent_) return absl::FailedPreconditionError("the running sum was already applied");
  int64_t total = 0;
  for (const at::Tensor& t : sum_) total += t.numel();
  if (static_cast<int64_t>(update.size()) != total) {
    return absl::InvalidArgumentError(
        absl::StrCat("a flat update has ", update.size(), " values, the model ", total));
  }
  const float weight = static_cast<float>(sample_count);
  size_t offset = 0;
  for (at::Tensor& t : sum_) {
    const int64_t n = t.numel();
    // from_blob does not copy; the view lives only within this statement.
    t.view(-1).add_(
        torch::from_blob(const_cast<float*>(update.data() + offset), {n}, torch::kFloat32), weight);
    offset += n;
  }
  ++updates_;
  samples_ += sample_count;
  return absl::OkStatus();
}

absl::StatusOr<tensor::NamedTensors> FedAvg::Apply(const TensorSource& global,
                                                   ServerOptimizer* optimizer) {
  if (poisoned_) {
    return absl::DataLossError("an update failed to read midway; the running sum is unusable");
  }
  if (spent_) return absl::FailedPreconditionError("the running sum was already applied");
  if (samples_ == 0) return absl::FailedPreconditionError("no update was aggregated");
  spent_ = true;
  const double inverse = 1.0 / static_cast<double>(samples_);
  tensor::NamedTensors out;
  size_t entry = 0;       // next spec entry expected in `global`
  torch::Tensor current;  // flat result of the tensor being read
  bool aggregated = false;
  bool in_place = false;  // float32 results overwrite the running sum
  absl::Status status = global.ForEach([&](const TensorSlice& slice) -> absl::Status {
    if (slice.first()) {
      aggregated = entry < spec_.entries.size() && slice.name == spec_.entries[entry].name;
      if (aggregated && slice.shape != spec_.entries[entry].shape) {
        return absl::InternalError(absl::StrCat("global tensor \"", slice.name,
                                                "\" does not have the shape of the updates"));
      }
      in_place = aggregated && slice.dtype == torch::kFloat32;
      current = in_place ? sum_[entry].view(-1)
                         : torch::empty({slice.total_numel}, torch::TensorOptions(slice.dtype));
    }
    const int64_t n = slice.data.numel();
    torch::Tensor target = current.narrow(0, slice.offset, n);
    if (!aggregated) {
      target.copy_(slice.data);
    } else {
      if (in_place) {
        target.mul_(inverse);
        if (optimizer != nullptr) optimizer->Step(entry, slice.offset, target);
        target.add_(slice.data);
      } else {
        torch::Tensor step = sum_[entry].view(-1).narrow(0, slice.offset, n) * inverse;
        if (optimizer != nullptr) optimizer->Step(entry, slice.offset, step);
        target.copy_(slice.data + step.to(slice.dtype));
      }
      // Each update was finite, but a weighted sum of huge finite values can
      // overflow: such an aggregate is refused, never published.
      if (!tensor::AllFinite(target)) {
        return absl::InvalidArgumentError(
            absl::StrCat("the aggregate of tensor \"", slice.name,
                         "\" overflows to Inf or NaN (updates too large)"));
      }
    }
    if (slice.last()) {
      out.emplace_back(slice.name, current.view(slice.shape));
      current = torch::Tensor();
      if (aggregated) sum_[entry++] = torch::Tensor();
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  if (entry != spec_.entries.size()) {
    return absl::InternalError(
        absl::StrCat("the global model lacks tensor \"", spec_.entries[entry].name, "\""));
  }
  return out;
}

}  // namespace fedcustoms::coordinator
