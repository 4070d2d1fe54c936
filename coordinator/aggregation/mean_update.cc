#include "coordinator/aggregation/mean_update.h"

#include <torch/torch.h>

#include "absl/strings/str_cat.h"

namespace fedcustoms::coordinator {

MeanUpdate::MeanUpdate(UpdateSpec spec, std::vector<at::Tensor> values, double scale,
                       uint64_t samples)
    : spec_(std::move(spec)), values_(std::move(values)), scale_(scale), samples_(samples) {}

absl::StatusOr<MeanUpdate> MeanUpdate::FromFlat(UpdateSpec spec, at::Tensor flat,
                                                uint64_t samples) {
  const auto total = static_cast<int64_t>(spec.Parameters());
  if (flat.scalar_type() != torch::kFloat32 || flat.dim() != 1 || flat.numel() != total) {
    return absl::InvalidArgumentError(absl::StrCat("a flat update has ", flat.numel(), " ",
                                                   c10::toString(flat.scalar_type()),
                                                   " values, the model ", total, " Float"));
  }
  flat = flat.contiguous();
  std::vector<at::Tensor> values;
  values.reserve(spec.entries.size());
  int64_t offset = 0;
  for (const UpdateSpec::Entry& e : spec.entries) {
    const auto n = static_cast<int64_t>(UpdateSpec::Size(e));
    values.push_back(flat.narrow(0, offset, n).view(e.shape));
    offset += n;
  }
  return MeanUpdate(std::move(spec), std::move(values), 1.0, samples);
}

absl::StatusOr<tensor::NamedTensors> MeanUpdate::Apply(const TensorSource& global,
                                                       ServerOptimizer* optimizer) {
  if (spent_) return absl::FailedPreconditionError("the update was already applied");
  spent_ = true;
  tensor::NamedTensors out;
  size_t entry = 0;       // next spec entry expected in `global`
  torch::Tensor current;  // flat result of the tensor being read
  bool aggregated = false;
  bool in_place = false;  // float32 results overwrite the update
  absl::Status status = global.ForEach([&](const TensorSlice& slice) -> absl::Status {
    if (slice.first()) {
      aggregated = entry < spec_.entries.size() && slice.name == spec_.entries[entry].name;
      if (aggregated && slice.shape != spec_.entries[entry].shape) {
        return absl::InternalError(absl::StrCat("global tensor \"", slice.name,
                                                "\" does not have the shape of the updates"));
      }
      in_place = aggregated && slice.dtype == torch::kFloat32;
      current = in_place ? values_[entry].view(-1)
                         : torch::empty({slice.total_numel}, torch::TensorOptions(slice.dtype));
    }
    const int64_t n = slice.data.numel();
    torch::Tensor target = current.narrow(0, slice.offset, n);
    if (!aggregated) {
      target.copy_(slice.data);
    } else {
      if (in_place) {
        if (scale_ != 1.0) target.mul_(scale_);
        if (optimizer != nullptr) optimizer->Step(entry, slice.offset, target);
        target.add_(slice.data);
      } else {
        torch::Tensor step = values_[entry].view(-1).narrow(0, slice.offset, n) * scale_;
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
      if (aggregated) values_[entry++] = torch::Tensor();
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
