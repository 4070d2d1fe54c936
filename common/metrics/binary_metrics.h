#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "fedcustoms/v1/metrics.pb.h"

namespace fedcustoms::metrics {

// Inspection budgets reported in EvaluationMetrics.at_budget, in percent.
inline constexpr std::array<uint32_t, 4> kBudgetPercents = {1, 2, 5, 10};

// Metrics of `scores` (higher = riskier) against 0/1 `labels` (a label > 0.5
// is positive); `loss` is copied into the result. The spans must have equal
// sizes (checked by assert; in release builds the longer one is cut). Pure
// function, thread-safe.
//
//   roc_auc    Mann-Whitney statistic with midranks: tied scores count 1/2.
//   pr_auc     average precision as in scikit-learn: sum over distinct scores
//              (tied scores form one threshold), from high to low, of
//              (R_n - R_{n-1}) * P_n.
//   at_budget  for k in kBudgetPercents the top m = ceil(k/100 * n) rows by
//              score; among equal scores the lower row index ranks first.
//              precision = positives in top / m, recall = positives in top /
//              all positives (0 when there are none).
//   examples, positives
//
// NaN scores rank below every number. Degenerate sets are defined, never NaN:
// with no positives or no negatives roc_auc = 0.5 (no ranking to judge) and
// pr_auc = the positive rate (0 or 1: what any ranking scores); an empty set
// gives examples 0, roc_auc 0.5 and zeros elsewhere.
v1::EvaluationMetrics ComputeBinaryMetrics(std::span<const float> scores,
                                           std::span<const float> labels, double loss = 0);

// Mean of several nodes' metrics weighted by their `examples`: roc_auc,
// pr_auc, loss, accuracy and each budget's precision and recall (budgets
// matched by percent; a budget missing from a report is averaged over the
// reports that have it). examples, positives and flagged are summed, and so
// are the selection (random-control) counts of the reports that have them at
// the budget_percent of the first such report (counts at another budget do
// not add up and are left out). If every report has 0
// examples the reports weigh equally; no reports gives a default message.
// Note this is the mean of per-node AUCs, not the AUC of the pooled scores.
// The validation metrics of the reports that have them are averaged too:
// PR-AUC weighted by validation positives, ROC-AUC and loss by validation
// examples (counts summed); none when no report has them.
v1::EvaluationMetrics WeightedMeanMetrics(const std::vector<v1::EvaluationMetrics>& reports);

}  // namespace fedcustoms::metrics
