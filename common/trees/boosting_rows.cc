#include "common/trees/boosting_rows.h"

#include <algorithm>
#include <cmath>

#include "common/trees/gradient_histogram.h"

namespace fedcustoms::trees {
namespace {

double Sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

}  // namespace

BoostingRows::BoostingRows(const data::DeclarationTable& table, std::vector<int64_t> train,
                           std::vector<int64_t> validation, double positive_weight)
    : table_(table),
      train_(std::move(train)),
      validation_(std::move(validation)),
      positive_weight_(positive_weight) {}

std::vector<double> BoostingRows::Moments() const {
  const size_t width = table_.numeric_width();
  std::vector<double> out(3 + 2 * width, 0.0);
  for (int64_t row : train_) {
    const bool positive = table_.labels[static_cast<size_t>(row)] > 0.5f;
    out[0] += 1;
    out[1] += positive ? positive_weight_ : 0.0;
    out[2] += positive ? positive_weight_ : 1.0;
    for (size_t j = 0; j < width; ++j) {
      const double v = table_.numeric[static_cast<size_t>(row) * width + j];
      out[3 + j] += v;
      out[3 + width + j] += v * v;
    }
  }
  return out;
}

std::vector<double> BoostingRows::Sketch(const std::vector<SketchGrid>& grids) const {
  return SketchCounts(table_, train_, grids);
}

void BoostingRows::Start(const FeatureBins& bins, double base_score) {
  bins_ = &bins;
  train_bins_ = BinRows(bins, table_, train_);
  validation_bins_ = BinRows(bins, table_, validation_);
  train_logits_.assign(train_.size(), base_score);
  validation_logits_.assign(validation_.size(), base_score);
}

void BoostingRows::BeginTree() {
  gradients_.resize(train_.size());
  hessians_.resize(train_.size());
  for (size_t i = 0; i < train_.size(); ++i) {
    const double y = table_.labels[static_cast<size_t>(train_[i])] > 0.5f ? 1.0 : 0.0;
    const double w = y > 0 ? positive_weight_ : 1.0;
    const double p = Sigmoid(train_logits_[i]);
    gradients_[i] = w * (p - y);
    hessians_[i] = std::max(w * p * (1 - p), 1e-16);
  }
}

std::vector<double> BoostingRows::LevelHistogram(const Tree& tree, const std::vector<int32_t>& open,
                                                 uint32_t min_cell_rows, size_t* suppressed) {
  const size_t features = bins_->features();
  std::vector<int32_t> slot_of(tree.nodes.size(), -1);
  for (size_t s = 0; s < open.size(); ++s)
    slot_of[static_cast<size_t>(open[s])] = static_cast<int32_t>(s);
  // Every row walks from the root: the tree comes from the coordinator and is
  // judged whole at each level, never trusted to extend the last one.
  std::vector<int32_t> row_slot(train_.size(), -1);
  std::vector<uint64_t> slot_rows(open.size(), 0);
  for (size_t i = 0; i < train_.size(); ++i) {
    const int32_t n = tree.LeafOf(&train_bins_[i * features]);
    row_slot[i] = slot_of[static_cast<size_t>(n)];
    if (row_slot[i] >= 0) ++slot_rows[static_cast<size_t>(row_slot[i])];
  }
  // Small cells: an open node holding a few of this administration's rows is
  // left out, and so is its sibling, whose histogram subtracted from the
  // parent's (summed at the level before) would give the small one away.
  std::vector<bool> suppress(open.size(), false);
  if (min_cell_rows > 0) {
    std::vector<int32_t> parent(tree.nodes.size(), -1);
    for (size_t n = 0; n < tree.nodes.size(); ++n) {
      const TreeNode& node = tree.nodes[n];
      if (node.leaf()) continue;
      parent[static_cast<size_t>(node.left)] = static_cast<int32_t>(n);
      parent[static_cast<size_t>(node.right)] = static_cast<int32_t>(n);
    }
    for (size_t s = 0; s < open.size(); ++s) {
      if (slot_rows[s] == 0 || slot_rows[s] >= min_cell_rows) continue;
      suppress[s] = true;
      const int32_t p = parent[static_cast<size_t>(open[s])];
      if (p < 0) continue;
      const TreeNode& pn = tree.nodes[static_cast<size_t>(p)];
      const int32_t sibling = pn.left == open[s] ? pn.right : pn.left;
      if (slot_of[static_cast<size_t>(sibling)] >= 0) {
        suppress[static_cast<size_t>(slot_of[static_cast<size_t>(sibling)])] = true;
      }
    }
    for (int32_t& slot : row_slot) {
      if (slot >= 0 && suppress[static_cast<size_t>(slot)]) slot = -1;
    }
  }
  if (suppressed != nullptr)
    *suppressed = static_cast<size_t>(std::count(suppress.begin(), suppress.end(), true));
  GradientHistogram histogram(*bins_, open.size());
  histogram.Add(train_bins_, row_slot, gradients_, hessians_);
  return std::move(histogram.values());
}

void BoostingRows::EndTree(const Tree& tree) {
  const size_t features = bins_->features();
  for (size_t i = 0; i < train_.size(); ++i) {
    train_logits_[i] +=
        tree.nodes[static_cast<size_t>(tree.LeafOf(&train_bins_[i * features]))].value;
  }
  for (size_t i = 0; i < validation_.size(); ++i) {
    validation_logits_[i] +=
        tree.nodes[static_cast<size_t>(tree.LeafOf(&validation_bins_[i * features]))].value;
  }
}

std::pair<double, double> BoostingRows::ValidationLoss() const {
  double loss = 0;
  for (size_t i = 0; i < validation_.size(); ++i) {
    const bool y = table_.labels[static_cast<size_t>(validation_[i])] > 0.5f;
    const double p = std::clamp(Sigmoid(validation_logits_[i]), 1e-7, 1 - 1e-7);
    loss -= y ? std::log(p) : std::log(1 - p);
  }
  return {loss, static_cast<double>(validation_.size())};
}

}  // namespace fedcustoms::trees
