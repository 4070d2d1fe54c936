#include "analyst/explain/integrated_gradients.h"

#include <torch/torch.h>

#include <algorithm>
#include <limits>

namespace fedcustoms::analyst {
namespace {

// Intervals of the coarse pass that places the grid (see PathGrid).
constexpr int64_t kGridProbes = 16;

// Points along the path where `model`'s logit is evaluated: [R, n, W] for
// positions `t` [R, n] of each row's path from `baseline` to `rows`.
torch::Tensor PathPoints(const torch::Tensor& rows, const torch::Tensor& baseline,
                         const torch::Tensor& t) {
  const torch::Tensor delta = rows - baseline;
  return baseline.view({1, 1, -1}) + t.unsqueeze(2) * delta.unsqueeze(1);
}

torch::Tensor Logits(models::RiskMlp& model, const torch::Tensor& points) {
  const int64_t r = points.size(0), n = points.size(1), w = points.size(2);
  return model->LogitsOfEncoded(points.reshape({r * n, w})).view({r, n});
}

// Grid positions t [R, steps + 1] from 0 to 1 placed so that each interval
// holds an equal share of 1/2 uniform length plus 1/2 of the row's change of
// P along the path (measured at kGridProbes + 1 probes, linear between them).
// P = sigmoid(z) of a trained model often changes within a small stretch of
// the path; the intervals there become short, which is where the quadrature's
// error comes from (below).
torch::Tensor PathGrid(models::RiskMlp& model, const torch::Tensor& rows,
                       const torch::Tensor& baseline, int64_t steps) {
  torch::NoGradGuard no_grad;
  const int64_t r = rows.size(0);
  const auto f64 = rows.options().dtype(torch::kFloat64);
  const torch::Tensor probes = torch::linspace(0, 1, kGridProbes + 1, f64).expand({r, -1});
  const torch::Tensor p = torch::sigmoid(
      Logits(model, PathPoints(rows, baseline, probes.to(torch::kFloat32))).to(torch::kFloat64));
  const torch::Tensor change =
      torch::cat({torch::zeros({r, 1}, f64),
                  (p.narrow(1, 1, kGridProbes) - p.narrow(1, 0, kGridProbes)).abs().cumsum(1)},
                 1);
  const torch::Tensor total = change.narrow(1, kGridProbes, 1).clamp_min(1e-300);
  const torch::Tensor mass =
      0.5 * probes + 0.5 * torch::where(total > 1e-12, change / total, probes);  // [R, probes]
  // Invert the piecewise-linear mass at equal steps.
  const torch::Tensor targets = torch::linspace(0, 1, steps + 1, f64).expand({r, -1}).contiguous();
  const torch::Tensor upper =
      torch::searchsorted(mass.contiguous(), targets).clamp(1, kGridProbes);  // [R, steps + 1]
  const torch::Tensor m0 = mass.gather(1, upper - 1), m1 = mass.gather(1, upper);
  const torch::Tensor t0 = probes.gather(1, upper - 1), t1 = probes.gather(1, upper);
  const torch::Tensor span = (m1 - m0).clamp_min(1e-300);
  torch::Tensor t = t0 + (targets - m0) / span * (t1 - t0);
  t.select(1, 0).fill_(0);
  t.select(1, steps).fill_(1);
  // The points are evaluated in float32: widths must be those of the points
  // actually used, or the contributions stop telescoping.
  return t.to(torch::kFloat32).to(torch::kFloat64);
}

// Integrated gradients of `rows` [R, W] on `steps` intervals of PathGrid.
//
// The model is a ReLU network, so along the straight path x(t) = b + t (x - b)
// the logit z(t) is piecewise linear and its gradient g(t) = dz/dx piecewise
// constant; only P = sigmoid(z) curves, and on a well-trained model it can
// jump from 0 to 1 within a tiny stretch of t, which a plain Riemann or
// trapezoid sum needs tens of thousands of steps to follow. So each interval
// [t_i, t_i+1] uses the gradient of z at its midpoint and the exact mean of
// sigmoid' over it, (sigmoid(z_i+1) - sigmoid(z_i)) / (z_i+1 - z_i): where no
// ReLU switches inside the interval that is the exact integral, and the
// contributions then telescope to P(x) - P(b). Only intervals holding a
// switch add error, at most about their own change of P, which the grid
// keeps small.
torch::Tensor Attribute(models::RiskMlp& model, const torch::Tensor& rows,
                        const torch::Tensor& baseline, int64_t steps) {
  const int64_t r = rows.size(0), w = rows.size(1);
  const torch::Tensor t = PathGrid(model, rows, baseline, steps);  // [R, steps + 1] float64
  torch::Tensor z;  // [R, steps + 1] logits at the interval ends
  {
    torch::NoGradGuard no_grad;
    z = Logits(model, PathPoints(rows, baseline, t.to(torch::kFloat32))).to(torch::kFloat64);
  }
  const torch::Tensor t0 = t.narrow(1, 0, steps), t1 = t.narrow(1, 1, steps);
  torch::Tensor mid = PathPoints(rows, baseline, ((t0 + t1) / 2).to(torch::kFloat32));
  mid.requires_grad_(true);
  const torch::Tensor z_mid = Logits(model, mid);
  const torch::Tensor gradient = torch::autograd::grad({z_mid.sum()}, {mid})[0].view({r, steps, w});
  const torch::Tensor z0 = z.narrow(1, 0, steps), z1 = z.narrow(1, 1, steps);
  const torch::Tensor dz = z1 - z0;
  const torch::Tensor s_mid = torch::sigmoid((z0 + z1) / 2);
  const torch::Tensor mean_slope = torch::where(
      dz.abs() > 1e-9, (torch::sigmoid(z1) - torch::sigmoid(z0)) / dz, s_mid * (1 - s_mid));
  // The slopes need float64 (sigmoid differences near 1); the sum over the
  // path does not: one batched product in float32, as the gradients are.
  const torch::Tensor weights = (mean_slope * (t1 - t0)).to(torch::kFloat32);  // [R, steps]
  return torch::bmm(weights.unsqueeze(1), gradient).squeeze(1) * (rows - baseline);
}

}  // namespace

IntegratedGradientsResult ComputeIntegratedGradients(models::RiskMlp& model,
                                                     const torch::Tensor& encoded,
                                                     const torch::Tensor& baseline,
                                                     const IntegratedGradientsOptions& options) {
  TORCH_CHECK(encoded.dim() == 2 && baseline.dim() == 1 && encoded.size(1) == baseline.size(0),
              "integrated gradients: encoded rows [B, W] and a baseline [W] are needed");
  TORCH_CHECK(options.steps >= 1 && options.max_steps >= options.steps && options.tolerance >= 0,
              "integrated gradients: need steps >= 1, max_steps >= steps and tolerance >= 0");
  model->eval();
  IntegratedGradientsResult result;
  const torch::Tensor rows = encoded.detach();
  const torch::Tensor base = baseline.detach();
  {
    torch::NoGradGuard no_grad;
    result.scores = torch::sigmoid(model->LogitsOfEncoded(rows));
    result.baseline_score =
        torch::sigmoid(model->LogitsOfEncoded(base.unsqueeze(0))).item<double>();
  }
  const torch::Tensor expected = result.scores - result.baseline_score;
  // Points of the path held at once: bounds memory to about kMaxPathPoints x
  // W floats (x3: path, gradient, products) whatever the number of rows.
  constexpr int64_t kMaxPathPoints = int64_t{1} << 18;
  // Attributions of the rows `which` with `steps`, chunk by chunk; a row's
  // result replaces the one it has only where its gap is smaller.
  auto attribute = [&](const torch::Tensor& which, int64_t steps) {
    const int64_t chunk = std::max<int64_t>(1, kMaxPathPoints / (steps + 1));
    for (int64_t start = 0; start < which.numel(); start += chunk) {
      const torch::Tensor some = which.narrow(0, start, std::min(chunk, which.numel() - start));
      const torch::Tensor again =
          Attribute(model, rows.index_select(0, some), base, steps).detach();
      const torch::Tensor gap = (again.sum(1) - expected.index_select(0, some)).abs();
      const torch::Tensor better = gap < result.completeness_gap.index_select(0, some);
      result.attributions.index_copy_(
          0, some,
          torch::where(better.unsqueeze(1), again, result.attributions.index_select(0, some)));
      result.completeness_gap.index_copy_(
          0, some, torch::where(better, gap, result.completeness_gap.index_select(0, some)));
    }
  };
  result.attributions = torch::zeros_like(rows);
  result.completeness_gap = torch::full_like(result.scores, std::numeric_limits<float>::infinity());
  attribute(torch::arange(rows.size(0)), options.steps);
  for (int64_t steps = options.steps * 4; steps <= options.max_steps; steps *= 4) {
    const torch::Tensor coarse = (result.completeness_gap > options.tolerance).nonzero().view(-1);
    if (coarse.numel() == 0) break;
    attribute(coarse, steps);
  }
  return result;
}

}  // namespace fedcustoms::analyst
