#include "common/trees/boosted_trees_trainer.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/boosting/masked_vector.h"

namespace fedcustoms::trees {

absl::StatusOr<std::vector<double>> SumVectors(const std::vector<std::vector<double>>& parts) {
  return boosting::FixedPointSum(parts);
}

absl::StatusOr<MomentsSummary> SummarizeMoments(std::span<const double> moments,
                                                size_t numeric_width) {
  if (moments.size() != 3 + 2 * numeric_width) {
    return absl::InvalidArgumentError(absl::StrCat("the summed moments have ", moments.size(),
                                                   " values, not ", 3 + 2 * numeric_width));
  }
  const double rows = moments[0], positives = moments[1], weighted = moments[2];
  if (!(rows >= 1) || !(positives >= 0) || !(weighted >= positives)) {
    return absl::InvalidArgumentError(absl::StrCat("the summed moments count ", rows, " rows and ",
                                                   positives, " positives: nothing to train on"));
  }
  MomentsSummary out;
  // Clamped so a federation without positives (or negatives) still starts
  // from a finite score.
  const double p = std::clamp(positives / weighted, 1e-6, 1 - 1e-6);
  out.base_score = std::log(p / (1 - p));
  std::vector<double> means(numeric_width), stddevs(numeric_width);
  for (size_t j = 0; j < numeric_width; ++j) {
    means[j] = moments[3 + j] / rows;
    stddevs[j] =
        std::sqrt(std::max(0.0, moments[3 + numeric_width + j] / rows - means[j] * means[j]));
  }
  out.grids = GridsFromMoments(means, stddevs);
  return out;
}

absl::StatusOr<BoostingResult> TrainBoostedTrees(std::span<BoostingRows* const> parties,
                                                 const BoostingParams& params) {
  if (parties.empty()) return absl::InvalidArgumentError("boosting needs at least one party");
  std::vector<std::vector<double>> parts;
  for (BoostingRows* p : parties) parts.push_back(p->Moments());
  absl::StatusOr<std::vector<double>> summed = SumVectors(parts);
  if (!summed.ok()) return summed.status();
  const std::vector<double> moments = *std::move(summed);
  // The numeric width is in the moments' length.
  const size_t width = (moments.size() - 3) / 2;
  absl::StatusOr<MomentsSummary> summary = SummarizeMoments(moments, width);
  if (!summary.ok()) return summary.status();
  parts.clear();
  for (BoostingRows* p : parties) parts.push_back(p->Sketch(summary->grids));
  BoostingResult result;
  summed = SumVectors(parts);
  if (!summed.ok()) return summed.status();
  absl::StatusOr<FeatureBins> bins =
      BinsFromSketch(summary->grids, *summed, parties[0]->categorical_buckets(), params.max_bins);
  if (!bins.ok()) return bins.status();
  result.ensemble.bins = *std::move(bins);
  result.ensemble.base_score = summary->base_score;
  for (BoostingRows* p : parties) p->Start(result.ensemble.bins, summary->base_score);
  double best_loss = INFINITY;
  size_t best_trees = 0;
  for (uint32_t t = 0; t < params.trees; ++t) {
    for (BoostingRows* p : parties) p->BeginTree();
    TreeBuilder builder(result.ensemble.bins, params.tree);
    while (!builder.done()) {
      parts.clear();
      for (BoostingRows* p : parties)
        parts.push_back(p->LevelHistogram(builder.tree(), builder.open()));
      summed = SumVectors(parts);
      if (!summed.ok()) return summed.status();
      if (absl::Status s = builder.AddLevel(*summed); !s.ok()) return s;
    }
    result.ensemble.trees.push_back(builder.tree());
    for (BoostingRows* p : parties) p->EndTree(builder.tree());
    parts.clear();
    for (BoostingRows* p : parties) {
      const auto [l, n] = p->ValidationLoss();
      parts.push_back({l, n});
    }
    summed = SumVectors(parts);
    if (!summed.ok()) return summed.status();
    const double loss = (*summed)[0], rows = (*summed)[1];
    if (rows == 0) continue;
    result.validation_loss.push_back(loss / rows);
    if (loss / rows < best_loss) {
      best_loss = loss / rows;
      best_trees = result.ensemble.trees.size();
    } else if (params.early_stopping_trees > 0 &&
               result.ensemble.trees.size() >= best_trees + params.early_stopping_trees) {
      break;
    }
  }
  if (params.early_stopping_trees > 0 && !result.validation_loss.empty()) {
    result.ensemble.trees.resize(best_trees);
  }
  return result;
}

}  // namespace fedcustoms::trees
