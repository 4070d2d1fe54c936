#include "common/metrics/selection_counts.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numeric>
#include <string>

#include "absl/strings/str_cat.h"

namespace fedcustoms::metrics {
namespace {

// A selection value as compared: ASCII whitespace trimmed, ASCII letters lower-cased.
std::string NormalizeSelection(std::string_view v) {
  auto space = [](char c) { return c == ' ' || (c >= '\t' && c <= '\r'); };
  while (!v.empty() && space(v.front())) v.remove_prefix(1);
  while (!v.empty() && space(v.back())) v.remove_suffix(1);
  std::string out(v);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// The number of rows a budget flags; see FlagTopShare for the tolerance.
size_t FlaggedCount(size_t n, double budget) {
  if (!(budget > 0) || n == 0) return 0;
  if (budget >= 1) return n;
  const double exact = budget * static_cast<double>(n);
  const double nearest = std::round(exact);
  const double m =
      std::abs(exact - nearest) <= 1e-9 * std::max(1.0, exact) ? nearest : std::ceil(exact);
  return std::min(n, static_cast<size_t>(m));
}

}  // namespace

SelectionKind ClassifySelection(std::string_view value, std::string_view random_value) {
  const std::string v = NormalizeSelection(value);
  if (v.empty()) return SelectionKind::kUnknown;
  return v == NormalizeSelection(random_value) ? SelectionKind::kRandom : SelectionKind::kRisk;
}

std::vector<bool> FlagTopShare(std::span<const float> scores, double budget) {
  const size_t n = scores.size();
  std::vector<bool> flagged(n, false);
  const size_t m = FlaggedCount(n, budget);
  if (m == 0) return flagged;
  std::vector<float> key(n);
  for (size_t i = 0; i < n; ++i) {
    key[i] = std::isnan(scores[i]) ? -std::numeric_limits<float>::infinity() : scores[i];
  }
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  // Only the top m matter, so a partial sort; the comparator is a strict total order
  // (index breaks ties), so the result is the same as metrics' full sort.
  std::partial_sort(
      order.begin(), order.begin() + static_cast<std::ptrdiff_t>(m), order.end(),
      [&](size_t a, size_t b) { return key[a] > key[b] || (key[a] == key[b] && a < b); });
  for (size_t r = 0; r < m; ++r) flagged[order[r]] = true;
  return flagged;
}

absl::Status CheckSelectionCounts(const SelectionCounts& c) {
  if (c.positives > c.rows) {
    return absl::InvalidArgumentError(
        absl::StrCat("positives (", c.positives, ") exceeds rows (", c.rows, ")"));
  }
  if (c.flagged > c.rows) {
    return absl::InvalidArgumentError(
        absl::StrCat("flagged (", c.flagged, ") exceeds rows (", c.rows, ")"));
  }
  if (c.flagged_positives > std::min(c.positives, c.flagged)) {
    return absl::InvalidArgumentError(absl::StrCat("flagged_positives (", c.flagged_positives,
                                                   ") exceeds positives (", c.positives,
                                                   ") or flagged (", c.flagged, ")"));
  }
  return absl::OkStatus();
}

SelectionTally CountBySelection(std::span<const float> scores, std::span<const float> labels,
                                std::span<const SelectionKind> kinds, double budget) {
  SelectionTally tally;
  const size_t n = std::min({scores.size(), labels.size(), kinds.size()});
  std::vector<float> random_scores;
  for (size_t i = 0; i < n; ++i) {
    if (kinds[i] == SelectionKind::kRandom) random_scores.push_back(scores[i]);
  }
  const std::vector<bool> random_flags = FlagTopShare(random_scores, budget);
  for (size_t k = 0; k < random_scores.size(); ++k) {
    if (random_flags[k] && (!tally.threshold || random_scores[k] < *tally.threshold)) {
      tally.threshold = random_scores[k];
    }
  }
  // Without random rows the flow's threshold is unknown: the risk-selected
  // rows then take their own top share, a figure about them alone.
  std::vector<bool> risk_flags;
  if (!tally.threshold) {
    std::vector<float> risk_scores;
    for (size_t i = 0; i < n; ++i) {
      if (kinds[i] == SelectionKind::kRisk) risk_scores.push_back(scores[i]);
    }
    risk_flags = FlagTopShare(risk_scores, budget);
  }
  size_t random_index = 0, risk_index = 0;
  for (size_t i = 0; i < n; ++i) {
    bool flagged = false;
    SelectionCounts* c = nullptr;
    switch (kinds[i]) {
      case SelectionKind::kUnknown:
        ++tally.unknown_rows;
        continue;
      case SelectionKind::kRandom:
        c = &tally.random;
        flagged = random_flags[random_index++];
        break;
      case SelectionKind::kRisk:
        c = &tally.risk_selected;
        flagged = tally.threshold ? scores[i] >= *tally.threshold : risk_flags[risk_index++];
        break;
    }
    const bool positive = labels[i] > 0.5f;
    ++c->rows;
    if (positive) ++c->positives;
    if (flagged) ++c->flagged;
    if (positive && flagged) ++c->flagged_positives;
  }
  return tally;
}

void AddCounts(SelectionCounts& sum, const SelectionCounts& more) {
  sum.rows += more.rows;
  sum.positives += more.positives;
  sum.flagged += more.flagged;
  sum.flagged_positives += more.flagged_positives;
}

}  // namespace fedcustoms::metrics
