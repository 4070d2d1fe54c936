#include "common/trees/feature_bins.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace fedcustoms::trees {

uint32_t FeatureBins::bins(size_t feature) const {
  if (feature < numeric_edges.size()) {
    return static_cast<uint32_t>(numeric_edges[feature].size() + 1);
  }
  return categorical_bins[feature - numeric_edges.size()];
}

std::vector<uint32_t> FeatureBins::Offsets() const {
  std::vector<uint32_t> offsets(features());
  uint32_t offset = 0;
  for (size_t f = 0; f < features(); ++f) {
    offsets[f] = offset;
    offset += bins(f);
  }
  return offsets;
}

uint32_t FeatureBins::total_bins() const {
  uint32_t total = 0;
  for (size_t f = 0; f < features(); ++f) total += bins(f);
  return total;
}

std::vector<SketchGrid> GridsFromMoments(std::span<const double> means,
                                         std::span<const double> stddevs, uint32_t cells) {
  std::vector<SketchGrid> grids;
  for (size_t j = 0; j < means.size(); ++j) {
    const double spread = stddevs[j] > 0 && std::isfinite(stddevs[j]) ? 6 * stddevs[j] : 1.0;
    const double centre = std::isfinite(means[j]) ? means[j] : 0.0;
    grids.push_back({centre - spread, centre + spread, cells});
  }
  return grids;
}

std::vector<double> SketchCounts(const data::DeclarationTable& table, std::span<const int64_t> rows,
                                 const std::vector<SketchGrid>& grids) {
  size_t total = 0;
  for (const SketchGrid& g : grids) total += g.cells;
  std::vector<double> counts(total, 0.0);
  const size_t width = table.numeric_width();
  size_t offset = 0;
  for (size_t j = 0; j < grids.size() && j < width; ++j) {
    const SketchGrid& g = grids[j];
    const double scale = g.cells / (g.high - g.low);
    for (int64_t row : rows) {
      const double v = table.numeric[static_cast<size_t>(row) * width + j];
      const double cell = std::floor((v - g.low) * scale);
      const auto c = static_cast<size_t>(std::clamp(cell, 0.0, static_cast<double>(g.cells - 1)));
      counts[offset + c] += 1;
    }
    offset += g.cells;
  }
  return counts;
}

absl::StatusOr<FeatureBins> BinsFromSketch(const std::vector<SketchGrid>& grids,
                                           std::span<const double> counts,
                                           std::span<const uint32_t> buckets, uint32_t max_bins) {
  if (max_bins < 2 || max_bins > 256) {
    return absl::InvalidArgumentError(absl::StrCat("max_bins ", max_bins, " is not in 2..256"));
  }
  size_t total = 0;
  for (const SketchGrid& g : grids) total += g.cells;
  if (counts.size() != total) {
    return absl::InvalidArgumentError(
        absl::StrCat("the sketch has ", counts.size(), " counts; its grids need ", total));
  }
  FeatureBins bins;
  size_t offset = 0;
  for (size_t j = 0; j < grids.size(); ++j) {
    const SketchGrid& g = grids[j];
    double n = 0;
    for (uint32_t c = 0; c < g.cells; ++c) {
      const double v = counts[offset + c];
      if (!std::isfinite(v) || v < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("the sketch of numeric feature ", j, " has count ", v, " in cell ", c));
      }
      n += v;
    }
    // Edge k goes at the upper bound of the cell where the running count
    // first reaches k / max_bins of the total; equal edges merge.
    std::vector<float> edges;
    double running = 0;
    uint32_t next = 1;
    const double width = (g.high - g.low) / g.cells;
    for (uint32_t c = 0; c + 1 < g.cells && next < max_bins && n > 0; ++c) {
      running += counts[offset + c];
      if (running >= n * next / max_bins) {
        edges.push_back(static_cast<float>(g.low + (c + 1) * width));
        while (next < max_bins && running >= n * next / max_bins) ++next;
      }
    }
    edges.erase(std::unique(edges.begin(), edges.end()), edges.end());
    bins.numeric_edges.push_back(std::move(edges));
    offset += g.cells;
  }
  for (uint32_t b : buckets)
    bins.categorical_bins.push_back(std::clamp(b, 1u, kMaxCategoricalBins));
  return bins;
}

std::vector<uint16_t> BinRows(const FeatureBins& bins, const data::DeclarationTable& table,
                              std::span<const int64_t> rows) {
  const size_t features = bins.features();
  const size_t numeric = table.numeric_width();
  const size_t categorical = table.categorical_width();
  std::vector<uint16_t> out(rows.size() * features);
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto row = static_cast<size_t>(rows[i]);
    uint16_t* dst = &out[i * features];
    for (size_t j = 0; j < bins.numeric_width(); ++j) {
      const std::vector<float>& edges = bins.numeric_edges[j];
      const float v = table.numeric[row * numeric + j];
      dst[j] =
          static_cast<uint16_t>(std::lower_bound(edges.begin(), edges.end(), v) - edges.begin());
    }
    for (size_t j = 0; j < bins.categorical_bins.size(); ++j) {
      const int64_t bucket = table.categorical[row * categorical + j];
      dst[bins.numeric_width() + j] =
          static_cast<uint16_t>(static_cast<uint64_t>(bucket) % bins.categorical_bins[j]);
    }
  }
  return out;
}

}  // namespace fedcustoms::trees
