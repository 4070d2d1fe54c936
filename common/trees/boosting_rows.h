#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/data/declaration_table.h"
#include "common/trees/feature_bins.h"
#include "common/trees/tree_builder.h"

namespace fedcustoms::trees {

// One administration's side of federated boosting: its training and
// validation rows, and the few vectors it computes from them, each of which
// only ever leaves as a term of a secure sum:
//   Moments()        rows, positives, and per numeric feature Σx and Σx²
//   Sketch(grids)    counts on the quantile sketch's grids
//   LevelHistogram   per open tree node, feature and bin: Σg, Σh, count
//   ValidationLoss   Σ log-loss and count on the validation rows
// The logistic loss's gradient is g = w (p - y), its hessian h = w p (1 - p),
// p the current prediction, w `positive_weight` for a positive and 1 for a
// negative. `table` must outlive the object; labels are required.
class BoostingRows {
 public:
  BoostingRows(const data::DeclarationTable& table, std::vector<int64_t> train,
               std::vector<int64_t> validation, double positive_weight = 1.0);

  // [rows, weighted positives, weighted rows, Σx_1..Σx_F, Σx_1²..Σx_F²]
  // over the training rows (F numeric features).
  std::vector<double> Moments() const;
  std::vector<double> Sketch(const std::vector<SketchGrid>& grids) const;

  // Bins every row with `bins` and starts every prediction at `base_score`.
  void Start(const FeatureBins& bins, double base_score);
  // A new tree: gradients and hessians from the current predictions, every
  // row at the root.
  void BeginTree();
  // Routes every row down `tree` and sums the histogram of the `open` nodes
  // (TreeBuilder::open(): distinct leaves of `tree`, which must be valid for
  // the bins, as BoostedTreesFromState checks). With `min_cell_rows` > 0 an
  // open node holding between 1 and min_cell_rows - 1 of the rows is left
  // out (zeros), and so is its sibling when open; `*suppressed` (if given)
  // receives how many were left out.
  std::vector<double> LevelHistogram(const Tree& tree, const std::vector<int32_t>& open,
                                     uint32_t min_cell_rows = 0, size_t* suppressed = nullptr);
  // Adds the finished tree's leaf values to every prediction.
  void EndTree(const Tree& tree);
  // {Σ log-loss, rows} of the current predictions on the validation rows.
  std::pair<double, double> ValidationLoss() const;

  size_t train_rows() const { return train_.size(); }
  // Hash buckets of each categorical feature (the table's).
  const std::vector<uint32_t>& categorical_buckets() const { return table_.buckets; }

 private:
  const data::DeclarationTable& table_;
  const std::vector<int64_t> train_;
  const std::vector<int64_t> validation_;
  const double positive_weight_;
  const FeatureBins* bins_ = nullptr;
  std::vector<uint16_t> train_bins_, validation_bins_;
  std::vector<double> train_logits_, validation_logits_;
  std::vector<double> gradients_, hessians_;
};

}  // namespace fedcustoms::trees
