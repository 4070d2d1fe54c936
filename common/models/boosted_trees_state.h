#pragma once

#include "absl/status/statusor.h"
#include "common/tensor/named_tensors.h"
#include "common/trees/tree_ensemble.h"

namespace fedcustoms::models {

// A gradient-boosted tree model (trees::TreeEnsemble) as a state dict, so it
// goes through the registry, the signed manifest's hashes and the pull like
// every other model, and loads in PyTorch with torch.load:
//   bins.numeric_edge_counts  int64 [numeric features]   edges per feature
//   bins.numeric_edges        float32 [all edges]        feature after feature
//   bins.categorical_bins     int64 [categorical features]
//   base_score                float64 [1]
//   trees.node_counts         int64 [trees]
//   trees.nodes               float64 [all nodes, 7]: left, right, feature,
//                             categorical (0/1), threshold_bin, value,
//                             hessian (-1 children for a leaf)
//   trees.left_bins           uint8 [...]: for each categorical split, in
//                             node order, its feature's bins (1 = left)
// Names in canonical (sorted) order.
tensor::NamedTensors BoostedTreesState(const trees::TreeEnsemble& ensemble);

// The ensemble of a state dict written by BoostedTreesState. A state from the
// network or the disk is hostile until checked: InvalidArgument naming the
// tensor and the rule when a tensor is missing or has the wrong dtype or
// shape, a count does not add up, an edge list is not ascending and finite, a
// child index does not point to a later node of the same tree (no cycles), a
// node other than the root has no parent or two (a tree, not a graph), a
// feature or threshold is out of range, or a value is not finite.
absl::StatusOr<trees::TreeEnsemble> BoostedTreesFromState(const tensor::NamedTensors& state);

}  // namespace fedcustoms::models
