#include "common/training/local_training_loop.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"

namespace fedcustoms::training {

absl::Status RunLocalEpochs(torch::nn::Module& module, int64_t n, const v1::TrainingConfig& config,
                            int64_t min_batch,
                            const std::function<at::Tensor(const at::Tensor& index)>& batch_loss,
                            TrainResult* result) {
  const v1::TrainingConfig c = WithDefaults(config);
  const int64_t batch_size = std::max<int64_t>(c.batch_size(), min_batch);
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  if (c.optimizer() == "adam") {
    optimizer = std::make_unique<torch::optim::Adam>(module.parameters(),
                                                     torch::optim::AdamOptions(c.learning_rate()));
  } else {
    optimizer = std::make_unique<torch::optim::SGD>(module.parameters(),
                                                    torch::optim::SGDOptions(c.learning_rate()));
  }
  at::Generator shuffle = at::make_generator<at::CPUGeneratorImpl>(c.seed());
  const double mu = c.proximal_mu();
  std::vector<at::Tensor> start_parameters;
  if (mu > 0) {
    for (const at::Tensor& p : module.parameters()) start_parameters.push_back(p.detach().clone());
  }
  for (uint32_t epoch = 0; epoch < c.local_epochs(); ++epoch) {
    const at::Tensor order = torch::randperm(n, shuffle, torch::dtype(torch::kInt64));
    double loss_sum = 0;
    for (int64_t start = 0; start < n;) {
      int64_t end = std::min(start + batch_size, n);
      if (n - end < min_batch) end = n;  // no undersized last batch
      optimizer->zero_grad();
      const at::Tensor loss = batch_loss(order.slice(0, start, end));
      const double value = loss.item<double>();
      if (!std::isfinite(value)) {
        return absl::InternalError(absl::StrCat("training diverged: loss is ", value, " at epoch ",
                                                epoch + 1, ", step ", result->steps + 1));
      }
      loss.backward();
      if (mu > 0) {
        torch::NoGradGuard no_grad;
        const std::vector<at::Tensor> parameters = module.parameters();
        for (size_t i = 0; i < parameters.size(); ++i) {
          at::Tensor grad = parameters[i].mutable_grad();
          if (grad.defined()) grad.add_(parameters[i] - start_parameters[i], mu);
        }
      }
      optimizer->step();
      ++result->steps;
      loss_sum += value * static_cast<double>(end - start);
      start = end;
    }
    result->mean_loss = loss_sum / static_cast<double>(n);
    result->samples_seen += n;
  }
  return absl::OkStatus();
}

}  // namespace fedcustoms::training
