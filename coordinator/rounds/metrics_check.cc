#include "coordinator/rounds/metrics_check.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/config/proto_json.h"
#include "common/metrics/binary_metrics.h"

namespace fedcustoms::coordinator {

namespace {

bool InUnitInterval(double v) { return std::isfinite(v) && v >= 0.0 && v <= 1.0; }

// As the ledger records metrics: every field, defaults too; "{}" if protobuf
// refuses to print.
std::string JsonText(const google::protobuf::Message& message) {
  return config::PrintProtoJson(message, {.print_defaults = true}).value_or(std::string("{}"));
}

}  // namespace

absl::Status CheckMetrics(const v1::EvaluationMetrics& m) {
  if (!InUnitInterval(m.roc_auc()) || !InUnitInterval(m.pr_auc())) {
    return absl::InvalidArgumentError("metrics: roc_auc and pr_auc must be within [0, 1]");
  }
  if (!std::isfinite(m.loss()) || m.loss() < 0) {
    return absl::InvalidArgumentError("metrics: loss must be finite and >= 0");
  }
  if (m.examples() == 0 || m.positives() > m.examples() || m.flagged() > m.examples()) {
    return absl::InvalidArgumentError(
        "metrics: need examples > 0, positives <= examples and flagged <= examples");
  }
  // Examples weight the mean across nodes; a hold-out beyond a billion rows
  // is not a customs administration's.
  if (m.examples() > 1'000'000'000) {
    return absl::InvalidArgumentError("metrics: examples must be at most 1000000000");
  }
  if (!InUnitInterval(m.accuracy())) {
    return absl::InvalidArgumentError("metrics: accuracy must be within [0, 1]");
  }
  std::set<uint32_t> budgets;
  for (const v1::AtBudget& b : m.at_budget()) {
    if (!InUnitInterval(b.precision()) || !InUnitInterval(b.recall()) || b.percent() == 0 ||
        b.percent() > 100) {
      return absl::InvalidArgumentError(
          "metrics: at_budget needs percent in 1..100, precision and recall within [0, 1]");
    }
    // A second entry would add the node's weight twice to that budget's mean.
    if (!budgets.insert(b.percent()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("metrics: at_budget lists percent ", b.percent(), " twice"));
    }
  }
  if (m.has_selection()) {
    const v1::SelectionEvaluation& s = m.selection();
    if (s.budget_percent() == 0 || s.budget_percent() > 100) {
      return absl::InvalidArgumentError("metrics: selection.budget_percent must be in 1..100");
    }
    for (const auto* c : {&s.random(), &s.risk_selected()}) {
      const char* which = c == &s.random() ? "random" : "risk_selected";
      if (c->positives() > c->rows() || c->flagged() > c->rows() ||
          c->flagged_positives() > std::min(c->flagged(), c->positives())) {
        return absl::InvalidArgumentError(absl::StrCat(
            "metrics: selection.", which,
            " needs positives <= rows, flagged <= rows and flagged_positives <= both"));
      }
    }
    // Each part on its own first: a sum of two hostile uint64 could wrap.
    if (s.random().rows() > m.examples() ||
        s.risk_selected().rows() > m.examples() - s.random().rows()) {
      return absl::InvalidArgumentError(
          "metrics: selection rows (random + risk_selected) exceed examples");
    }
  }
  if (m.has_validation()) {
    // One node's validation weighs in the choice of the released version:
    // it must be as well-formed as the hold-out's figures.
    const v1::ValidationMetrics& v = m.validation();
    if (!InUnitInterval(v.roc_auc()) || !InUnitInterval(v.pr_auc())) {
      return absl::InvalidArgumentError(
          "metrics: validation.roc_auc and validation.pr_auc must be within [0, 1]");
    }
    if (!std::isfinite(v.loss()) || v.loss() < 0) {
      return absl::InvalidArgumentError("metrics: validation.loss must be finite and >= 0");
    }
    if (v.examples() == 0 || v.positives() > v.examples() || v.examples() > 1'000'000'000) {
      return absl::InvalidArgumentError(
          "metrics: need 0 < validation.examples <= 1000000000 and validation.positives <= "
          "validation.examples");
    }
  }
  return absl::OkStatus();
}

RoundMetrics SummarizeReports(uint64_t round_id,
                              const std::map<std::string, v1::EvaluationMetrics>& reported) {
  RoundMetrics out;
  std::vector<v1::EvaluationMetrics> reports;
  std::vector<double> pr_aucs, validation_pr_aucs;
  for (const auto& [node, metrics] : reported) {
    reports.push_back(metrics);
    pr_aucs.push_back(metrics.pr_auc());
    if (metrics.has_validation() && metrics.validation().positives() > 0) {
      validation_pr_aucs.push_back(metrics.validation().pr_auc());
    }
    if (!metrics.has_selection()) continue;
    v1::NodeSelectionEvaluation& e = out.selection_evaluations.emplace_back();
    e.set_node(node);
    e.set_round_id(round_id);
    *e.mutable_evaluation() = metrics.selection();
    out.selection_records.emplace_back(node, JsonText(metrics.selection()));
  }
  if (!reports.empty()) {
    std::nth_element(pr_aucs.begin(), pr_aucs.begin() + pr_aucs.size() / 2, pr_aucs.end());
    out.median_pr_auc = pr_aucs[pr_aucs.size() / 2];
    // Enough reporters that one cannot choose: at least kMinValidationReports
    // and a majority of the reports; the lower median, so that with an even
    // count the larger middle value (which one liar could supply) is not it.
    if (validation_pr_aucs.size() >= kMinValidationReports &&
        2 * validation_pr_aucs.size() > reports.size()) {
      const auto middle = validation_pr_aucs.begin() + (validation_pr_aucs.size() - 1) / 2;
      std::nth_element(validation_pr_aucs.begin(), middle, validation_pr_aucs.end());
      out.median_validation_pr_auc = *middle;
    }
    out.mean = metrics::WeightedMeanMetrics(reports);
    out.mean_json = JsonText(*out.mean);
  }
  return out;
}

absl::Status CheckEvaluation(const RoundMetrics& metrics, size_t reports, size_t contributors,
                             std::optional<double> previous_median, const v1::PublishGate& gate) {
  if (reports < gate.min_reports()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "only ", reports, " of ", contributors,
        " contributors reported metrics on the candidate by the deadline; min_reports is ",
        gate.min_reports()));
  }
  if (gate.has_max_pr_auc_drop() && previous_median && metrics.median_pr_auc &&
      *metrics.median_pr_auc < *previous_median - gate.max_pr_auc_drop()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the candidate's median hold-out PR-AUC ", *metrics.median_pr_auc,
                     " is more than ", gate.max_pr_auc_drop(), " below the published version's ",
                     *previous_median, " (max_pr_auc_drop)"));
  }
  return absl::OkStatus();
}

}  // namespace fedcustoms::coordinator
