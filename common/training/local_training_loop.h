#pragma once

#include <ATen/Tensor.h>
#include <torch/nn/module.h>

#include <cstdint>
#include <functional>

#include "absl/status/status.h"
#include "common/privacy/per_example_gradients.h"
#include "common/training/risk_trainer.h"
#include "fedcustoms/v1/config.pb.h"

namespace fedcustoms::training {

// The mini-batch loop every local trainer shares: `config.local_epochs` passes
// over n examples in an order reshuffled each epoch by a generator seeded once
// from config.seed; batches of config.batch_size (at least `min_batch`; a
// final batch smaller than `min_batch` is merged into the previous one); a
// fresh Adam or SGD optimizer over `module`'s parameters; FedProx when
// config.proximal_mu > 0 (the gradient mu (w - w_start) of (mu/2)||w -
// w_start||^2 is added after backward, w_start being the parameters at the
// call; the reported loss stays the data loss).
//
// `batch_loss(index)` returns the mean loss of the examples `index` (int64
// positions in [0, n)) with gradients. `result` gets steps, samples_seen and
// the mean per-example loss of the last epoch (mean_loss). A non-finite loss
// stops training: Internal "training diverged: loss is nan at epoch 1, step
// 3". `config` must already be checked (CheckTrainingConfig). LibTorch errors
// propagate as c10::Error: the caller converts them.
absl::Status RunLocalEpochs(torch::nn::Module& module, int64_t n, const v1::TrainingConfig& config,
                            int64_t min_batch,
                            const std::function<at::Tensor(const at::Tensor& index)>& batch_loss,
                            TrainResult* result);

// The number of examples a DP-SGD batch takes on average out of n:
// config.batch_size, at most n. The sampling rate is this / n.
double ExpectedDpBatch(int64_t n, const v1::TrainingConfig& config);

// The DP-SGD loop (Abadi et al. 2016) with the sampling the RDP accountant
// assumes: StepsForEpochs(config.local_epochs, q) steps, q =
// ExpectedDpBatch / n; at each step every example is taken independently with
// probability q (privacy::PoissonSampler, so a batch may be empty), each
// taken example's gradient is clipped to L2 norm C and the sum gets Gaussian
// noise σ·C, divided by the expected batch size (privacy::NoisyClippedSum);
// then the optimizer (Adam or SGD, fresh) steps, FedProx adding its
// data-independent term as in RunLocalEpochs.
//
// `per_example_losses(index, tape)` returns the loss of each example of
// `index` [B] with its graph, with every layer of `module` recorded on
// `tape`; a pass that leaves a trainable parameter unrecorded is refused
// (FailedPrecondition naming it), since its gradient would escape clipping.
// `result` gets steps, samples_seen (examples drawn), sampling_rate and the
// mean per-example loss of the drawn examples over the last
// ceil(1/q) steps (mean_loss). Unlike RunLocalEpochs, a non-finite loss does
// not stop training: the example is left out of its step (dp_excluded), so
// whether a row was drawn never shows as a failed round. `config` must
// already be checked.
absl::Status RunDpSgdSteps(
    torch::nn::Module& module, int64_t n, const v1::TrainingConfig& config, const DpSgdOptions& dp,
    const std::function<at::Tensor(const at::Tensor& index, privacy::PerExampleGradients* tape)>&
        per_example_losses,
    TrainResult* result);

}  // namespace fedcustoms::training
