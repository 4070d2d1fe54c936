#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "common/trees/feature_bins.h"
#include "common/trees/split_finder.h"

namespace fedcustoms::trees {

// One node of a tree. A leaf has left == right == -1.
struct TreeNode {
  int32_t left = -1;
  int32_t right = -1;
  uint32_t feature = 0;
  bool categorical = false;
  uint32_t threshold_bin = 0;      // numeric: bin <= threshold_bin goes left
  std::vector<uint8_t> left_bins;  // categorical: left_bins[bin] != 0 goes left
  // A leaf's output (learning rate applied); for an inner node the output it
  // would have as a leaf, which the tree-path contributions use.
  double value = 0;
  // Sums of the hessians (the cover) and count of the training rows here.
  double hessian = 0;
  double count = 0;
  uint32_t depth = 0;

  bool leaf() const { return left < 0; }
  // Whether a row with these bins (FeatureBins order) goes to the left child.
  bool GoesLeft(const uint16_t* row) const {
    const uint16_t bin = row[feature];
    return categorical ? (bin < left_bins.size() && left_bins[bin] != 0) : bin <= threshold_bin;
  }
};

struct Tree {
  std::vector<TreeNode> nodes;  // nodes[0] is the root
  // The leaf a row ends in.
  int32_t LeafOf(const uint16_t* row) const;
};

// Grows one tree level by level from summed gradient histograms (the
// coordinator's part of federated boosting): it never sees a row, only
// GradientHistogram sums of the open nodes. A node splits where BestSplit
// finds a valid split and its depth is below max_depth; the children of the
// last level are leaves at once (their sums are known from the split), so a
// tree of depth D takes D histograms. Not thread-safe.
class TreeBuilder {
 public:
  // `bins` must outlive the builder.
  TreeBuilder(const FeatureBins& bins, const TreeParams& params);

  // The nodes whose histograms the next level needs, in histogram slot order
  // (the root first); empty once the tree is done.
  const std::vector<int32_t>& open() const { return open_; }
  bool done() const { return open_.empty(); }

  // Grows the open nodes from `summed` (GradientHistogram layout over open()
  // nodes). InvalidArgument, with the tree unchanged, when the size is wrong,
  // a value is not finite, or a hessian or count is negative.
  absl::Status AddLevel(std::span<const double> summed);

  const Tree& tree() const { return tree_; }

 private:
  const FeatureBins& bins_;
  const TreeParams params_;
  Tree tree_;
  std::vector<int32_t> open_;
};

}  // namespace fedcustoms::trees
