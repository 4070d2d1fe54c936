#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/trees/feature_bins.h"

namespace fedcustoms::trees {

// Regularization of the trees (the XGBoost objective: a leaf's value is
// -G / (H + l2), a split's gain is half the reduction of
// -G^2 / (H + l2) over its two children, minus min_split_gain).
// The deepest tree a task may ask for (BoostedTreesConfig.max_depth): a
// tree of depth D takes D levels.
inline constexpr uint32_t kMaxTreeDepth = 8;

struct TreeParams {
  uint32_t max_depth = 6;
  double learning_rate = 0.1;
  double l2 = 1.0;
  // Least hessian sum in each child (XGBoost's min_child_weight).
  double min_child_weight = 1.0;
  double min_split_gain = 0.0;
};

// The best split of one open tree node, from its summed histogram.
struct Split {
  bool valid = false;
  uint32_t feature = 0;
  bool categorical = false;
  // Numeric: rows with bin <= threshold_bin go left.
  uint32_t threshold_bin = 0;
  // Categorical: bins[b] != 0 goes left; bins never seen go right.
  std::vector<uint8_t> left_bins;
  double gain = 0;
  double left_gradient = 0, left_hessian = 0, right_gradient = 0, right_hessian = 0;
  double left_count = 0, right_count = 0;
};

// The leaf value -G / (H + l2), times the learning rate.
double LeafValue(double gradient, double hessian, const TreeParams& params);

// The split of highest gain of a node whose histogram is `node` (one
// GradientHistogram::Node), over every feature: numeric features by a
// threshold scan over their bins, categorical features by sorting their bins
// by G / (H + l2) and scanning that order (LightGBM's many-vs-many split,
// optimal for a convex loss, Fisher 1958). Invalid when no split has
// positive gain with both children at min_child_weight.
Split BestSplit(const FeatureBins& bins, std::span<const double> node, const TreeParams& params);

}  // namespace fedcustoms::trees
