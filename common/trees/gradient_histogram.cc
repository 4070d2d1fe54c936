#include "common/trees/gradient_histogram.h"

namespace fedcustoms::trees {

GradientHistogram::GradientHistogram(const FeatureBins& bins, size_t open_nodes)
    : bins_(bins),
      offsets_(bins.Offsets()),
      total_bins_(bins.total_bins()),
      open_nodes_(open_nodes),
      values_(open_nodes * total_bins_ * 3, 0.0) {}

void GradientHistogram::Add(std::span<const uint16_t> binned_rows,
                            std::span<const int32_t> row_slot, std::span<const double> gradients,
                            std::span<const double> hessians) {
  const size_t features = bins_.features();
  for (size_t i = 0; i < row_slot.size(); ++i) {
    if (row_slot[i] < 0) continue;
    double* node = &values_[static_cast<size_t>(row_slot[i]) * total_bins_ * 3];
    const uint16_t* row = &binned_rows[i * features];
    for (size_t f = 0; f < features; ++f) {
      double* cell = node + (offsets_[f] + row[f]) * 3;
      cell[0] += gradients[i];
      cell[1] += hessians[i];
      cell[2] += 1;
    }
  }
}

std::span<const double> GradientHistogram::Node(size_t slot) const {
  return std::span<const double>(values_).subspan(slot * total_bins_ * 3, total_bins_ * 3);
}

}  // namespace fedcustoms::trees
