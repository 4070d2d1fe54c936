#include "common/trees/tree_ensemble.h"

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

}  // namespace fedcustoms::trees
