#include "coordinator/aggregation/update_validator.h"

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace fedcustoms::coordinator {

uint64_t UpdateSpec::Size(const Entry& entry) {
  uint64_t n = 1;
  for (int64_t d : entry.shape) n *= static_cast<uint64_t>(d);
  return n;
}

uint64_t UpdateSpec::Parameters() const {
  uint64_t total = 0;
  for (const Entry& e : entries) total += Size(e);
  return total;
}

UpdateSpec UpdateSpec::Of(const tensor::NamedTensors& global) {
  UpdateSpec spec;
  for (const auto& [name, t] : global) {
    if (!tensor::IsAggregatable(t)) continue;
    spec.entries.push_back({name, t.sizes().vec()});
  }
  return spec;
}

absl::Status ValidateUpdate(const TensorSource& update, const UpdateSpec& spec) {
  size_t index = 0;  // of the tensor being visited
  absl::Status status = update.ForEach([&](const TensorSlice& slice) -> absl::Status {
    const std::string& name = slice.name;
    if (slice.first()) {
      if (index >= spec.entries.size()) {
        return absl::InvalidArgumentError(absl::StrCat("update has an extra tensor \"", name,
                                                       "\" after the ", spec.entries.size(),
                                                       " expected"));
      }
      const UpdateSpec::Entry& want = spec.entries[index];
      if (name != want.name) {
        return absl::InvalidArgumentError(absl::StrCat("update tensor ", index, " is \"", name,
                                                       "\", expected \"", want.name, "\""));
      }
      if (slice.dtype != torch::kFloat32) {
        return absl::InvalidArgumentError(absl::StrCat("update tensor \"", name, "\" has dtype ",
                                                       c10::toString(slice.dtype),
                                                       ", expected Float"));
      }
      if (slice.shape != want.shape) {
        return absl::InvalidArgumentError(absl::StrCat(
            "update tensor \"", name, "\" has shape [", absl::StrJoin(slice.shape, ","),
            "], expected [", absl::StrJoin(want.shape, ","), "]"));
      }
    }
    if (!tensor::AllFinite(slice.data)) {
      return absl::InvalidArgumentError(
          absl::StrCat("update tensor \"", name, "\" contains NaN or Inf"));
    }
    if (slice.last()) ++index;
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  if (index != spec.entries.size()) {
    return absl::InvalidArgumentError(absl::StrCat("update has ", index, " tensors, expected ",
                                                   spec.entries.size(), " (missing \"",
                                                   spec.entries[index].name, "\")"));
  }
  return absl::OkStatus();
}

}  // namespace fedcustoms::coordinator
