#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/trees/feature_bins.h"
#include "common/trees/tree_builder.h"

namespace fedcustoms::trees {

// A gradient-boosted tree model: logit(row) = base_score + the sum over the
// trees of the leaf the row's bins end in (values carry the learning rate).
struct TreeEnsemble {
  FeatureBins bins;
  double base_score = 0;
  std::vector<Tree> trees;

  // The logit of one binned row (FeatureBins order; BinRows).
  double PredictLogit(const uint16_t* row) const;

  // The tree-path contributions of one row (Saabas 2014): walking each
  // tree from its root to the row's leaf, the change of the node's value
  // at each split goes to the split's feature. Completeness holds exactly:
  //   *bias + sum(contributions) == PredictLogit(row)
  // with *bias = base_score + the sum of the roots' values (what every row
  // starts from). `contributions` gets one value per feature.
  void Contributions(const uint16_t* row, std::vector<double>* contributions, double* bias) const;
};

// The probability sigmoid(logit) of each of `rows` of `table`, binned with
// the ensemble's bins (which must have the table's features).
std::vector<float> PredictProbabilities(const TreeEnsemble& ensemble,
                                        const data::DeclarationTable& table,
                                        std::span<const int64_t> rows);

}  // namespace fedcustoms::trees
