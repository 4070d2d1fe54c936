#include "common/training/xray_trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/metrics/binary_metrics.h"
#include "common/tensor/named_tensors.h"
#include "common/training/local_training_loop.h"

namespace fedcustoms::training {
namespace {

// Keep the dropout and augmentation streams independent of the shuffle
// stream of the same seed (and of each other).
constexpr uint64_t kDropoutSeedMix = 0x9E3779B97F4A7C15ull;
constexpr uint64_t kAugmentSeedMix = 0xD1B54A32D192ED03ull;

// Pixels per evaluation batch: 128 images of 64x64; the first convolution's
// activations then take channels[0] * 2 MiB.
constexpr int64_t kEvalPixels = int64_t{128} * 64 * 64;

int64_t EvalBatch(const at::Tensor& images) {
  const int64_t pixels_per_image = std::max<int64_t>(images.numel() / images.size(0), 1);
  return std::max<int64_t>(kEvalPixels / pixels_per_image, 1);
}

}  // namespace

at::Tensor Uint16Images(std::span<const uint16_t> pixels, int64_t n, int64_t channels,
                        int64_t height, int64_t width) {
  TORCH_CHECK(n >= 0 && channels >= 0 && height >= 0 && width >= 0 &&
                  static_cast<uint64_t>(n * channels * height * width) == pixels.size(),
              "Uint16Images: ", pixels.size(), " pixels do not make [", n, ", ", channels, ", ",
              height, ", ", width, "]");
  at::Tensor images = torch::empty({n, channels, height, width}, torch::kInt16);
  std::memcpy(images.data_ptr<int16_t>(), pixels.data(), pixels.size_bytes());
  return images;
}

at::Tensor UnitImages(const at::Tensor& images) {
  switch (images.scalar_type()) {
    case torch::kFloat32:
      return images;
    case torch::kUInt8:
      // Division, not multiplication by 1/255: 255 maps to exactly 1.
      return images.to(torch::kFloat32).div_(255.0);
    case torch::kInt16:
      // The int16 holds uint16 bits: widen, then drop the sign extension.
      return images.to(torch::kInt32).bitwise_and_(0xFFFF).to(torch::kFloat32).div_(65535.0);
    default:
      break;
  }
  TORCH_CHECK(false, "images must be uint8, int16 (uint16 bits) or float32, got ",
              images.scalar_type());
  return {};
}

absl::Status CheckXrayData(const models::XrayCnn& model, const at::Tensor& images,
                           const at::Tensor& labels) {
  auto bad = [](auto&&... parts) { return absl::InvalidArgumentError(absl::StrCat(parts...)); };
  const int64_t size = model->image_size();
  const int64_t channels = model->input_channels();
  const int64_t classes = model->num_classes();
  if (!images.defined()) return bad("no images tensor");
  if (!labels.defined()) return bad("no labels tensor");
  if (images.dim() != 4 || images.size(1) != channels || images.size(2) != size ||
      images.size(3) != size) {
    return bad("images have shape ", c10::str(images.sizes()), ", expected [N, ", channels, ", ",
               size, ", ", size, "]");
  }
  const at::ScalarType dtype = images.scalar_type();
  if (dtype != torch::kUInt8 && dtype != torch::kInt16 && dtype != torch::kFloat32) {
    return bad("images have dtype ", c10::toString(dtype),
               ", expected uint8, int16 (uint16 bits) or float32");
  }
  if (labels.dim() != 1 || labels.scalar_type() != torch::kInt64) {
    return bad("labels must be int64 [N], got ", c10::toString(labels.scalar_type()), " ",
               c10::str(labels.sizes()));
  }
  const int64_t n = images.size(0);
  if (labels.size(0) != n) return bad(n, " images but ", labels.size(0), " labels");
  if (n == 0) return bad("no images");
  const auto [low, high] = torch::aminmax(labels);
  if (low.item<int64_t>() < 0 || high.item<int64_t>() >= classes) {
    const at::Tensor outside = torch::logical_or(labels < 0, labels >= classes);
    const int64_t i = outside.nonzero()[0][0].item<int64_t>();
    return bad("labels[", i, "] = ", labels[i].item<int64_t>(), " is not a class in [0, ", classes,
               ")");
  }
  if (dtype == torch::kFloat32) {
    // Only the error path builds a per-pixel mask to name the image.
    const auto [lowest, highest] = torch::aminmax(images);
    if (!tensor::AllFinite(images) || !(lowest.item<float>() >= 0 && highest.item<float>() <= 1)) {
      const at::Tensor inside = torch::logical_and(images >= 0, images <= 1);
      const int64_t i =
          torch::logical_not(inside).flatten(1).any(1).nonzero()[0][0].item<int64_t>();
      return bad("images[", i,
                 "] has a value outside [0, 1] or not finite (float32 images must be scaled to "
                 "[0, 1])");
    }
  }
  return absl::OkStatus();
}

std::vector<double> XrayClassWeights(std::span<const int64_t> class_counts,
                                     const v1::TrainingConfig& config) {
  const v1::TrainingConfig c = WithDefaults(config);
  std::vector<double> weights(class_counts.size(), 1.0);
  if (c.positive_weight() > 0) {
    for (size_t k = 1; k < weights.size(); ++k) weights[k] = c.positive_weight();
    return weights;
  }
  const int64_t most =
      class_counts.empty() ? 0 : *std::max_element(class_counts.begin(), class_counts.end());
  for (size_t k = 0; k < weights.size(); ++k) {
    if (class_counts[k] <= 0) continue;
    weights[k] =
        std::min(std::sqrt(static_cast<double>(most) / static_cast<double>(class_counts[k])),
                 c.max_positive_weight());
  }
  return weights;
}

at::Tensor AugmentXrayBatch(const at::Tensor& batch, at::Generator& generator) {
  TORCH_CHECK(batch.dim() == 4 && batch.scalar_type() == torch::kFloat32,
              "AugmentXrayBatch: batch must be float32 [B, C, H, W], got ", batch.scalar_type(),
              " ", batch.sizes());
  const int64_t b = batch.size(0);
  const int64_t c = batch.size(1);
  const int64_t h = batch.size(2);
  const int64_t w = batch.size(3);
  const int64_t max_shift = std::min(h, w) / 16;
  const at::Tensor flip_x = torch::empty({b}).bernoulli_(0.5, generator).to(torch::kBool);
  const at::Tensor flip_y = torch::empty({b}).bernoulli_(0.5, generator).to(torch::kBool);
  const at::Tensor dx = torch::randint(-max_shift, max_shift + 1, {b}, generator, torch::kInt64);
  const at::Tensor dy = torch::randint(-max_shift, max_shift + 1, {b}, generator, torch::kInt64);
  const at::Tensor gain = torch::empty({b}).uniform_(0.9, 1.1, generator);

  // Flip and shift as one gather per axis: output pixel i reads source pixel
  // (flipped ? n-1-i : i) - shift, clamped to the edge.
  auto source = [b](int64_t n, const at::Tensor& flip, const at::Tensor& shift) {
    const at::Tensor i = torch::arange(n, torch::kInt64).expand({b, n});
    return torch::where(flip.view({b, 1}), (n - 1) - i, i).sub(shift.view({b, 1})).clamp_(0, n - 1);
  };
  const at::Tensor rows = source(h, flip_y, dy).view({b, 1, h, 1}).expand({b, c, h, w});
  const at::Tensor cols = source(w, flip_x, dx).view({b, 1, 1, w}).expand({b, c, h, w});
  return batch.gather(2, rows).gather(3, cols).mul_(gain.view({b, 1, 1, 1})).clamp_(0.0, 1.0);
}

absl::StatusOr<TrainResult> TrainXrayModel(models::XrayCnn& model, const at::Tensor& images,
                                           const at::Tensor& labels,
                                           const v1::TrainingConfig& config, bool augment,
                                           const DpSgdOptions* dp) {
  const v1::TrainingConfig c = WithDefaults(config);
  if (absl::Status s = CheckTrainingConfig(c); !s.ok()) return s;
  if (absl::Status s = CheckXrayData(model, images, labels); !s.ok()) return s;
  const int64_t n = images.size(0);
  const int64_t classes = model->num_classes();

  TrainResult result;
  result.samples = n;
  try {
    std::vector<double> weights;
    if (dp == nullptr) {
      const at::Tensor counts = torch::bincount(labels, /*weights=*/{}, classes).contiguous();
      weights = XrayClassWeights(
          std::span<const int64_t>(counts.data_ptr<int64_t>(), static_cast<size_t>(classes)), c);
    } else {
      // Under DP-SGD the loss may depend on each image only, not on the
      // node's class counts.
      weights.assign(static_cast<size_t>(classes),
                     c.positive_weight() > 0 ? c.positive_weight() : 1.0);
      weights[0] = 1.0;
    }
    result.positive_weight = *std::max_element(weights.begin(), weights.end());
    const at::Tensor class_weights =
        torch::tensor(at::ArrayRef<double>(weights)).to(torch::kFloat32);
    namespace F = torch::nn::functional;
    // Sum then divide by the batch size: the mean of weighted per-image
    // losses (PyTorch's "mean" would divide by the sum of the weights instead,
    // cancelling the extra push of a batch rich in rare threats).
    const auto loss_options =
        F::CrossEntropyFuncOptions().weight(class_weights).reduction(torch::kSum);
    at::Generator augmentation =
        at::make_generator<at::CPUGeneratorImpl>(c.seed() ^ kAugmentSeedMix);

    model->train();
    model->SeedDropout(c.seed() ^ kDropoutSeedMix);
    absl::Status trained;
    if (dp == nullptr) {
      trained = RunLocalEpochs(
          *model, n, c, /*min_batch=*/1,
          [&](const at::Tensor& index) {
            at::Tensor x = UnitImages(images.index_select(0, index));
            if (augment) x = AugmentXrayBatch(x, augmentation);
            return F::cross_entropy(model->forward(x), labels.index_select(0, index),
                                    loss_options) /
                   static_cast<double>(index.size(0));
          },
          &result);
    } else {
      const auto per_example =
          F::CrossEntropyFuncOptions().weight(class_weights).reduction(torch::kNone);
      trained = RunDpSgdSteps(
          *model, n, c, *dp,
          [&](const at::Tensor& index, privacy::PerExampleGradients* tape) {
            at::Tensor x = UnitImages(images.index_select(0, index));
            if (augment) x = AugmentXrayBatch(x, augmentation);
            model->RecordPerExample(tape);
            const at::Tensor logits = model->forward(x);
            model->RecordPerExample(nullptr);
            return F::cross_entropy(logits, labels.index_select(0, index), per_example);
          },
          &result);
    }
    model->RecordPerExample(nullptr);
    model->eval();
    if (!trained.ok()) return trained;
  } catch (const c10::Error& e) {
    model->eval();
    return absl::InternalError(absl::StrCat("training failed: ", e.what_without_backtrace()));
  }
  return result;
}

std::vector<float> PredictXray(models::XrayCnn& model, const at::Tensor& images) {
  torch::NoGradGuard no_grad;
  model->eval();
  const int64_t n = images.dim() > 0 ? images.size(0) : 0;
  const int64_t classes = model->num_classes();
  std::vector<float> probabilities(static_cast<size_t>(n * classes));
  if (n == 0) return probabilities;
  const int64_t batch = EvalBatch(images);
  for (int64_t start = 0; start < n; start += batch) {
    const int64_t end = std::min(start + batch, n);
    const at::Tensor p =
        torch::softmax(model->forward(UnitImages(images.slice(0, start, end))), 1).contiguous();
    std::memcpy(probabilities.data() + start * classes, p.data_ptr<float>(),
                static_cast<size_t>(p.numel()) * sizeof(float));
  }
  return probabilities;
}

absl::StatusOr<v1::EvaluationMetrics> EvaluateXray(models::XrayCnn& model, const at::Tensor& images,
                                                   const at::Tensor& labels) {
  if (absl::Status s = CheckXrayData(model, images, labels); !s.ok()) return s;
  torch::NoGradGuard no_grad;
  model->eval();
  const int64_t n = images.size(0);
  std::vector<float> scores(static_cast<size_t>(n));
  std::vector<float> threats(static_cast<size_t>(n));
  double loss_sum = 0;
  int64_t correct = 0;
  try {
    const int64_t batch = EvalBatch(images);
    for (int64_t start = 0; start < n; start += batch) {
      const int64_t end = std::min(start + batch, n);
      const at::Tensor y = labels.slice(0, start, end);
      const at::Tensor log_p =
          torch::log_softmax(model->forward(UnitImages(images.slice(0, start, end))), 1);
      loss_sum += torch::nll_loss(log_p, y, /*weight=*/{}, at::Reduction::Sum).item<double>();
      correct += log_p.argmax(1).eq(y).sum().item<int64_t>();
      // P(threat) as the sum of the threat classes' probabilities: each is
      // exp of a log-probability, exact however close P(class 0) is to 1,
      // where 1 - P(class 0) would round many clear images to the same score.
      const at::Tensor threat = log_p.slice(1, 1).exp().sum(1).contiguous();
      std::memcpy(scores.data() + start, threat.data_ptr<float>(),
                  static_cast<size_t>(end - start) * sizeof(float));
      const at::Tensor positive = y.ne(0).to(torch::kFloat32).contiguous();
      std::memcpy(threats.data() + start, positive.data_ptr<float>(),
                  static_cast<size_t>(end - start) * sizeof(float));
    }
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("evaluation failed: ", e.what_without_backtrace()));
  }
  v1::EvaluationMetrics m =
      metrics::ComputeBinaryMetrics(scores, threats, loss_sum / static_cast<double>(n));
  m.set_accuracy(static_cast<double>(correct) / static_cast<double>(n));
  return m;
}

}  // namespace fedcustoms::training
