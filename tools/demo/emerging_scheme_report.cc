#include "tools/demo/emerging_scheme_report.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/synth/declarations_synth.h"
#include "node/local_data.h"

namespace fedcustoms::tools {
namespace {

constexpr const char* kEmergingPattern = "over_invoicing";

// Positions (into the hold-out) of the `count` highest scores; ties go to
// the earlier row.
std::vector<size_t> TopPositions(const std::vector<float>& scores, size_t count) {
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  count = std::min(count, order.size());
  std::partial_sort(order.begin(), order.begin() + count, order.end(), [&](size_t a, size_t b) {
    return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
  });
  order.resize(count);
  return order;
}

enum class Truth { kNone, kKnown, kEmerging };

double Ratio(size_t part, size_t whole) {
  return whole == 0 ? 0.0 : static_cast<double>(part) / static_cast<double>(whole);
}

nlohmann::json Recall(const std::vector<bool>& inspected, const std::vector<Truth>& truth,
                      size_t emerging, size_t known) {
  size_t caught_emerging = 0, caught_known = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    if (!inspected[i]) continue;
    caught_emerging += truth[i] == Truth::kEmerging;
    caught_known += truth[i] == Truth::kKnown;
  }
  return {{"emerging_recall", Ratio(caught_emerging, emerging)},
          {"known_recall", Ratio(caught_known, known)}};
}

std::vector<bool> Inspected(size_t n, const std::vector<size_t>& positions) {
  std::vector<bool> inspected(n, false);
  for (size_t p : positions) inspected[p] = true;
  return inspected;
}

}  // namespace

absl::StatusOr<nlohmann::json> CompareOnEmergingScheme(const v1::NodeConfig& node,
                                                       const std::string& truth_path,
                                                       analyst::DeclarationScorer& risk,
                                                       analyst::DeclarationScorer& anomaly) {
  auto data = node::LoadLocalData(node, /*need_labels=*/false);
  if (!data.ok()) return data.status();
  if (data->table.ids.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(node.data_file(), ": the schema has no ID column to join the ground truth"));
  }
  auto truth_by_id = synth::ReadFraudTruth(truth_path);
  if (!truth_by_id.ok()) return truth_by_id.status();

  const std::vector<int64_t>& rows = data->split.holdout;
  std::vector<Truth> truth(rows.size(), Truth::kNone);
  size_t emerging = 0, known = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    auto it = truth_by_id->find(data->table.ids[rows[i]]);
    if (it == truth_by_id->end()) continue;
    truth[i] = it->second.pattern == kEmergingPattern ? Truth::kEmerging : Truth::kKnown;
    (truth[i] == Truth::kEmerging ? emerging : known) += 1;
  }
  auto risk_scores = risk.Score(data->table, rows);
  if (!risk_scores.ok()) return risk_scores.status();
  auto anomaly_scores = anomaly.Score(data->table, rows);
  if (!anomaly_scores.ok()) return anomaly_scores.status();

  nlohmann::json report{{"holdout_rows", rows.size()},
                        {"emerging_frauds", emerging},
                        {"known_frauds", known},
                        {"budgets", nlohmann::json::array()}};
  for (uint32_t percent : {1u, 5u}) {
    const size_t budget =
        static_cast<size_t>(std::ceil(percent / 100.0 * static_cast<double>(rows.size())));
    const std::vector<bool> by_risk = Inspected(rows.size(), TopPositions(*risk_scores, budget));
    const std::vector<bool> by_anomaly =
        Inspected(rows.size(), TopPositions(*anomaly_scores, budget));
    // Half the budget each; where the lists overlap the inspection is shared.
    std::vector<bool> split = Inspected(rows.size(), TopPositions(*risk_scores, budget / 2));
    for (size_t p : TopPositions(*anomaly_scores, budget - budget / 2)) split[p] = true;
    size_t anomaly_only = 0;
    for (size_t i = 0; i < rows.size(); ++i) {
      anomaly_only += truth[i] == Truth::kEmerging && by_anomaly[i] && !by_risk[i];
    }
    report["budgets"].push_back({{"percent", percent},
                                 {"risk", Recall(by_risk, truth, emerging, known)},
                                 {"anomaly", Recall(by_anomaly, truth, emerging, known)},
                                 {"split", Recall(split, truth, emerging, known)},
                                 {"emerging_caught_by_anomaly_only", anomaly_only}});
  }
  return report;
}

}  // namespace fedcustoms::tools
