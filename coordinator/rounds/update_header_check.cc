#include "coordinator/rounds/update_header_check.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace fedcustoms::coordinator {

absl::Status CheckUpdateHeader(const std::string& task, const std::string& node,
                               const v1::UpdateHeader& header, const UpdateHeaderLimits& limits) {
  if (limits.secure) {
    if (header.sample_count() != 0 || header.train_loss() != 0) {
      return absl::InvalidArgumentError(
          "in mode secure the header carries no sample_count or train_loss (they are masked)");
    }
    return absl::OkStatus();
  }
  if (header.sample_count() == 0 || header.sample_count() > limits.max_sample_count) {
    return absl::InvalidArgumentError(absl::StrCat("sample_count ", header.sample_count(),
                                                   " is outside 1..", limits.max_sample_count));
  }
  if (!limits.declared_rows) {
    return absl::FailedPreconditionError(absl::StrCat("node ", node, " has not joined task ", task,
                                                      " since the coordinator started"));
  }
  if (header.sample_count() > *limits.declared_rows) {
    return absl::InvalidArgumentError(
        absl::StrCat("sample_count ", header.sample_count(), " exceeds the ", *limits.declared_rows,
                     " training rows node ", node, " declared when it joined"));
  }
  if (!std::isfinite(header.train_loss())) {
    return absl::InvalidArgumentError("train_loss is NaN or Inf");
  }
  return absl::OkStatus();
}

}  // namespace fedcustoms::coordinator
