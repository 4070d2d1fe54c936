#include "node/backoff/status_class.h"

#include "absl/strings/str_cat.h"

namespace fedcustoms::node {

StatusClass Classify(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return StatusClass::kOk;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
      return StatusClass::kRetry;
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnauthenticated:
      return StatusClass::kFatal;
    default:
      return StatusClass::kSitOut;
  }
}

absl::Status LocalTrainingFailure(const absl::Status& learner_status) {
  return absl::FailedPreconditionError(
      absl::StrCat("local training failed: ", learner_status.message()));
}

}  // namespace fedcustoms::node
