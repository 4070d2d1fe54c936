#pragma once

#include <torch/types.h>

#include "common/models/risk_mlp.h"

namespace fedcustoms::analyst {

// Integrated gradients (Sundararajan, Taly and Yan, ICML 2017) of the risk
// probability P(x) = sigmoid(model.LogitsOfEncoded(x)) in the model's encoded
// input space, from `baseline` to each row of `encoded`:
//   a_k(x) = (x_k - b_k) * integral over t in [0, 1] of dP/dx_k(b + t (x - b)).
// Completeness: sum_k a_k(x) = P(x) - P(b) exactly for the integral. The
// integral is computed on `steps` intervals with the logit's gradient at each
// midpoint and the exact mean of sigmoid' over the interval (see the .cc:
// exact where no ReLU switches inside an interval), so the sum misses only by
// the error of intervals holding a switch, measured per row
// (completeness_gap). Rows whose gap exceeds `tolerance` are recomputed with
// 4x the steps, up to `max_steps`; the gap reported is the one reached.
struct IntegratedGradientsResult {
  torch::Tensor attributions;      // [B, W] float32, W = encoded width
  torch::Tensor scores;            // [B] P(x)
  double baseline_score = 0;       // P(b)
  torch::Tensor completeness_gap;  // [B] |sum_k a_k - (P(x) - P(b))|
};

struct IntegratedGradientsOptions {
  int64_t steps = 64;
  int64_t max_steps = 16384;
  double tolerance = 1e-3;
};

// `encoded` is [B, W] and `baseline` [W] (model.Encode() rows and e.g. their
// mean). Runs the model in eval mode and leaves it so; thread-compatible (one
// model per thread). Memory O(B x steps x W) for the first pass (callers batch
// B), then at most 2^18 path points at a time while refining. Throws
// c10::Error on shape mismatches, or unless steps >= 1, max_steps >= steps and
// tolerance >= 0.
IntegratedGradientsResult ComputeIntegratedGradients(
    models::RiskMlp& model, const torch::Tensor& encoded, const torch::Tensor& baseline,
    const IntegratedGradientsOptions& options = {});

}  // namespace fedcustoms::analyst
