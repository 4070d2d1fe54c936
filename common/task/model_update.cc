#include "common/task/model_update.h"

#include <torch/torch.h>

#include <utility>

namespace fedcustoms::task {

tensor::NamedTensors UpdateFrom(tensor::NamedTensors&& local, const tensor::NamedTensors& global) {
  torch::NoGradGuard no_grad;
  tensor::NamedTensors update;
  for (size_t i = 0; i < local.size() && i < global.size(); ++i) {
    if (!tensor::IsAggregatable(global[i].second)) continue;
    torch::Tensor w = local[i].second.detach();
    if (w.scalar_type() == torch::kFloat32 && w.is_contiguous()) {
      w.sub_(global[i].second);  // in the local tensor's own memory
    } else {
      w = (w.to(torch::kFloat32) - global[i].second.to(torch::kFloat32)).contiguous();
    }
    update.emplace_back(std::move(local[i].first), std::move(w));
    local[i].second = torch::Tensor();
  }
  return update;
}

}  // namespace fedcustoms::task
