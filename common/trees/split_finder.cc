#include "common/trees/split_finder.h"

#include <algorithm>
#include <numeric>

namespace fedcustoms::trees {
namespace {

double Score(double g, double h, double l2) { return g * g / (h + l2); }

}  // namespace

double LeafValue(double gradient, double hessian, const TreeParams& params) {
  return -gradient / (hessian + params.l2) * params.learning_rate;
}

Split BestSplit(const FeatureBins& bins, std::span<const double> node, const TreeParams& params) {
  Split best;
  const std::vector<uint32_t> offsets = bins.Offsets();
  // Totals from the first feature (every feature's bins add up to them).
  double total_g = 0, total_h = 0, total_c = 0;
  if (bins.features() == 0) return best;
  for (uint32_t b = 0; b < bins.bins(0); ++b) {
    total_g += node[(offsets[0] + b) * 3];
    total_h += node[(offsets[0] + b) * 3 + 1];
    total_c += node[(offsets[0] + b) * 3 + 2];
  }
  const double parent = Score(total_g, total_h, params.l2);
  auto consider = [&](size_t f, double lg, double lh, double lc, auto&& fill) {
    const double rg = total_g - lg, rh = total_h - lh, rc = total_c - lc;
    if (lh < params.min_child_weight || rh < params.min_child_weight || lc < 1 || rc < 1) return;
    const double gain = 0.5 * (Score(lg, lh, params.l2) + Score(rg, rh, params.l2) - parent) -
                        params.min_split_gain;
    if (gain <= 0 || (best.valid && gain <= best.gain)) return;
    best.valid = true;
    best.feature = static_cast<uint32_t>(f);
    best.gain = gain;
    best.left_gradient = lg;
    best.left_hessian = lh;
    best.left_count = lc;
    best.right_gradient = rg;
    best.right_hessian = rh;
    best.right_count = rc;
    fill();
  };
  for (size_t f = 0; f < bins.features(); ++f) {
    const uint32_t n = bins.bins(f);
    const double* h = &node[offsets[f] * 3];
    if (!bins.categorical(f)) {
      double lg = 0, lh = 0, lc = 0;
      for (uint32_t b = 0; b + 1 < n; ++b) {
        lg += h[b * 3];
        lh += h[b * 3 + 1];
        lc += h[b * 3 + 2];
        consider(f, lg, lh, lc, [&] {
          best.categorical = false;
          best.threshold_bin = b;
          best.left_bins.clear();
        });
      }
      continue;
    }
    std::vector<uint32_t> seen;
    for (uint32_t b = 0; b < n; ++b) {
      if (h[b * 3 + 2] > 0) seen.push_back(b);
    }
    std::sort(seen.begin(), seen.end(), [&](uint32_t a, uint32_t b) {
      const double ra = h[a * 3] / (h[a * 3 + 1] + params.l2);
      const double rb = h[b * 3] / (h[b * 3 + 1] + params.l2);
      return ra != rb ? ra < rb : a < b;
    });
    double lg = 0, lh = 0, lc = 0;
    for (size_t k = 0; k + 1 < seen.size(); ++k) {
      lg += h[seen[k] * 3];
      lh += h[seen[k] * 3 + 1];
      lc += h[seen[k] * 3 + 2];
      consider(f, lg, lh, lc, [&] {
        best.categorical = true;
        best.threshold_bin = 0;
        best.left_bins.assign(n, 0);
        for (size_t i = 0; i <= k; ++i) best.left_bins[seen[i]] = 1;
      });
    }
  }
  return best;
}

}  // namespace fedcustoms::trees
