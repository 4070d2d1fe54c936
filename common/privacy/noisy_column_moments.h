#pragma once

#include <ATen/Tensor.h>

#include <cstdint>

#include "common/privacy/secure_gaussian.h"

namespace fedcustoms::privacy {

// The per-column mean and variance of numeric training columns, privatized
// with the Gaussian mechanism, for the standardization a model trained with
// DP-SGD uses (and sends back for the federation's average).
struct ColumnMoments {
  at::Tensor mean;      // [F] float32
  at::Tensor variance;  // [F] float32, at least kMinScaledVariance x half²
};

// The variance is floored at this share of the squared half-range: noise
// can make the estimate small or negative on few rows.
inline constexpr double kMinScaledVariance = 1e-3;

// Each value of `numeric` [n, F] is clipped to [low, high] and scaled to
// u = (x − mid) / half ∈ [−1, 1] (mid, half: the range's centre and
// half-width); the query is the 2F sums of u and u² over the rows. Adding or
// removing one row moves it by at most Δ = sqrt(2F) in L2, so N(0, (σΔ)²)
// on each sum is the Gaussian mechanism with noise multiplier σ = `noise_multiplier`:
// RDP α / (2σ²), a step of sampling rate 1 for the accountant. n itself is
// taken as public (it sets q and the aggregation weight, as in Opacus).
// mean = mid + half · S1/n, variance = half² · max(S2/n − (S1/n)², floor),
// S1/n clamped to [−1, 1]. NaN counts as the centre, +inf as high, −inf as
// low. The sums are rounded to float32 and noised in float32, as the
// gradients are (docs/privacy.md, "Floating-point noise"). Requires n ≥ 1,
// F ≥ 1, low < high, σ > 0.
ColumnMoments NoisyColumnMoments(const at::Tensor& numeric, double low, double high,
                                 double noise_multiplier, SecureGaussian& noise);

}  // namespace fedcustoms::privacy
