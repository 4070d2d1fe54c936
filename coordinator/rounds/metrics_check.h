#pragma once

#include "absl/status/status.h"
#include "fedcustoms/v1/metrics.pb.h"

namespace fedcustoms::coordinator {

// Checks the metrics a node reports on a candidate before they weigh in the
// published mean: rates within [0, 1], a finite non-negative loss, counts
// that fit one another (positives and flagged within examples, at most a
// billion examples), budgets in 1..100, and the selection evaluation's rows
// within the examples. InvalidArgument naming the field and the rule
// otherwise. Pure function of its argument; thread-safe.
absl::Status CheckMetrics(const v1::EvaluationMetrics& metrics);

}  // namespace fedcustoms::coordinator
