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
  row_node_.assign(train_.size(), 0);
}

std::vector<double> BoostingRows::LevelHistogram(const Tree& tree,
                                                 const std::vector<int32_t>& open) {
  const size_t features = bins_->features();
  std::vector<int32_t> slot_of(tree.nodes.size(), -1);
  for (size_t s = 0; s < open.size(); ++s)
    slot_of[static_cast<size_t>(open[s])] = static_cast<int32_t>(s);
  std::vector<int32_t> row_slot(train_.size(), -1);
  for (size_t i = 0; i < train_.size(); ++i) {
    int32_t n = row_node_[i];
    const uint16_t* row = &train_bins_[i * features];
    while (!tree.nodes[static_cast<size_t>(n)].leaf()) {
      const TreeNode& node = tree.nodes[static_cast<size_t>(n)];
      n = node.GoesLeft(row) ? node.left : node.right;
    }
    row_node_[i] = n;
    row_slot[i] = slot_of[static_cast<size_t>(n)];
  }
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
