#pragma once

#include <ATen/Tensor.h>
#include <torch/nn/module.h>

#include <cstdint>
#include <functional>

#include "absl/status/status.h"
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

}  // namespace fedcustoms::training
