#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "fedcustoms/v1/admin_service.pb.h"
#include "fedcustoms/v1/config.pb.h"
#include "fedcustoms/v1/metrics.pb.h"

namespace fedcustoms::coordinator {

// Checks the metrics a node reports on a candidate before they weigh in the
// published mean: rates within [0, 1], a finite non-negative loss, counts
// that fit one another (positives and flagged within examples, at most a
// billion examples), budgets in 1..100, and the selection evaluation's rows
// within the examples, and the same rules for the validation metrics when
// present. InvalidArgument naming the field and the rule
// otherwise. Pure function of its argument; thread-safe.
absl::Status CheckMetrics(const v1::EvaluationMetrics& metrics);

// What a round's evaluation reports add up to.
struct RoundMetrics {
  // The examples-weighted mean of the reports (metrics::WeightedMeanMetrics);
  // none when no participant reported.
  std::optional<v1::EvaluationMetrics> mean;
  std::string mean_json = "{}";  // the mean as proto JSON, "{}" when none
  // Each reporting administration's random-control evaluation, by node.
  std::vector<v1::NodeSelectionEvaluation> selection_evaluations;
  // The same as the ledger keeps them: (node, JSON of its evaluation).
  std::vector<std::pair<std::string, std::string>> selection_records;
  // The median of the reported PR-AUCs (the upper one of an even count):
  // unlike the weighted mean, one reporter cannot move it beyond the range
  // of the others' reports once three or more report. None without reports.
  std::optional<double> median_pr_auc;
  // The lower median of the validation PR-AUCs of the reports whose
  // validation split has positives: what the released version is chosen on
  // (ReleaseChoice). Only when at least kMinValidationReports reports have
  // one and they are a majority of the reports, so that one node (a liar,
  // or one that withholds its figure) cannot choose; none otherwise.
  std::optional<double> median_validation_pr_auc;
};

// The fewest validation figures a round's choice of the released version
// rests on.
inline constexpr size_t kMinValidationReports = 3;

// Sums up the (checked) reports of round `round_id`, by node.
RoundMetrics SummarizeReports(uint64_t round_id,
                              const std::map<std::string, v1::EvaluationMetrics>& reported);

// The evaluation part of the publish gate: at least gate.min_reports of the
// `contributors` reported (checked, finite) metrics, and with
// gate.max_pr_auc_drop set, the median reported PR-AUC is at most that far
// below `previous_median` (the last published version's, when known).
// FAILED_PRECONDITION saying which rule failed, with the figures.
absl::Status CheckEvaluation(const RoundMetrics& metrics, size_t reports, size_t contributors,
                             std::optional<double> previous_median, const v1::PublishGate& gate);

}  // namespace fedcustoms::coordinator
