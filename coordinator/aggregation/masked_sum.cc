#include "coordinator/aggregation/masked_sum.h"

#include <ATen/ATen.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace fedcustoms::coordinator {

absl::Status MaskedSum::Validate(const TensorSource& input, size_t words) {
  int tensors = 0;
  absl::Status status = input.ForEach([&](const TensorSlice& slice) -> absl::Status {
    if (!slice.first()) return absl::OkStatus();
    if (++tensors > 1 || slice.name != kTensorName) {
      return absl::InvalidArgumentError(absl::StrCat("a masked upload holds the single tensor \"",
                                                     kTensorName, "\", not \"", slice.name, "\""));
    }
    if (slice.dtype != at::kInt) {
      return absl::InvalidArgumentError(absl::StrCat("\"", kTensorName, "\" has dtype ",
                                                     c10::toString(slice.dtype),
                                                     ", expected Int (32-bit words)"));
    }
    if (slice.shape != std::vector<int64_t>{static_cast<int64_t>(words)}) {
      return absl::InvalidArgumentError(absl::StrCat("\"", kTensorName, "\" has shape [",
                                                     absl::StrJoin(slice.shape, ","),
                                                     "], expected [", words, "]"));
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  if (tensors != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("a masked upload holds the single tensor \"", kTensorName, "\"; it is empty"));
  }
  return absl::OkStatus();
}

absl::Status MaskedSum::Add(const TensorSource& input) { return Fold(input, false); }

absl::Status MaskedSum::Subtract(const TensorSource& input) {
  if (inputs_ == 0) return absl::InternalError("MaskedSum::Subtract: nothing was added");
  return Fold(input, true);
}

absl::Status MaskedSum::Fold(const TensorSource& input, bool subtract) {
  bool touched = false;
  absl::Status status = input.ForEach([&](const TensorSlice& slice) -> absl::Status {
    const int64_t n = slice.data.numel();
    if (slice.name != kTensorName || slice.dtype != at::kInt ||
        slice.offset + n > static_cast<int64_t>(sum_.size())) {
      return absl::InternalError("MaskedSum::Add: the input was not validated");
    }
    // Two's complement: adding the int32 bit patterns as uint32 is the sum
    // modulo 2^32.
    const auto* words = reinterpret_cast<const uint32_t*>(slice.data.data_ptr<int32_t>());
    uint32_t* out = sum_.data() + slice.offset;
    if (subtract) {
      for (int64_t i = 0; i < n; ++i) out[i] -= words[i];
    } else {
      for (int64_t i = 0; i < n; ++i) out[i] += words[i];
    }
    touched = touched || n > 0;
    return absl::OkStatus();
  });
  if (!status.ok()) {
    if (touched) poisoned_ = true;
    return status;
  }
  subtract ? --inputs_ : ++inputs_;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<uint32_t>> MaskedSum::Take() {
  if (poisoned_) {
    return absl::DataLossError("a masked input failed to read midway; the masked sum is unusable");
  }
  if (inputs_ == 0) return absl::FailedPreconditionError("no masked input was added");
  inputs_ = 0;
  return std::move(sum_);
}

}  // namespace fedcustoms::coordinator
