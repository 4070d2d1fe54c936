#include "common/privacy/per_example_gradients.h"

#include <torch/torch.h>

#include <map>
#include <string>

#include "absl/strings/str_cat.h"

namespace fedcustoms::privacy {

at::Tensor PerExampleGradients::Linear(torch::nn::LinearImpl& layer, const at::Tensor& x) {
  TORCH_CHECK(x.dim() == 2, "PerExampleGradients::Linear: input must be [B, in], got ", x.sizes());
  at::Tensor y = layer.forward(x);
  layers_.push_back({Layer::Kind::kLinear, layer.weight, layer.bias, x.detach(), y, {}, {}});
  return y;
}

at::Tensor PerExampleGradients::Embedding(torch::nn::EmbeddingImpl& layer, const at::Tensor& ids) {
  TORCH_CHECK(ids.dim() == 1, "PerExampleGradients::Embedding: ids must be [B], got ", ids.sizes());
  at::Tensor y = layer.forward(ids);
  layers_.push_back({Layer::Kind::kEmbedding, layer.weight, {}, ids, y, {}, {}});
  return y;
}

at::Tensor PerExampleGradients::Conv2d(torch::nn::Conv2dImpl& layer, const at::Tensor& x) {
  TORCH_CHECK(x.dim() == 4, "PerExampleGradients::Conv2d: input must be [B, C, H, W], got ",
              x.sizes());
  const auto& o = layer.options;
  TORCH_CHECK(o.groups() == 1 && c10::get_if<torch::enumtype::kZeros>(&o.padding_mode()) != nullptr,
              "PerExampleGradients::Conv2d: only groups 1 and zero padding");
  const auto* padding = c10::get_if<torch::ExpandingArray<2>>(&o.padding());
  TORCH_CHECK(padding != nullptr, "PerExampleGradients::Conv2d: explicit padding only");
  at::Tensor y = layer.forward(x);
  namespace F = torch::nn::functional;
  // The patches each output position saw: [B, in·kh·kw, positions].
  at::Tensor patches = F::unfold(x.detach(), F::UnfoldFuncOptions(o.kernel_size())
                                                 .dilation(o.dilation())
                                                 .padding(*padding)
                                                 .stride(o.stride()));
  layers_.push_back({Layer::Kind::kConv2d, layer.weight, layer.bias, patches, y, {}, {}});
  return y;
}

absl::Status PerExampleGradients::CheckCovers(const torch::nn::Module& module) const {
  std::map<const c10::TensorImpl*, int> uses;
  for (const Layer& layer : layers_) {
    ++uses[layer.weight.unsafeGetTensorImpl()];
    if (layer.bias.defined()) ++uses[layer.bias.unsafeGetTensorImpl()];
  }
  size_t covered = 0;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    if (!item.value().requires_grad()) continue;
    const auto it = uses.find(item.value().unsafeGetTensorImpl());
    const int count = it == uses.end() ? 0 : it->second;
    if (count != 1) {
      return absl::FailedPreconditionError(
          absl::StrCat("parameter ", item.key(), " was used in ", count,
                       " recorded layers of the pass, not 1: its per-example gradient would not "
                       "be clipped exactly"));
    }
    ++covered;
  }
  if (covered != uses.size()) {
    return absl::FailedPreconditionError(absl::StrCat("the pass recorded ", uses.size(),
                                                      " parameters, the module has ", covered,
                                                      " that require a gradient"));
  }
  return absl::OkStatus();
}

void PerExampleGradients::Backward(const at::Tensor& per_example_losses) {
  TORCH_CHECK(per_example_losses.dim() == 1, "PerExampleGradients::Backward: losses must be [B]");
  std::vector<at::Tensor> outputs;
  outputs.reserve(layers_.size());
  for (const Layer& layer : layers_) outputs.push_back(layer.output);
  // Gradients with respect to the layer outputs only: autograd forms no
  // parameter gradient, which would be the unclipped batch sum.
  std::vector<at::Tensor> errors =
      torch::autograd::grad({per_example_losses.sum()}, outputs, /*grad_outputs=*/{},
                            /*retain_graph=*/false, /*create_graph=*/false, /*allow_unused=*/true);
  for (size_t i = 0; i < layers_.size(); ++i) {
    Layer& layer = layers_[i];
    layer.error = errors[i].defined() ? errors[i] : torch::zeros_like(layer.output);
    layer.output = at::Tensor();  // frees the graph
    if (layer.kind == Layer::Kind::kConv2d) {
      layer.error = layer.error.flatten(2);  // [B, out, positions]
      layer.per_example = torch::bmm(layer.error, layer.input.transpose(1, 2));
    }
  }
}

at::Tensor PerExampleGradients::SquaredNorms() const {
  TORCH_CHECK(!layers_.empty(), "PerExampleGradients: no recorded layer");
  at::Tensor total;
  for (const Layer& layer : layers_) {
    TORCH_CHECK(layer.error.defined(), "PerExampleGradients: Backward() first");
    at::Tensor norm2;
    if (layer.kind == Layer::Kind::kConv2d) {
      norm2 = layer.per_example.pow(2).sum({1, 2});
      if (layer.bias.defined()) norm2 = norm2 + layer.error.sum(2).pow(2).sum(1);
      total = total.defined() ? total + norm2 : norm2;
      continue;
    }
    at::Tensor g2 = layer.error.pow(2).sum(1);
    if (layer.kind == Layer::Kind::kLinear) {
      norm2 = g2 * layer.input.pow(2).sum(1);
      if (layer.bias.defined()) norm2 = norm2 + g2;
    } else {
      norm2 = g2;
    }
    total = total.defined() ? total + norm2 : norm2;
  }
  return total;
}

void PerExampleGradients::WriteWeightedSum(const at::Tensor& scale) const {
  torch::NoGradGuard no_grad;
  for (const Layer& layer : layers_) {
    TORCH_CHECK(layer.error.defined(), "PerExampleGradients: Backward() first");
    // An example with scale 0 is left out entirely, even if its error or
    // input is not finite (0 x inf would be NaN).
    if (layer.kind == Layer::Kind::kConv2d) {
      const at::Tensor keep3 = (scale != 0).view({-1, 1, 1});
      const at::Tensor s3 = scale.view({-1, 1, 1});
      layer.weight.mutable_grad() =
          torch::where(keep3, layer.per_example * s3, torch::zeros_like(layer.per_example))
              .sum(0)
              .view(layer.weight.sizes())
              .clone();  // its own storage: the optimizer detaches grads in place
      if (layer.bias.defined()) {
        const at::Tensor bias_i = layer.error.sum(2);
        layer.bias.mutable_grad() =
            torch::where(keep3.squeeze(2), bias_i * s3.squeeze(2), torch::zeros_like(bias_i))
                .sum(0);
      }
      continue;
    }
    const at::Tensor keep = (scale != 0).unsqueeze(1);
    const at::Tensor weighted =
        torch::where(keep, layer.error * scale.unsqueeze(1), torch::zeros_like(layer.error));
    at::Tensor weight_grad;
    if (layer.kind == Layer::Kind::kLinear) {
      weight_grad =
          weighted.t().mm(torch::where(keep, layer.input, torch::zeros_like(layer.input)));
      if (layer.bias.defined()) layer.bias.mutable_grad() = weighted.sum(0);
    } else {
      weight_grad = torch::zeros_like(layer.weight).index_add_(0, layer.input, weighted);
    }
    layer.weight.mutable_grad() = weight_grad;
  }
}

at::Tensor PerExampleGradients::PerExample(const at::Tensor& parameter) const {
  for (const Layer& layer : layers_) {
    TORCH_CHECK(layer.error.defined(), "PerExampleGradients: Backward() first");
    const bool is_weight = parameter.is_same(layer.weight);
    const bool is_bias = layer.bias.defined() && parameter.is_same(layer.bias);
    if (!is_weight && !is_bias) continue;
    if (layer.kind == Layer::Kind::kConv2d) {
      if (is_bias) return layer.error.sum(2);
      std::vector<int64_t> shape = {layer.per_example.size(0)};
      for (int64_t d : layer.weight.sizes()) shape.push_back(d);
      return layer.per_example.reshape(shape);
    }
    if (is_bias) return layer.error.clone();
    if (layer.kind == Layer::Kind::kLinear) {
      return torch::einsum("bo,bi->boi", {layer.error, layer.input});
    }
    const int64_t batch = layer.error.size(0);
    at::Tensor out =
        torch::zeros({batch, layer.weight.size(0), layer.weight.size(1)}, layer.error.options());
    out.index_put_({torch::arange(batch), layer.input}, layer.error);
    return out;
  }
  TORCH_CHECK(false, "PerExampleGradients::PerExample: the parameter was not recorded");
}

}  // namespace fedcustoms::privacy
