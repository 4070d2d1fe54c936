#include "common/training/risk_trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/training/local_training_loop.h"
#include "common/training/table_tensors.h"

namespace fedcustoms::training {
namespace {

// Keeps the dropout stream independent of the shuffle stream of the same seed.
constexpr uint64_t kDropoutSeedMix = 0x9E3779B97F4A7C15ull;

}  // namespace

v1::TrainingConfig WithDefaults(const v1::TrainingConfig& config) {
  v1::TrainingConfig c = config;
  if (c.local_epochs() == 0) c.set_local_epochs(1);
  if (c.batch_size() == 0) c.set_batch_size(256);
  if (c.learning_rate() == 0) c.set_learning_rate(1e-3);
  if (c.optimizer().empty()) c.set_optimizer("adam");
  if (c.max_positive_weight() == 0) c.set_max_positive_weight(30);
  if (c.seed() == 0) c.set_seed(1);
  return c;
}

absl::Status CheckTrainingConfig(const v1::TrainingConfig& config) {
  const v1::TrainingConfig c = WithDefaults(config);
  auto bad = [](auto&&... parts) { return absl::InvalidArgumentError(absl::StrCat(parts...)); };
  if (c.local_epochs() > 1000) return bad("local_epochs ", c.local_epochs(), " is not in 1..1000");
  if (c.batch_size() > 65536) return bad("batch_size ", c.batch_size(), " is not in 1..65536");
  if (!std::isfinite(c.learning_rate()) || c.learning_rate() <= 0 || c.learning_rate() > 10) {
    return bad("learning_rate ", c.learning_rate(), " is not in (0, 10]");
  }
  if (c.optimizer() != "adam" && c.optimizer() != "sgd") {
    return bad("optimizer \"", c.optimizer(), "\" is not \"adam\" or \"sgd\"");
  }
  if (!std::isfinite(c.positive_weight()) || c.positive_weight() < 0 || c.positive_weight() > 1e6) {
    return bad("positive_weight ", c.positive_weight(), " is not 0 or in (0, 1e6]");
  }
  if (!(c.weight_decay() >= 0 && c.weight_decay() <= 1)) {
    return bad("weight_decay ", c.weight_decay(), " is not in [0, 1]");
  }
  if (!std::isfinite(c.proximal_mu()) || c.proximal_mu() < 0 || c.proximal_mu() > 1000) {
    return bad("proximal_mu ", c.proximal_mu(), " is not in [0, 1000]");
  }
  if (!std::isfinite(c.max_positive_weight()) || c.max_positive_weight() < 1 ||
      c.max_positive_weight() > 1e6) {
    return bad("max_positive_weight ", c.max_positive_weight(), " is not in [1, 1e6]");
  }
  return absl::OkStatus();
}

double PositiveWeight(int64_t positives, int64_t negatives, const v1::TrainingConfig& config) {
  const v1::TrainingConfig c = WithDefaults(config);
  if (c.positive_weight() > 0) return c.positive_weight();
  if (positives <= 0 || negatives <= 0) return 1.0;
  return std::min(std::sqrt(static_cast<double>(negatives) / static_cast<double>(positives)),
                  c.max_positive_weight());
}

std::optional<privacy::ColumnMoments> PrivateColumnMoments(const at::Tensor& numeric,
                                                           const DpSgdOptions& dp) {
  if (dp.stats_noise_multiplier <= 0 || numeric.size(1) == 0) return std::nullopt;
  privacy::SecureGaussian noise(dp.secret + "|statistics");
  return privacy::NoisyColumnMoments(numeric, dp.numeric_low, dp.numeric_high,
                                     dp.stats_noise_multiplier, noise);
}

absl::StatusOr<v1::TrainingConfig> CheckDeclarationTraining(
    const v1::TrainingConfig& config, const data::DeclarationTable& table, int64_t numeric_width,
    const std::vector<uint32_t>& buckets, std::span<const int64_t> rows, bool need_labels) {
  v1::TrainingConfig c = WithDefaults(config);
  if (absl::Status s = CheckTrainingConfig(c); !s.ok()) return s;
  if (absl::Status s = CheckRows(table, numeric_width, buckets, rows, need_labels); !s.ok()) {
    return s;
  }
  if (rows.size() < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("training needs at least 2 rows, got ", rows.size()));
  }
  return c;
}

absl::StatusOr<TrainResult> TrainRiskModel(models::RiskMlp& model,
                                           const data::DeclarationTable& table,
                                           std::span<const int64_t> rows,
                                           const v1::TrainingConfig& config,
                                           const DpSgdOptions* dp) {
  absl::StatusOr<v1::TrainingConfig> checked = CheckDeclarationTraining(
      config, table, model->numeric_width(), model->buckets(), rows, /*need_labels=*/true);
  if (!checked.ok()) return checked.status();
  const v1::TrainingConfig& c = *checked;
  const auto n = static_cast<int64_t>(rows.size());

  int64_t positives = 0;
  for (int64_t r : rows) positives += table.labels[r] == 1.0f ? 1 : 0;

  TrainResult result;
  result.samples = n;
  // Under DP-SGD the loss may not depend on the data set as a whole, only on
  // each example: the weight is the configured one.
  result.positive_weight = dp == nullptr             ? PositiveWeight(positives, n - positives, c)
                           : c.positive_weight() > 0 ? c.positive_weight()
                                                     : 1.0;

  try {
    const at::Tensor numeric = NumericTensor(table, rows);
    const at::Tensor categorical = CategoricalTensor(table, rows);
    const at::Tensor labels = LabelTensor(table, rows);
    const at::Tensor pos_weight = torch::full({1}, result.positive_weight, torch::kFloat32);
    namespace F = torch::nn::functional;
    const auto loss_options = F::BinaryCrossEntropyWithLogitsFuncOptions().pos_weight(pos_weight);

    // The local column statistics: used to standardize only when the model
    // has none yet (a fresh model), and sent back in the state after training
    // so the aggregate becomes the federation's statistics. Under DP-SGD they
    // are the noisy ones (PrivateColumnMoments), or none.
    std::optional<privacy::ColumnMoments> local;
    if (dp == nullptr) {
      local = privacy::ColumnMoments{numeric.mean(0), numeric.var(0, /*unbiased=*/true)};
    } else {
      local = PrivateColumnMoments(numeric, *dp);
    }
    if (local && !model->HasStandardization()) {
      model->SetStandardization(local->mean, local->variance);
    }
    model->train();
    model->SeedDropout(c.seed() ^ kDropoutSeedMix);
    absl::Status trained;
    if (dp == nullptr) {
      trained = RunLocalEpochs(
          *model, n, c, /*min_batch=*/2,  // BatchNorm cannot train on a single row
          [&](const at::Tensor& index) {
            return F::binary_cross_entropy_with_logits(
                model->forward(numeric.index_select(0, index), categorical.index_select(0, index)),
                labels.index_select(0, index), loss_options);
          },
          &result);
    } else {
      const auto per_example = F::BinaryCrossEntropyWithLogitsFuncOptions()
                                   .pos_weight(pos_weight)
                                   .reduction(torch::kNone);
      trained = RunDpSgdSteps(
          *model, n, c, *dp,
          [&](const at::Tensor& index, privacy::PerExampleGradients* tape) {
            model->RecordPerExample(tape);
            const at::Tensor logits =
                model->forward(numeric.index_select(0, index), categorical.index_select(0, index));
            model->RecordPerExample(nullptr);
            return F::binary_cross_entropy_with_logits(logits, labels.index_select(0, index),
                                                       per_example);
          },
          &result);
    }
    model->RecordPerExample(nullptr);
    model->eval();
    if (!trained.ok()) return trained;
    if (local) model->SetStandardization(local->mean, local->variance);
  } catch (const c10::Error& e) {
    model->eval();
    return absl::InternalError(absl::StrCat("training failed: ", e.what_without_backtrace()));
  }
  model->eval();
  return result;
}

}  // namespace fedcustoms::training
