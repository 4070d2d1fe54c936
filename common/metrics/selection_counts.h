#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

// Random-control counting, shared by the nodes (which count their hold-out
// every round and send only these counts) and the analysts' reports (which
// count their own file the same way, so the two agree). No row leaves the
// caller: the results are counts.
namespace fedcustoms::metrics {

// How a declaration was chosen for control, from its SELECTION value as
// report::ReportOptions::random_value describes: kUnknown for an empty (or
// all-whitespace) value, kRandom when it equals random_value after trimming
// ASCII whitespace and ignoring ASCII case, else kRisk. Nodes classify their
// hold-out with it too, so their counts and the analysts' reports agree.
enum class SelectionKind : uint8_t { kUnknown, kRandom, kRisk };
SelectionKind ClassifySelection(std::string_view value, std::string_view random_value);

// Flags the top m = ceil(budget * n) of `scores`, by score, and returns one flag per score.
// Same rule as metrics::ComputeBinaryMetrics's at_budget, so reports and evaluation metrics agree:
// among equal scores the lower index ranks first and NaN ranks below every number. budget * n
// within 1e-9 (relative) of an integer counts as that integer, so that 0.07 * 100
// (= 7.000000000000001 in binary) flags 7 rows as the integer-percent metrics do, not 8.
// budget is expected in (0, 1]; below or NaN flags nothing, above 1 flags everything.
// Pure function, thread-safe.
std::vector<bool> FlagTopShare(std::span<const float> scores, double budget);

// Random-control figures of one kind of selection. Nodes send only these counts to the
// coordinator, which sums them over nodes (report::EstimateFromCounts makes the rates).
struct SelectionCounts {
  uint64_t rows = 0;
  uint64_t positives = 0;
  uint64_t flagged = 0;            // in the global top share (the same threshold for every kind)
  uint64_t flagged_positives = 0;  // flagged and positive
};

// OK when the counts are consistent (positives <= rows, flagged <= rows, flagged_positives <=
// min(positives, flagged)); InvalidArgument naming the first violated field otherwise. Counts
// from the network should pass this before EstimateFromCounts.
absl::Status CheckSelectionCounts(const SelectionCounts& counts);

// Adds `more` to `sum`, field by field (pooling counts taken at one budget).
void AddCounts(SelectionCounts& sum, const SelectionCounts& more);

// Random-control counts at an inspection budget. The randomly selected
// controls sample the whole flow of declarations, so the top `budget` share of
// their own scores (FlagTopShare) estimates where the flow's inspection
// threshold lies: random rows are flagged that way, and risk-selected rows at
// the same score (score >= the lowest flagged random score), so both sides
// are judged at one threshold. Without random rows (threshold unset) the
// risk-selected rows are flagged at their own top share. Rows of kind
// kUnknown are only counted. Spans of unequal length are cut to the
// shortest. Nodes count their hold-out with it, and BuildGroupReport the
// analyst's file, so the two agree. Pure function.
struct SelectionTally {
  SelectionCounts random;
  SelectionCounts risk_selected;
  uint64_t unknown_rows = 0;
  std::optional<double> threshold;
};
SelectionTally CountBySelection(std::span<const float> scores, std::span<const float> labels,
                                std::span<const SelectionKind> kinds, double budget);

}  // namespace fedcustoms::metrics
