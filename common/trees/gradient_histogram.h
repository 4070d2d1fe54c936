#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/trees/feature_bins.h"

namespace fedcustoms::trees {

// What a node sends per tree level, and all the coordinator learns of it in
// mode secure (the sum over nodes): for each open tree node of the level, for
// each feature and bin, the sum of the gradients, of the hessians and the
// count of the training rows there. Layout: open node n, then feature f, then
// bin b of f (FeatureBins::Offsets), then (G, H, count):
//   index = ((n * total_bins) + offset[f] + b) * 3 + {0, 1, 2}.
// Per open node, every feature's bins add up to the same totals.
class GradientHistogram {
 public:
  GradientHistogram(const FeatureBins& bins, size_t open_nodes);

  // Adds each row i whose open-node slot `row_slot[i]` is not -1 (rows in
  // other tree nodes are -1) with its gradient and hessian; `binned_rows`
  // holds features() bins per row (BinRows).
  void Add(std::span<const uint16_t> binned_rows, std::span<const int32_t> row_slot,
           std::span<const double> gradients, std::span<const double> hessians);

  std::vector<double>& values() { return values_; }
  const std::vector<double>& values() const { return values_; }
  size_t open_nodes() const { return open_nodes_; }
  // The (G, H, count) triples of open node `slot`: total_bins() x 3 values.
  std::span<const double> Node(size_t slot) const;

 private:
  const FeatureBins& bins_;
  const std::vector<uint32_t> offsets_;
  const uint32_t total_bins_;
  const size_t open_nodes_;
  std::vector<double> values_;
};

}  // namespace fedcustoms::trees
