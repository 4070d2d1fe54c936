#pragma once

#include <ATen/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>

#include <vector>

#include "absl/status/status.h"

namespace fedcustoms::privacy {

// Exact per-example gradients of Linear and Embedding layers from one forward
// and one backward pass over a batch, as DP-SGD needs them (each example's
// gradient clipped on its own before the sum).
//
// A model routes each layer through the tape during a forward pass (Linear(),
// Embedding()); the tape keeps each layer's input and output. Backward() then
// asks autograd for the gradient of the summed per-example losses with respect
// to those outputs only (no parameter gradient is formed), which gives the
// backpropagated error g_i of every example i at every layer. With the input
// a_i kept, the per-example gradients are:
//   Linear    dW_i = g_i a_iᵀ (an outer product), db_i = g_i, so
//             ||dW_i||² + ||db_i||² = ||g_i||² (||a_i||² + 1)
//   Embedding dE_i = g_i placed in row id_i, so ||dE_i||² = ||g_i||²
//   Conv2d    dW_i = G_i [out, in·kh·kw] = Σ_positions g_i,p u_i,pᵀ, u the
//             unfolded input patches (im2col), db_i = Σ_p g_i,p
// and a weighted sum Σ s_i dθ_i is one matrix product (Linear) or one
// index_add (Embedding), so their per-example gradients are never
// materialized; a convolution's G_i are (B·out·in·kh·kw floats: small for
// the X-ray CNN's 3x3 kernels).
// This is exact when each example's loss depends on its own row of every
// layer input only (true of our MLPs, dropout included, and of BatchNorm in
// its fixed-statistics use; not of BatchNorm with batch statistics) and each
// layer input is 2-D [B, features] (Linear), 1-D [B] (Embedding) or 4-D
// [B, C, H, W] (Conv2d, any kernel, stride, padding and dilation; groups 1).
//
// Not thread-safe; one tape per forward pass (Clear() between passes).
class PerExampleGradients {
 public:
  // layer(x) for x [B, in], recorded. Throws c10::Error when x is not 2-D.
  at::Tensor Linear(torch::nn::LinearImpl& layer, const at::Tensor& x);
  // layer(ids) for ids [B] int64, recorded. Throws c10::Error when ids is not
  // 1-D.
  at::Tensor Embedding(torch::nn::EmbeddingImpl& layer, const at::Tensor& ids);
  // layer(x) for x [B, C, H, W], recorded. Throws c10::Error when x is not
  // 4-D or the layer has groups or a padding mode other than zeros.
  at::Tensor Conv2d(torch::nn::Conv2dImpl& layer, const at::Tensor& x);

  // OK when every parameter of `module` that requires a gradient was used in
  // exactly one recorded layer of this pass, and nothing else was recorded:
  // a parameter outside the tape would escape clipping (and DP-SGD's
  // guarantee with it). The error names the parameter.
  absl::Status CheckCovers(const torch::nn::Module& module) const;

  // Computes the backpropagated errors of the recorded layers from
  // `per_example_losses` [B] (the loss of each example, with its graph
  // through the recorded layers). No parameter's .grad is touched.
  void Backward(const at::Tensor& per_example_losses);

  // ||∇θ loss_i||² over all recorded parameters, [B] float32 (after
  // Backward()).
  at::Tensor SquaredNorms() const;

  // Sets each recorded parameter's .grad to Σ_i scale_i ∇θ loss_i, scale [B]
  // (after Backward()). An example with scale 0 is left out entirely, even
  // when its gradient is not finite.
  void WriteWeightedSum(const at::Tensor& scale) const;

  // ∇θ loss_i for every example, [B, θ's shape], for `parameter` (a weight or
  // bias of a recorded layer; after Backward()). Materializes B copies of the
  // parameter: for tests and small layers. Throws c10::Error for a parameter
  // not recorded.
  at::Tensor PerExample(const at::Tensor& parameter) const;

  // Forgets the recorded pass.
  void Clear() { layers_.clear(); }

 private:
  struct Layer {
    enum class Kind { kLinear, kEmbedding, kConv2d } kind;
    at::Tensor weight;
    at::Tensor bias;         // undefined for an embedding or a layer without bias
    at::Tensor input;        // a_i [B, in] (detached), ids [B], or unfolded patches
                             // [B, in·kh·kw, positions] (Conv2d)
    at::Tensor output;       // with its graph, until Backward()
    at::Tensor error;        // g_i [B, out] (Conv2d: [B, out, positions]) after Backward()
    at::Tensor per_example;  // Conv2d only: G_i [B, out, in·kh·kw] after Backward()
  };
  std::vector<Layer> layers_;
};

}  // namespace fedcustoms::privacy
