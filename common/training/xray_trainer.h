#pragma once

#include <ATen/Tensor.h>
#include <ATen/core/Generator.h>

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/models/xray_cnn.h"
#include "common/training/risk_trainer.h"
#include "fedcustoms/v1/config.pb.h"
#include "fedcustoms/v1/metrics.pb.h"

namespace fedcustoms::training {

// Local training and evaluation of the X-ray CNN on image tensors, so this
// code does not depend on how images are read (common/xray/).
//
// Images are [N, C, S, S] with C = input_channels and S = image_size of the
// model, in one of three dtypes, and become float32 in [0, 1] one batch at a
// time (UnitImages), so a dataset stays in memory at its stored width:
//   uint8    0..255, divided by 255 (8-bit PNG, IDX benchmarks)
//   int16    16-bit pixels 0..65535 held as their bit patterns: LibTorch 1.13
//            has no uint16 dtype, so Uint16Images() stores a uint16 buffer as
//            int16 (no widening); divided by 65535
//   float32  already in [0, 1]
// Labels are int64 [N], class indexes in [0, num_classes); class 0 is "no
// threat".

// An int16 tensor [n, channels, height, width] holding a copy of `pixels`
// (uint16, row-major) bit for bit: the stored form of 16-bit images above.
// Precondition: pixels.size() == n * channels * height * width (checked,
// throws c10::Error).
at::Tensor Uint16Images(std::span<const uint16_t> pixels, int64_t n, int64_t channels,
                        int64_t height, int64_t width);

// `images` (any of the dtypes above) as float32 in [0, 1], same shape. A
// float32 input is returned as is (shared, not copied). Throws c10::Error on
// another dtype.
at::Tensor UnitImages(const at::Tensor& images);

// OK when `images` and `labels` fit `model` as described above: shapes,
// dtypes, equal counts, labels in range, float pixels finite and in [0, 1].
// At least one image. InvalidArgument naming what is wrong ("labels[7] = 4 is
// not a class in [0, 3)", "images[2] has a value outside [0, 1] (float32
// images must be scaled)").
absl::Status CheckXrayData(const models::XrayCnn& model, const at::Tensor& images,
                           const at::Tensor& labels);

// Weights of the classes in the loss, from the local count of each class
// (class_counts.size() = number of classes): sqrt(N_max / N_c) capped at
// config.max_positive_weight, so the most frequent class weighs 1 and a rare
// threat class more (for two classes with class 0 the majority this is
// exactly the risk model's PositiveWeight). A class absent locally gets 1: it
// never occurs as a target here, so its weight cannot enter the local loss, and
// 1 keeps the vector meaningful to read. When config.positive_weight is set it
// is used for every threat class (classes 1..K-1) and class 0 weighs 1, as in
// the binary risk task. All 1 when no class has any example.
std::vector<double> XrayClassWeights(std::span<const int64_t> class_counts,
                                     const v1::TrainingConfig& config);

// Augments a batch of float32 images [B, C, H, W] (H and W >= 1), returning a
// new tensor; `batch` is not changed and labels stay valid (every transform
// keeps the threat class). Per image, all drawn from `generator` in this order:
// a horizontal flip (p = 1/2), a vertical flip (p = 1/2), a shift of dx, dy
// uniform in [-m, m] pixels with m = min(H, W) / 16 (integer division; 0 for
// images under 16 pixels), an intensity gain uniform in [0.9, 1.1]. Shifts
// fill with the edge pixels (replicate), not zeros: in a transmission image 0
// means "fully absorbed", so zero fill would paint a fake dense border, while
// the edge continues whatever background the image has. The gain is applied
// to all channels of an image alike (a dual-energy pair keeps its ratio) and
// the result is clamped to [0, 1], like a saturating detector. Vectorized: two
// gathers and a multiply per batch, whatever B.
at::Tensor AugmentXrayBatch(const at::Tensor& batch, at::Generator& generator);

// Trains `model` in place on all `images` with their `labels` (see above).
//
// Each epoch shuffles the images with a generator seeded once from
// config.seed; mini-batches of config.batch_size are gathered with
// index_select and converted to float one batch at a time. When `augment`
// (the task's !no_augmentation) each batch goes through AugmentXrayBatch with
// a second generator from config.seed, so the batches are the same with and
// without augmentation. Loss: cross-entropy weighted by XrayClassWeights(),
// the batch's mean of weighted per-image losses (like the risk task's
// pos_weight: a batch with rare threats pushes harder). The loop is the one
// every local trainer shares (RunLocalEpochs in local_training_loop.h): Adam
// or SGD fresh for each call, FedProx with config.proximal_mu, batches of any
// size down to 1 (there is no BatchNorm to need 2). Dropout is reseeded from
// config.seed. The result is reused from the risk task: mean_loss is the mean
// weighted loss of the last epoch, and positive_weight the largest class
// weight used. Everything is deterministic for a given model state, data and
// config on one thread count; the global torch RNG is not used, and the number
// of torch threads is left to the caller.
//
// Errors, with the model unchanged: InvalidArgument for a bad config
// (CheckTrainingConfig) or data (CheckXrayData). Errors with the model's
// weights unspecified (reload the global model): Internal "training diverged:
// loss is nan at epoch 1, step 3", or a c10::Error caught from LibTorch. The
// model is left in eval mode.
//
// With `dp` (not null) the training is DP-SGD (RunDpSgdSteps: Poisson
// batches, per-example gradients of every convolution and Linear layer,
// clipping, noise); the class weights are then the configured
// positive_weight for every threat class (or 1), never from the local class
// counts, and a row whose loss is not finite is left out of its step.
absl::StatusOr<TrainResult> TrainXrayModel(models::XrayCnn& model, const at::Tensor& images,
                                           const at::Tensor& labels,
                                           const v1::TrainingConfig& config, bool augment,
                                           const DpSgdOptions* dp = nullptr);

// Class probabilities of `images` (see above), row-major [N x num_classes]:
// the softmax of the logits, in eval mode under NoGradGuard, in batches
// (memory O(batch)). Leaves the model in eval mode. Precondition: the images
// fit the model (CheckXrayData); violations throw c10::Error. Note that
// 1 - P(class 0) loses precision when P(class 0) is near 1; the threat score
// of EvaluateXray sums P(class c) over c >= 1 instead.
std::vector<float> PredictXray(models::XrayCnn& model, const at::Tensor& images);

// Metrics of `model` on `images` with `labels` (eval mode, no gradients,
// batched): accuracy (argmax = label, over all classes); the binary threat
// metrics of metrics::ComputeBinaryMetrics (roc_auc, pr_auc, at_budget,
// examples, positives) with positive = label != 0 and score = P(threat) =
// sum of P(class c) for c >= 1; loss = mean unweighted cross-entropy, a loss
// comparable across nodes whatever their class mix. InvalidArgument when the
// data does not fit (CheckXrayData), Internal on a c10::Error.
absl::StatusOr<v1::EvaluationMetrics> EvaluateXray(models::XrayCnn& model, const at::Tensor& images,
                                                   const at::Tensor& labels);

}  // namespace fedcustoms::training
