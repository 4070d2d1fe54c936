#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "common/tensor/named_tensors.h"
#include "coordinator/aggregation/tensor_source.h"

namespace fedcustoms::coordinator {

// How far one round may move a tensor: the RMS of its change at most
// `max_relative_change` times the larger of the global tensor's RMS and
// kChangeFloor (so that tensors that start at zero, such as biases, can
// move). 0 leaves changes unbounded. An RMS bound: a change concentrated in
// a few values passes with larger steps there. Standardization statistics
// are bounded only by their own rule (finite, variances positive): the first
// round moves them from their initial 0 and 1 to the data's scale.
struct CandidateLimits {
  static constexpr double kChangeFloor = 0.1;
  double max_relative_change = 0;
};

// What the check saw: the largest relative change of any tensor (for the
// log, and to calibrate the limit) and which tensor it was.
struct CandidateReport {
  double max_relative_change = 0;
  std::string tensor;
};

// The last gate before a candidate is signed: every value of `candidate`
// is finite, every standardization variance ("...running_var") is positive,
// and each other tensor's change from `global` (same names and sizes; a
// tensor of the global model missing from the candidate, a size that
// differs or a name given twice is refused) is within `limits`.
// FAILED_PRECONDITION naming the tensor and the rule otherwise; `global`'s
// read error when it cannot be read.
absl::StatusOr<CandidateReport> CheckCandidate(const tensor::NamedTensors& candidate,
                                               const TensorSource& global,
                                               const CandidateLimits& limits);

}  // namespace fedcustoms::coordinator
