#include "common/training/local_training_loop.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/crypto/sha256.h"
#include "common/privacy/noisy_clipped_sum.h"
#include "common/privacy/poisson_sampler.h"
#include "common/privacy/rdp_accountant.h"

namespace fedcustoms::training {
namespace {

// The Poisson sampler's seed: 64 bits of SHA-256 over the secret, apart from
// the noise's key (privacy::SecureGaussian hashes it with another label).
uint64_t SamplingSeed(const std::string& secret) {
  crypto::Sha256 hash;
  hash.Update(std::string_view("fedcustoms dp sampling v1"));
  hash.Update(secret);
  const crypto::Sha256Digest digest = hash.Final();
  uint64_t seed = 0;
  for (int i = 0; i < 8; ++i) seed = (seed << 8) | digest[i];
  return seed;
}

std::unique_ptr<torch::optim::Optimizer> MakeOptimizer(torch::nn::Module& module,
                                                       const v1::TrainingConfig& c) {
  if (c.optimizer() == "adam" && c.weight_decay() > 0) {
    // Decoupled decay: Adam's per-coordinate scaling would otherwise shrink
    // rarely updated weights (hash buckets) hardest.
    return std::make_unique<torch::optim::AdamW>(
        module.parameters(),
        torch::optim::AdamWOptions(c.learning_rate()).weight_decay(c.weight_decay()));
  }
  if (c.optimizer() == "adam") {
    return std::make_unique<torch::optim::Adam>(module.parameters(),
                                                torch::optim::AdamOptions(c.learning_rate()));
  }
  return std::make_unique<torch::optim::SGD>(
      module.parameters(),
      torch::optim::SGDOptions(c.learning_rate()).weight_decay(c.weight_decay()));
}

// FedProx: the gradient mu (w - w_start) of (mu/2)||w - w_start||^2, w_start
// being the parameters when training began. Data-independent, so DP-SGD may
// add it after the noise.
class ProximalTerm {
 public:
  ProximalTerm(torch::nn::Module& module, double mu) : mu_(mu) {
    if (mu_ <= 0) return;
    for (const at::Tensor& p : module.parameters()) start_.push_back(p.detach().clone());
  }
  void AddGradient(torch::nn::Module& module) const {
    if (mu_ <= 0) return;
    torch::NoGradGuard no_grad;
    const std::vector<at::Tensor> parameters = module.parameters();
    for (size_t i = 0; i < parameters.size(); ++i) {
      at::Tensor grad = parameters[i].mutable_grad();
      if (grad.defined()) grad.add_(parameters[i] - start_[i], mu_);
    }
  }

 private:
  double mu_;
  std::vector<at::Tensor> start_;
};

}  // namespace

absl::Status RunLocalEpochs(torch::nn::Module& module, int64_t n, const v1::TrainingConfig& config,
                            int64_t min_batch,
                            const std::function<at::Tensor(const at::Tensor& index)>& batch_loss,
                            TrainResult* result) {
  const v1::TrainingConfig c = WithDefaults(config);
  const int64_t batch_size = std::max<int64_t>(c.batch_size(), min_batch);
  std::unique_ptr<torch::optim::Optimizer> optimizer = MakeOptimizer(module, c);
  at::Generator shuffle = at::make_generator<at::CPUGeneratorImpl>(c.seed());
  const ProximalTerm proximal(module, c.proximal_mu());
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
      proximal.AddGradient(module);
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

double ExpectedDpBatch(int64_t n, const v1::TrainingConfig& config) {
  return static_cast<double>(std::min<int64_t>(WithDefaults(config).batch_size(), n));
}

absl::Status RunDpSgdSteps(
    torch::nn::Module& module, int64_t n, const v1::TrainingConfig& config, const DpSgdOptions& dp,
    const std::function<at::Tensor(const at::Tensor& index, privacy::PerExampleGradients* tape)>&
        per_example_losses,
    TrainResult* result) {
  const v1::TrainingConfig c = WithDefaults(config);
  if (n <= 0) return absl::InvalidArgumentError("DP-SGD needs at least one training row");
  const double expected_batch = ExpectedDpBatch(n, c);
  const double q = expected_batch / static_cast<double>(n);
  const uint64_t steps = privacy::StepsForEpochs(c.local_epochs(), q);
  result->sampling_rate = q;

  std::unique_ptr<torch::optim::Optimizer> optimizer = MakeOptimizer(module, c);
  const ProximalTerm proximal(module, c.proximal_mu());
  const std::vector<at::Tensor> parameters = module.parameters();
  privacy::PoissonSampler sampler(static_cast<uint64_t>(n), q, SamplingSeed(dp.secret));
  privacy::SecureGaussian noise(dp.secret);
  privacy::PerExampleGradients tape;

  // The reported loss: the drawn examples of about the last epoch's worth of
  // steps.
  const auto steps_per_epoch = static_cast<uint64_t>(std::ceil(1.0 / q));
  double loss_sum = 0;
  int64_t loss_examples = 0;
  for (uint64_t step = 0; step < steps; ++step) {
    const std::vector<uint64_t> drawn = sampler.Next();
    optimizer->zero_grad();
    if (step + steps_per_epoch == steps) {
      loss_sum = 0;
      loss_examples = 0;
    }
    if (drawn.empty()) {
      privacy::NoisyClippedSum(parameters, nullptr, dp.clip_norm, dp.noise_multiplier,
                               expected_batch, noise);
    } else {
      const at::Tensor index = torch::tensor(std::vector<int64_t>(drawn.begin(), drawn.end()),
                                             torch::dtype(torch::kInt64));
      tape.Clear();
      const at::Tensor losses = per_example_losses(index, &tape);
      if (absl::Status covered = tape.CheckCovers(module); !covered.ok()) return covered;
      // A row whose loss is not finite is left out of the step rather than
      // stopping training: a failed round would tell whoever crafted the
      // model that the row was drawn (see NoisyClippedSum).
      const at::Tensor finite = torch::isfinite(losses);
      const at::Tensor kept = torch::where(finite, losses, torch::zeros_like(losses));
      tape.Backward(kept);
      const privacy::ClippingStats stats = privacy::NoisyClippedSum(
          parameters, &tape, dp.clip_norm, dp.noise_multiplier, expected_batch, noise, ~finite);
      tape.Clear();
      result->dp_excluded += stats.excluded;
      loss_sum += kept.sum().item<double>();
      loss_examples += static_cast<int64_t>(drawn.size()) - stats.excluded;
      result->samples_seen += static_cast<int64_t>(drawn.size());
    }
    proximal.AddGradient(module);
    optimizer->step();
    ++result->steps;
  }
  result->mean_loss = loss_examples > 0 ? loss_sum / static_cast<double>(loss_examples) : 0;
  return absl::OkStatus();
}

}  // namespace fedcustoms::training
