#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace fedcustoms::secagg {

// Fixed-point encoding of weighted updates into the ring Z_{2^32}, in which
// secure aggregation adds masked vectors (4 bytes per parameter, as float32).
//
// Each node i encodes q_i = round(scale * w_i * clamp(Δ_i, -clip, clip)) mod 2^32
// (round to nearest, ties to even: deterministic), with its weight
// w_i = n_i / W, where n_i is its sample count and W the total the coordinator
// announces for the round (the sum of the training rows the selected nodes
// declared), so Σ w_i <= 1. The coordinator unmasks Σ q_i and decodes the
// weighted mean Σ w_i Δ_i / Σ w_i over the nodes that contributed.
//
// Overflow bound: |Σ_i scale * w_i * clamp(Δ_i)| <= scale * clip * Σ w_i, plus
// 1/2 per node from rounding. The codec refuses (Create fails) any scale and
// clip for which scale * clip * max_total_weight + max_nodes / 2 reaches 2^31,
// so the signed sum always reads back exactly.
//
// Quantization error bound: each node's rounding moves its term by at most
// 1/2, so the decoded mean differs from the exact mean of the clipped updates
// by at most max_nodes / (2 * scale * Σ w_i) per parameter. Clipping changes
// only coordinates beyond ±clip (counted by Encode for the node's log).
// Standardization statistics (a BatchNorm's running_mean and running_var:
// the numeric columns' mean and variance) move by their full size in a
// model's first round, from 0 and 1 to e.g. 9 for the log1p of a declared
// value, far beyond a clip that suits weight updates; clipped, they would take
// several rounds to arrive, and the model would train on mis-standardized
// inputs meanwhile. So a node divides these tensors' updates by
// kStatisticsDivisor before encoding, and the coordinator multiplies their
// decoded mean back: they pass the clip up to clip x 1024, with the
// quantization error 1024 times larger (still about 1e-6 of a unit). A power
// of two, so the scaling itself is exact.
inline constexpr double kStatisticsDivisor = 1024;

// True for tensors named "...running_mean" or "...running_var".
bool IsStandardizationStatistic(std::string_view tensor_name);

class FixedPointCodec {
 public:
  struct Options {
    double clip = 1.0;               // updates clamped to [-clip, clip]
    double scale = double(1 << 28);  // fixed-point units per 1.0
    double max_total_weight = 1.0;   // bound on Σ w_i (1 with w_i = n_i / W)
    uint32_t max_nodes = 1000;
  };

  // InvalidArgument naming the option and the bound it breaks.
  static absl::StatusOr<FixedPointCodec> Create(const Options& options);

  // The largest power-of-two scale Create accepts with the other options;
  // 0 if even scale 1 could overflow.
  static double LargestSafeScale(const Options& options);

  // out[i] = round(scale * weight * clamp(values[i])) mod 2^32. `weight` must
  // lie in (0, max_total_weight]; `out` must be as long as `values`. Returns
  // how many values were clipped.
  absl::StatusOr<uint64_t> Encode(std::span<const float> values, double weight,
                                  std::span<uint32_t> out) const;

  // The weighted mean from the unmasked sum: out[i] = int32(sum[i]) /
  // (scale * total_weight). `total_weight` is Σ w_i of the contributors.
  absl::Status DecodeMean(std::span<const uint32_t> sum, double total_weight,
                          std::span<float> out) const;

  // The worst-case error of DecodeMean for `total_weight` (see above).
  double ErrorBound(double total_weight) const;

  const Options& options() const { return options_; }

 private:
  explicit FixedPointCodec(const Options& options) : options_(options) {}
  Options options_;
};

}  // namespace fedcustoms::secagg
