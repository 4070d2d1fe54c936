#include "common/privacy/noisy_clipped_sum.h"

#include <torch/torch.h>

namespace fedcustoms::privacy {

ClippingStats NoisyClippedSum(const std::vector<at::Tensor>& parameters,
                              const PerExampleGradients* tape, double clip_norm,
                              double noise_multiplier, double expected_batch, SecureGaussian& noise,
                              const at::Tensor& excluded) {
  TORCH_CHECK(clip_norm > 0 && noise_multiplier >= 0 && expected_batch > 0,
              "NoisyClippedSum: clip_norm and expected_batch must be > 0, noise_multiplier >= 0");
  torch::NoGradGuard no_grad;
  ClippingStats stats;
  if (tape != nullptr) {
    const at::Tensor norms = tape->SquaredNorms().to(torch::kFloat64).sqrt();
    at::Tensor keep = torch::isfinite(norms);
    if (excluded.defined()) keep = keep & ~excluded;
    // NaN never reaches the scale: clamp_max would let it through.
    const at::Tensor scale =
        torch::where(keep, (clip_norm / (norms + 1e-6)).clamp_max(1.0), torch::zeros_like(norms))
            .to(torch::kFloat32);
    tape->WriteWeightedSum(scale);
    stats.examples = norms.size(0);
    stats.excluded = (~keep).sum().item<int64_t>();
    stats.clipped = (keep & (norms > clip_norm)).sum().item<int64_t>();
    stats.norm_sum = torch::where(keep, norms, torch::zeros_like(norms)).sum().item<double>();
  }
  const double stddev = noise_multiplier * clip_norm;
  // One draw for every coordinate: the per-call cost of a draw per tensor
  // would be most of the noise's price on a small model.
  at::Tensor draw;
  if (stddev > 0) {
    int64_t total = 0;
    for (const at::Tensor& p : parameters) total += p.numel();
    draw = torch::empty({total}, torch::kFloat32);
    noise.Fill(draw, stddev);
  }
  int64_t offset = 0;
  for (const at::Tensor& p : parameters) {
    at::Tensor grad = p.mutable_grad();
    if (tape == nullptr || !grad.defined()) {
      p.mutable_grad() = torch::zeros_like(p);
      grad = p.mutable_grad();
    }
    if (stddev > 0) grad.add_(draw.slice(0, offset, offset + p.numel()).view(p.sizes()));
    offset += p.numel();
    grad.div_(expected_batch);
  }
  return stats;
}

}  // namespace fedcustoms::privacy
