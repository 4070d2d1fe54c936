#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "common/trees/boosting_rows.h"
#include "common/trees/tree_ensemble.h"

namespace fedcustoms::trees {

struct BoostingParams {
  TreeParams tree;
  // Most trees to grow.
  uint32_t trees = 100;
  // Most bins of a numeric feature (2..256).
  uint32_t max_bins = 64;
  // Stop once the validation loss has not improved for this many trees and
  // keep the best count; 0: no early stopping. Needs validation rows.
  uint32_t early_stopping_trees = 10;
};

struct BoostingResult {
  TreeEnsemble ensemble;
  // Mean validation log-loss after each tree (empty without validation
  // rows).
  std::vector<double> validation_loss;
};

// Federated boosting with the sums computed in this process: every vector
// the coordinator would receive is the sum of the parties' vectors, which is
// exactly what secure aggregation gives it, so this is the protocol minus the
// network and the masks (local-only training is one party, pooled training
// one party with every row). The order of a round: Moments (base score and
// the sketch's grids), Sketch (the bins), then per tree BeginTree and per
// level LevelHistogram into a TreeBuilder, EndTree, ValidationLoss.
// InvalidArgument when no party has a training row or a sum is malformed.
absl::StatusOr<BoostingResult> TrainBoostedTrees(std::span<BoostingRows* const> parties,
                                                 const BoostingParams& params);

// The sum of equally long vectors, as a boosting session computes it
// (boosting::FixedPointSum: in fixed point, independent of the order).
absl::StatusOr<std::vector<double>> SumVectors(const std::vector<std::vector<double>>& parts);

// The base score and sketch grids from summed Moments() of `numeric_width`
// features: the log-odds of the weighted positive rate, and grids at the
// mean +- 6 standard deviations.
struct MomentsSummary {
  double base_score = 0;
  std::vector<SketchGrid> grids;
};
absl::StatusOr<MomentsSummary> SummarizeMoments(std::span<const double> moments,
                                                size_t numeric_width);

}  // namespace fedcustoms::trees
