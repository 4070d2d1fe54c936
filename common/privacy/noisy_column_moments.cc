#include "common/privacy/noisy_column_moments.h"

#include <torch/torch.h>

#include <cmath>

namespace fedcustoms::privacy {

ColumnMoments NoisyColumnMoments(const at::Tensor& numeric, double low, double high,
                                 double noise_multiplier, SecureGaussian& noise) {
  TORCH_CHECK(numeric.dim() == 2 && numeric.size(0) >= 1 && numeric.size(1) >= 1,
              "NoisyColumnMoments: numeric must be [n >= 1, F >= 1], got ", numeric.sizes());
  TORCH_CHECK(std::isfinite(low) && std::isfinite(high) && low < high && noise_multiplier > 0,
              "NoisyColumnMoments: need low < high and noise_multiplier > 0");
  torch::NoGradGuard no_grad;
  const double mid = (low + high) / 2, half = (high - low) / 2;
  const int64_t n = numeric.size(0), f = numeric.size(1);
  // NaN never reaches the sums: a non-finite value counts as the centre.
  const at::Tensor x = torch::nan_to_num(numeric.to(torch::kFloat64), mid, high, low);
  const at::Tensor u = (x.clamp(low, high) - mid) / half;
  const double sensitivity = std::sqrt(2.0 * static_cast<double>(f));
  at::Tensor draw = torch::empty({2 * f}, torch::kFloat32);
  noise.Fill(draw, noise_multiplier * sensitivity);
  // The sums are rounded to float32 before the float32 noise is added in
  // float32, as DP-SGD's gradients are: an exact float64 sum plus float32
  // noise would keep the sum's low bits below the noise's grid in the clear.
  const at::Tensor noisy =
      (torch::cat({u.sum(0), u.pow(2).sum(0)}).to(torch::kFloat32) + draw).to(torch::kFloat64);
  const at::Tensor m1 = (noisy.narrow(0, 0, f) / static_cast<double>(n)).clamp(-1, 1);
  const at::Tensor m2 = noisy.narrow(0, f, f) / static_cast<double>(n);
  ColumnMoments out;
  out.mean = (mid + half * m1).to(torch::kFloat32);
  out.variance = (half * half * (m2 - m1 * m1).clamp_min(kMinScaledVariance)).to(torch::kFloat32);
  return out;
}

}  // namespace fedcustoms::privacy
