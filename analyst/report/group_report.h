#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "analyst/report/proportion_interval.h"
#include "common/metrics/selection_counts.h"

// Who the risk model flags, group by group, and how well it does on randomly
// selected controls versus risk-selected ones. A model trained on risk-selected
// controls is biased in ways nobody sees unless it is measured: this report is
// that measurement, for analysts (HTML, report_html.h) and for the coordinator
// (JSON, and SelectionCounts, which nodes can send without any row data).
namespace fedcustoms::report {

// Display name of the group of rows whose group value is the empty string.
// The group itself keeps value "" so a real value spelled "(empty)" stays distinct.
inline constexpr char kEmptyGroupLabel[] = "(empty)";

// The random-control counting the report shares with the nodes.
using metrics::AddCounts;
using metrics::CheckSelectionCounts;
using metrics::ClassifySelection;
using metrics::CountBySelection;
using metrics::FlagTopShare;
using metrics::SelectionCounts;
using metrics::SelectionKind;
using metrics::SelectionTally;

// One column to break the report down by, e.g. origin_country or office.
struct GroupColumn {
  std::string name;                 // non-empty, unique among the columns
  std::vector<std::string> values;  // raw value of each row, one per row; "" = empty
};

struct ReportOptions {
  // Share of declarations inspected, in (0, 1]: the top ceil(budget * n) by score are flagged.
  double budget = 0.05;
  // The SELECTION value meaning "chosen at random for control". Compared after trimming ASCII
  // whitespace and ignoring ASCII case, because the column is free text typed by people
  // ("Random ", "RANDOM"). Every other non-empty value is risk-selected; an empty (or
  // all-whitespace) value is unknown and counted in neither.
  std::string random_value = "random";
  // Below any of these a group is marked too_small: its intervals are too wide to act on.
  // Negatives matter too: the false-positive rate is estimated on them, and a group made mostly
  // of offenders has few.
  uint64_t min_group_rows = 50;
  uint64_t min_group_positives = 5;
  uint64_t min_group_negatives = 5;
};

// Scored declarations with their control results, as the analyst holds them. All per-row vectors
// must have the same length as `scores`.
struct ScoredDeclarations {
  std::vector<float> scores;  // P(non-compliant); NaN allowed (ranks below every number)
  std::vector<float> labels;  // control result: exactly 0 (compliant) or 1 (non-compliant)
  std::vector<GroupColumn> group_columns;
  // How each row was chosen for control; empty when the schema has no SELECTION column.
  std::vector<std::string> selection;
  ReportOptions options;
};

// Confusion counts of a set of rows (a group, or all rows) at the budget.
struct Counts {
  uint64_t rows = 0;
  uint64_t positives = 0;        // label 1
  uint64_t negatives = 0;        // label 0
  uint64_t flagged = 0;          // in the global top share
  uint64_t true_positives = 0;   // flagged and positive
  uint64_t false_positives = 0;  // flagged and negative
};

// The four rates of a set of rows, each with its 95 % Wilson interval.
struct Rates {
  Proportion flag_rate;            // flagged / rows
  Proportion precision;            // true_positives / flagged
  Proportion recall;               // true_positives / positives
  Proportion false_positive_rate;  // false_positives / negatives
};

// Rates of `counts` (Wilson 95 %). Pure function.
Rates RatesFromCounts(const Counts& counts);

// A group's rate divided by the overall rate, with an interval.
struct Ratio {
  double value = 0;
  double low = 0;
  double high = 0;
};

// group.value / overall.value, with interval [group.low, group.high] / overall.value.
// The overall figure is treated as fixed: its own uncertainty is ignored, an approximation that
// holds when the group is a small part of the whole (a group that is most of the rows moves the
// overall figure with it, and the true interval is narrower than this one).
// nullopt when overall.value is 0 (no ratio exists) or the group has 0 trials (nothing known
// about the group, e.g. precision of a group with nothing flagged). Pure function.
std::optional<Ratio> RatioToOverall(const Proportion& group, const Proportion& overall);

struct RateRatios {
  std::optional<Ratio> flag_rate;
  std::optional<Ratio> precision;
  std::optional<Ratio> recall;
  std::optional<Ratio> false_positive_rate;
};

struct GroupStats {
  std::string value;  // raw group value; "" is the kEmptyGroupLabel group
  Counts counts;
  Rates rates;
  RateRatios ratios;  // each rate over the overall rate
  // Set when the group has fewer rows, positives or negatives than the options ask. The group
  // is still listed: hiding small groups would hide exactly the ones nobody has looked at.
  bool too_small = false;
  // Every failed minimum, e.g. "12 rows < 50; 3 positives < 5"; empty when !too_small.
  std::string too_small_reason;
};

struct GroupColumnReport {
  std::string name;
  std::vector<GroupStats> groups;  // rows descending, then value ascending (bytewise)
};

struct SelectionEstimate {
  SelectionCounts counts;
  Proportion non_compliance_rate;  // positives / rows
  Proportion recall;               // flagged_positives / positives: recall at the budget
  Proportion precision;            // flagged_positives / flagged: precision at the budget
};

// Rates of `counts` with Wilson 95 % intervals. Inconsistent counts (see CheckSelectionCounts)
// are a caller bug; they give clamped, finite figures, never NaN. Pure function.
SelectionEstimate EstimateFromCounts(const SelectionCounts& counts);

// The estimate as the report's JSON writes it (E in GroupReportToJson).
nlohmann::json SelectionEstimateJson(const SelectionEstimate& estimate, bool unbiased);

// Random controls versus risk-selected controls. Only the random figures are an unbiased
// estimate of the model's performance on the whole flow of declarations: risk-selected rows were
// chosen by a (possibly this) risk model, so their non-compliance rate, recall and precision are
// biased by that selection and describe the controlled sample only.
struct SelectionComparison {
  std::optional<SelectionEstimate> random;         // unbiased; nullopt when 0 random rows
  std::optional<SelectionEstimate> risk_selected;  // biased; nullopt when 0 risk-selected rows
  uint64_t unknown_rows = 0;                       // empty selection value: in neither
  // The score threshold both sides are flagged at (CountBySelection); unset
  // without random rows.
  std::optional<double> threshold;
  // Why a side is missing, e.g. "no randomly selected controls (0 rows with selection
  // 'random'): no unbiased estimate is possible"; empty when both are present.
  std::string note;
};

struct GroupReport {
  ReportOptions options;  // as given
  Counts overall;         // all rows
  Rates overall_rates;
  std::vector<GroupColumnReport> columns;  // in the order of ScoredDeclarations::group_columns
  std::optional<SelectionComparison> selection;  // nullopt without a SELECTION column
};

// Builds the report: flags the top share of all rows (FlagTopShare), then counts and rates
// overall, per group of each group column, and per selection kind.
// InvalidArgument, naming the field, when: scores is empty; labels, a group column (named) or
// selection has a different length from scores; a group column name is empty or repeated;
// options.budget is not in (0, 1]; options.random_value is empty; a label is not exactly 0 or 1
// (with its row). Pure function, thread-safe.
absl::StatusOr<GroupReport> BuildGroupReport(const ScoredDeclarations& input);

// The report as JSON. Field names are stable; a consumer should ignore fields it does not know.
//
//   {"format": "fedcustoms.group_report.v1",
//    "options": {"budget", "random_value", "min_group_rows", "min_group_positives",
//                "min_group_negatives"},
//    "overall": {COUNTS, "flag_rate": P, "precision": P, "recall": P,
//                "false_positive_rate": P},
//    "group_columns": [{"name",
//                       "groups": [{"value", "label", COUNTS,
//                                   "flag_rate": PR, "precision": PR, "recall": PR,
//                                   "false_positive_rate": PR,
//                                   "too_small": bool, "too_small_reason": string}]}],
//    "selection": null | {"random": null | E, "risk_selected": null | E,
//                         "unknown_rows", "note": string, "interpretation": string}}
//
//   COUNTS = "rows", "positives", "negatives", "flagged", "true_positives", "false_positives"
//   P      = {"successes", "trials", "value", "low", "high"}
//   PR     = P plus "ratio": null | {"value", "low", "high"} (RatioToOverall)
//   E      = {"rows", "positives", "flagged", "flagged_positives", "unbiased": bool,
//             "non_compliance_rate": P, "recall": P, "precision": P}
//
// "value" of a group is the raw value ("" for the empty group); "label" is what to display
// (kEmptyGroupLabel for ""). "selection" is null when the data had no SELECTION column.
// Object keys come out sorted. Pure function.
nlohmann::json GroupReportToJson(const GroupReport& report);

}  // namespace fedcustoms::report
