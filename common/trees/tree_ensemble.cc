#include "common/trees/tree_ensemble.h"

#include <cmath>

namespace fedcustoms::trees {

double TreeEnsemble::PredictLogit(const uint16_t* row) const {
  double logit = base_score;
  for (const Tree& tree : trees) logit += tree.nodes[static_cast<size_t>(tree.LeafOf(row))].value;
  return logit;
}

void TreeEnsemble::Contributions(const uint16_t* row, std::vector<double>* contributions,
                                 double* bias) const {
  contributions->assign(bins.features(), 0.0);
  *bias = base_score;
  for (const Tree& tree : trees) {
    size_t n = 0;
    *bias += tree.nodes[0].value;
    while (!tree.nodes[n].leaf()) {
      const TreeNode& node = tree.nodes[n];
      const auto child = static_cast<size_t>(node.GoesLeft(row) ? node.left : node.right);
      (*contributions)[node.feature] += tree.nodes[child].value - node.value;
      n = child;
    }
  }
}

std::vector<float> PredictProbabilities(const TreeEnsemble& ensemble,
                                        const data::DeclarationTable& table,
                                        std::span<const int64_t> rows) {
  const std::vector<uint16_t> binned = BinRows(ensemble.bins, table, rows);
  const size_t features = ensemble.bins.features();
  std::vector<float> out(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    out[i] = static_cast<float>(1 / (1 + std::exp(-ensemble.PredictLogit(&binned[i * features]))));
  }
  return out;
}

}  // namespace fedcustoms::trees
