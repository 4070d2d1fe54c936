#include "analyst/report/group_report.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <set>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"

namespace fedcustoms::report {
namespace {

void AddRow(Counts& c, bool positive, bool flagged) {
  ++c.rows;
  if (positive) {
    ++c.positives;
  } else {
    ++c.negatives;
  }
  if (flagged) {
    ++c.flagged;
    if (positive) {
      ++c.true_positives;
    } else {
      ++c.false_positives;
    }
  }
}

RateRatios RatiosOf(const Rates& group, const Rates& overall) {
  return {RatioToOverall(group.flag_rate, overall.flag_rate),
          RatioToOverall(group.precision, overall.precision),
          RatioToOverall(group.recall, overall.recall),
          RatioToOverall(group.false_positive_rate, overall.false_positive_rate)};
}

std::string TooSmallReason(const Counts& c, const ReportOptions& o) {
  std::vector<std::string> parts;
  if (c.rows < o.min_group_rows) {
    parts.push_back(absl::StrCat(c.rows, " rows < ", o.min_group_rows));
  }
  if (c.positives < o.min_group_positives) {
    parts.push_back(absl::StrCat(c.positives, " positives < ", o.min_group_positives));
  }
  if (c.negatives < o.min_group_negatives) {
    parts.push_back(absl::StrCat(c.negatives, " negatives < ", o.min_group_negatives));
  }
  std::string reason;
  for (const std::string& p : parts) absl::StrAppend(&reason, reason.empty() ? "" : "; ", p);
  return reason;
}

absl::Status CheckInput(const ScoredDeclarations& in) {
  const size_t n = in.scores.size();
  if (n == 0) return absl::InvalidArgumentError("scores: empty input (0 rows)");
  if (in.labels.size() != n) {
    return absl::InvalidArgumentError(
        absl::StrCat("labels has ", in.labels.size(), " values but scores has ", n));
  }
  std::set<std::string_view> names;
  for (size_t c = 0; c < in.group_columns.size(); ++c) {
    const GroupColumn& col = in.group_columns[c];
    if (col.name.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("group_columns[", c, "]: the column name is empty"));
    }
    if (!names.insert(col.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("group_columns[", c, "]: column '", col.name, "' is listed twice"));
    }
    if (col.values.size() != n) {
      return absl::InvalidArgumentError(absl::StrCat(
          "group column '", col.name, "' has ", col.values.size(), " values but scores has ", n));
    }
  }
  if (!in.selection.empty() && in.selection.size() != n) {
    return absl::InvalidArgumentError(
        absl::StrCat("selection has ", in.selection.size(), " values but scores has ", n));
  }
  const double budget = in.options.budget;
  if (!(budget > 0 && budget <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("options.budget must be in (0, 1], got ", budget));
  }
  if (ClassifySelection(in.options.random_value, "") == SelectionKind::kUnknown) {  // blank
    return absl::InvalidArgumentError(
        "options.random_value is empty: it would match the unknown (empty) selections");
  }
  for (size_t i = 0; i < n; ++i) {
    if (in.labels[i] != 0.0f && in.labels[i] != 1.0f) {
      return absl::InvalidArgumentError(
          absl::StrCat("labels[", i, "] is ", in.labels[i], "; a label must be 0 or 1"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

Rates RatesFromCounts(const Counts& c) {
  return {WilsonInterval(c.flagged, c.rows), WilsonInterval(c.true_positives, c.flagged),
          WilsonInterval(c.true_positives, c.positives),
          WilsonInterval(c.false_positives, c.negatives)};
}

std::optional<Ratio> RatioToOverall(const Proportion& group, const Proportion& overall) {
  if (overall.value == 0 || group.trials == 0) return std::nullopt;
  return Ratio{group.value / overall.value, group.low / overall.value, group.high / overall.value};
}

SelectionEstimate EstimateFromCounts(const SelectionCounts& c) {
  // WilsonInterval cuts successes to trials, which keeps inconsistent counts finite.
  return {c, WilsonInterval(c.positives, c.rows), WilsonInterval(c.flagged_positives, c.positives),
          WilsonInterval(c.flagged_positives, c.flagged)};
}

absl::StatusOr<GroupReport> BuildGroupReport(const ScoredDeclarations& in) {
  if (absl::Status s = CheckInput(in); !s.ok()) return s;
  const size_t n = in.scores.size();
  const std::vector<bool> flagged = FlagTopShare(in.scores, in.options.budget);

  GroupReport report;
  report.options = in.options;
  for (size_t i = 0; i < n; ++i) AddRow(report.overall, in.labels[i] == 1.0f, flagged[i]);
  report.overall_rates = RatesFromCounts(report.overall);

  for (const GroupColumn& col : in.group_columns) {
    std::map<std::string_view, Counts> by_value;
    for (size_t i = 0; i < n; ++i)
      AddRow(by_value[col.values[i]], in.labels[i] == 1.0f, flagged[i]);
    GroupColumnReport& out = report.columns.emplace_back();
    out.name = col.name;
    out.groups.reserve(by_value.size());
    for (const auto& [value, counts] : by_value) {
      GroupStats& g = out.groups.emplace_back();
      g.value = std::string(value);
      g.counts = counts;
      g.rates = RatesFromCounts(counts);
      g.ratios = RatiosOf(g.rates, report.overall_rates);
      g.too_small_reason = TooSmallReason(counts, in.options);
      g.too_small = !g.too_small_reason.empty();
    }
    // The map gave value order; a stable sort by rows keeps it among equal sizes.
    std::stable_sort(
        out.groups.begin(), out.groups.end(),
        [](const GroupStats& a, const GroupStats& b) { return a.counts.rows > b.counts.rows; });
  }

  if (!in.selection.empty()) {
    std::vector<SelectionKind> kinds(n);
    for (size_t i = 0; i < n; ++i) {
      kinds[i] = ClassifySelection(in.selection[i], in.options.random_value);
    }
    const SelectionTally tally = CountBySelection(in.scores, in.labels, kinds, in.options.budget);
    const SelectionCounts& random = tally.random;
    const SelectionCounts& risk = tally.risk_selected;
    SelectionComparison comparison;
    comparison.unknown_rows = tally.unknown_rows;
    comparison.threshold = tally.threshold;
    std::vector<std::string> notes;
    if (random.rows == 0) {
      notes.push_back(absl::StrCat("no randomly selected controls (0 rows with selection '",
                                   in.options.random_value,
                                   "'): no unbiased estimate is possible"));
    } else {
      comparison.random = EstimateFromCounts(random);
    }
    if (risk.rows == 0) {
      notes.push_back("no risk-selected controls (0 rows with another non-empty selection)");
    } else {
      comparison.risk_selected = EstimateFromCounts(risk);
    }
    for (const std::string& note : notes) {
      absl::StrAppend(&comparison.note, comparison.note.empty() ? "" : "; ", note);
    }
    report.selection = std::move(comparison);
  }
  return report;
}

namespace {

nlohmann::json ProportionJson(const Proportion& p) {
  return {{"successes", p.successes},
          {"trials", p.trials},
          {"value", p.value},
          {"low", p.low},
          {"high", p.high}};
}

nlohmann::json RatedJson(const Proportion& p, const std::optional<Ratio>& r) {
  nlohmann::json j = ProportionJson(p);
  j["ratio"] = r ? nlohmann::json{{"value", r->value}, {"low", r->low}, {"high", r->high}}
                 : nlohmann::json(nullptr);
  return j;
}

void PutCounts(const Counts& c, nlohmann::json& j) {
  j["rows"] = c.rows;
  j["positives"] = c.positives;
  j["negatives"] = c.negatives;
  j["flagged"] = c.flagged;
  j["true_positives"] = c.true_positives;
  j["false_positives"] = c.false_positives;
}

nlohmann::json EstimateJson(const std::optional<SelectionEstimate>& e, bool unbiased) {
  if (!e) return nullptr;
  return SelectionEstimateJson(*e, unbiased);
}

}  // namespace

nlohmann::json SelectionEstimateJson(const SelectionEstimate& e, bool unbiased) {
  return {{"rows", e.counts.rows},
          {"positives", e.counts.positives},
          {"flagged", e.counts.flagged},
          {"flagged_positives", e.counts.flagged_positives},
          {"unbiased", unbiased},
          {"non_compliance_rate", ProportionJson(e.non_compliance_rate)},
          {"recall", ProportionJson(e.recall)},
          {"precision", ProportionJson(e.precision)}};
}

nlohmann::json GroupReportToJson(const GroupReport& r) {
  nlohmann::json j;
  j["format"] = "fedcustoms.group_report.v1";
  j["options"] = {{"budget", r.options.budget},
                  {"random_value", r.options.random_value},
                  {"min_group_rows", r.options.min_group_rows},
                  {"min_group_positives", r.options.min_group_positives},
                  {"min_group_negatives", r.options.min_group_negatives}};
  nlohmann::json overall = nlohmann::json::object();
  PutCounts(r.overall, overall);
  overall["flag_rate"] = ProportionJson(r.overall_rates.flag_rate);
  overall["precision"] = ProportionJson(r.overall_rates.precision);
  overall["recall"] = ProportionJson(r.overall_rates.recall);
  overall["false_positive_rate"] = ProportionJson(r.overall_rates.false_positive_rate);
  j["overall"] = std::move(overall);

  nlohmann::json columns = nlohmann::json::array();
  for (const GroupColumnReport& col : r.columns) {
    nlohmann::json groups = nlohmann::json::array();
    for (const GroupStats& g : col.groups) {
      nlohmann::json gj = {{"value", g.value},
                           {"label", g.value.empty() ? std::string(kEmptyGroupLabel) : g.value}};
      PutCounts(g.counts, gj);
      gj["flag_rate"] = RatedJson(g.rates.flag_rate, g.ratios.flag_rate);
      gj["precision"] = RatedJson(g.rates.precision, g.ratios.precision);
      gj["recall"] = RatedJson(g.rates.recall, g.ratios.recall);
      gj["false_positive_rate"] =
          RatedJson(g.rates.false_positive_rate, g.ratios.false_positive_rate);
      gj["too_small"] = g.too_small;
      gj["too_small_reason"] = g.too_small_reason;
      groups.push_back(std::move(gj));
    }
    columns.push_back({{"name", col.name}, {"groups", std::move(groups)}});
  }
  j["group_columns"] = std::move(columns);

  if (!r.selection) {
    j["selection"] = nullptr;
  } else {
    j["selection"] = {
        {"random", EstimateJson(r.selection->random, true)},
        {"risk_selected", EstimateJson(r.selection->risk_selected, false)},
        {"unknown_rows", r.selection->unknown_rows},
        {"threshold", r.selection->threshold ? nlohmann::json(*r.selection->threshold)
                                             : nlohmann::json(nullptr)},
        {"note", r.selection->note},
        {"interpretation",
         "Random controls are an unbiased sample of all declarations: the top budget share of "
         "their scores estimates the flow's inspection threshold, and their figures at that "
         "threshold estimate the model's performance on the whole flow. Risk-selected controls "
         "were chosen by risk, so their figures at the same threshold are biased by that "
         "selection and describe the controlled sample only."}};
  }
  return j;
}

}  // namespace fedcustoms::report
