#include "common/trees/tree_builder.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace fedcustoms::trees {

int32_t Tree::LeafOf(const uint16_t* row) const {
  int32_t n = 0;
  while (!nodes[static_cast<size_t>(n)].leaf()) {
    const TreeNode& node = nodes[static_cast<size_t>(n)];
    n = node.GoesLeft(row) ? node.left : node.right;
  }
  return n;
}

TreeBuilder::TreeBuilder(const FeatureBins& bins, const TreeParams& params)
    : bins_(bins), params_(params) {
  tree_.nodes.emplace_back();
  open_ = {0};
}

absl::Status TreeBuilder::AddLevel(std::span<const double> summed) {
  const size_t per_node = static_cast<size_t>(bins_.total_bins()) * 3;
  if (summed.size() != open_.size() * per_node) {
    return absl::InvalidArgumentError(absl::StrCat("a level histogram of ", open_.size(),
                                                   " open nodes has ", open_.size() * per_node,
                                                   " values, not ", summed.size()));
  }
  for (size_t i = 0; i < summed.size(); ++i) {
    if (!std::isfinite(summed[i]) || (i % 3 != 0 && summed[i] < 0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("level histogram value ", i, " is ", summed[i],
                       i % 3 == 0 ? " (a gradient sum must be finite)"
                                  : " (hessian and count sums must be finite and >= 0)"));
    }
  }
  std::vector<int32_t> next;
  const uint32_t first_bins = bins_.features() > 0 ? bins_.bins(0) : 0;
  for (size_t slot = 0; slot < open_.size(); ++slot) {
    const std::span<const double> node = summed.subspan(slot * per_node, per_node);
    double g = 0, h = 0, c = 0;
    for (uint32_t b = 0; b < first_bins; ++b) {
      g += node[b * 3];
      h += node[b * 3 + 1];
      c += node[b * 3 + 2];
    }
    const auto id = static_cast<size_t>(open_[slot]);
    tree_.nodes[id].value = LeafValue(g, h, params_);
    tree_.nodes[id].hessian = h;
    tree_.nodes[id].count = c;
    if (tree_.nodes[id].depth >= params_.max_depth) continue;
    Split split = BestSplit(bins_, node, params_);
    if (!split.valid) continue;
    const uint32_t depth = tree_.nodes[id].depth + 1;
    TreeNode left, right;
    left.depth = right.depth = depth;
    left.value = LeafValue(split.left_gradient, split.left_hessian, params_);
    left.hessian = split.left_hessian;
    left.count = split.left_count;
    right.value = LeafValue(split.right_gradient, split.right_hessian, params_);
    right.hessian = split.right_hessian;
    right.count = split.right_count;
    const auto left_id = static_cast<int32_t>(tree_.nodes.size());
    tree_.nodes.push_back(std::move(left));
    tree_.nodes.push_back(std::move(right));
    TreeNode& parent = tree_.nodes[id];
    parent.left = left_id;
    parent.right = left_id + 1;
    parent.feature = split.feature;
    parent.categorical = split.categorical;
    parent.threshold_bin = split.threshold_bin;
    parent.left_bins = std::move(split.left_bins);
    if (depth < params_.max_depth) {
      next.push_back(left_id);
      next.push_back(left_id + 1);
    }
  }
  open_ = std::move(next);
  return absl::OkStatus();
}

}  // namespace fedcustoms::trees
