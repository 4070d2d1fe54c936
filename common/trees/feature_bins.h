#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "common/data/declaration_table.h"

namespace fedcustoms::trees {

// Where the gradient-boosted trees cut each feature. Histogram trees (as in
// XGBoost's "hist" and LightGBM) never look at a value, only at its bin, so
// every administration must bin the same way without showing anyone its
// rows. Numeric features are cut at quantile edges computed from a
// federated sketch (SketchGrid, below: counts that add up under secure
// aggregation); a categorical feature's bins are its hash buckets, folded
// modulo max_categorical_bins so that one feature with 16 384 buckets does
// not make every histogram huge.
struct FeatureBins {
  // Per numeric feature: ascending edges. Value v falls in bin b, the number
  // of edges below v (edges[b-1] < v <= edges[b]), so a feature with k edges
  // has k + 1 bins.
  std::vector<std::vector<float>> numeric_edges;
  // Per categorical feature: its bins (bucket % bins).
  std::vector<uint32_t> categorical_bins;

  size_t numeric_width() const { return numeric_edges.size(); }
  size_t features() const { return numeric_edges.size() + categorical_bins.size(); }
  bool categorical(size_t feature) const { return feature >= numeric_edges.size(); }
  // Bins of `feature` (numeric first, then categorical, in the table's order).
  uint32_t bins(size_t feature) const;
  // Bins of every feature before `feature`: its offset in a histogram.
  std::vector<uint32_t> Offsets() const;
  uint32_t total_bins() const;
};

// The most bins a categorical feature keeps (buckets beyond fold onto them).
inline constexpr uint32_t kMaxCategoricalBins = 1024;

// The fine grid of the federated quantile sketch of one numeric feature:
// `cells` equal cells over [low, high]; values below or above count in the
// first or last cell. Every node uses the same grids (from the federation's
// mean and standard deviation, GridsFromMoments), so their counts add up.
struct SketchGrid {
  double low = 0;
  double high = 1;
  uint32_t cells = 1024;
};

// Grids centred on each feature's mean, mean +- 6 standard deviations
// (a constant feature gets [mean - 1, mean + 1]).
std::vector<SketchGrid> GridsFromMoments(std::span<const double> means,
                                         std::span<const double> stddevs, uint32_t cells = 1024);

// Counts of `rows` of `table` (numeric features) in each cell of `grids`,
// feature after feature: what a node adds to the secure sum of the sketch.
std::vector<double> SketchCounts(const data::DeclarationTable& table, std::span<const int64_t> rows,
                                 const std::vector<SketchGrid>& grids);

// Bins from the summed sketch: for each numeric feature up to max_bins bins
// whose edges are cell bounds at the quantiles k / max_bins of the counts
// (fewer where many values share a cell); categorical bins from `buckets`.
// InvalidArgument when `counts` does not have the grids' size or a count is
// negative or not finite (naming the feature), or max_bins is not in
// 2..256.
absl::StatusOr<FeatureBins> BinsFromSketch(const std::vector<SketchGrid>& grids,
                                           std::span<const double> counts,
                                           std::span<const uint32_t> buckets, uint32_t max_bins);

// The bin of every feature of each of `rows`, row after row (features()
// values per row).
std::vector<uint16_t> BinRows(const FeatureBins& bins, const data::DeclarationTable& table,
                              std::span<const int64_t> rows);

}  // namespace fedcustoms::trees
