#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "absl/status/statusor.h"
#include "analyst/model/declaration_scorer.h"
#include "fedcustoms/v1/config.pb.h"

namespace fedcustoms::tools {

// The demo's answer to "what does anomaly detection catch that the risk
// model misses": on one administration's hold-out (the node's own split of
// its declarations), the share of frauds each model puts in the top k % of
// declarations, for the emerging scheme (the synthetic over-invoicing that
// starts inside the hold-out period, so no training label shows it) and for
// the known patterns, from the synthetic ground truth at `truth_path`
// (synth::ReadFraudTruth). Also the split policy: k/2 % by each model's top
// list. Budgets 1 % and 5 %. Errors name the file.
//
// JSON: {"holdout_rows", "emerging_frauds", "known_frauds",
//        "budgets": [{"percent", "risk": {"emerging_recall", "known_recall"},
//                     "anomaly": {...}, "split": {...},
//                     "emerging_caught_by_anomaly_only"}]}
absl::StatusOr<nlohmann::json> CompareOnEmergingScheme(const v1::NodeConfig& node,
                                                       const std::string& truth_path,
                                                       analyst::DeclarationScorer& risk,
                                                       analyst::DeclarationScorer& anomaly);

}  // namespace fedcustoms::tools
