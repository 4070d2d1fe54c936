#pragma once

#include <ATen/Tensor.h>
#include <ATen/core/Generator.h>

#include <cstdint>
#include <vector>

#include "common/privacy/per_example_gradients.h"
#include "common/privacy/secure_gaussian.h"

namespace fedcustoms::privacy {

// What one DP-SGD step did to the batch's gradients.
struct ClippingStats {
  // Examples in the batch.
  int64_t examples = 0;
  // Examples whose gradient norm exceeded the clipping bound.
  int64_t clipped = 0;
  // Sum of the per-example gradient norms before clipping.
  double norm_sum = 0;
  // Examples left out because their loss or gradient was not finite.
  int64_t excluded = 0;
};

// The sampled Gaussian mechanism on one batch, as DP-SGD applies it: sets the
// .grad of every tensor in `parameters` to
//
//   ( Σ_i g_i · min(1, C / (||g_i|| + 1e-6))  +  N(0, σ²C² I) ) / expected_batch
//
// where g_i is example i's gradient over all of `parameters` (from `tape`,
// after its Backward()), C = clip_norm and σ = noise_multiplier. Each clipped
// g_i has norm at most C, so adding or removing one example moves the sum by
// at most C in L2: the sensitivity the RDP accountant assumes. Dividing by the
// *expected* batch size q·n (not the realized one, which depends on the data
// through Poisson sampling) keeps the division data-independent, as in
// Abadi et al. 2016 and Opacus.
//
// An example whose gradient norm is not finite (or whose entry in
// `excluded` is true: its loss was not finite) contributes nothing, so a
// model crafted to overflow on one record cannot tell, by a failed round,
// whether that record was drawn: the step goes on, the same as without it.
//
// `tape` is null for an empty batch (Poisson sampling can draw none): the
// gradient is then the noise alone. Otherwise `tape` must cover exactly
// `parameters` (PerExampleGradients::CheckCovers). The noise is drawn from
// `noise` in the order of `parameters`.
ClippingStats NoisyClippedSum(const std::vector<at::Tensor>& parameters,
                              const PerExampleGradients* tape, double clip_norm,
                              double noise_multiplier, double expected_batch, SecureGaussian& noise,
                              const at::Tensor& excluded = at::Tensor());

}  // namespace fedcustoms::privacy
