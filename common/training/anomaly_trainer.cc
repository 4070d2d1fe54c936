#include "common/training/anomaly_trainer.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/metrics/binary_metrics.h"
#include "common/training/local_training_loop.h"
#include "common/training/table_tensors.h"

namespace fedcustoms::training {
namespace {

constexpr size_t kScoreBatch = 4096;

}  // namespace

absl::StatusOr<TrainResult> TrainAnomalyModel(models::AnomalyAutoencoder& model,
                                              const data::DeclarationTable& table,
                                              std::span<const int64_t> rows,
                                              const v1::TrainingConfig& config,
                                              const DpSgdOptions* dp) {
  absl::StatusOr<v1::TrainingConfig> checked = CheckDeclarationTraining(
      config, table, model->numeric_width(), model->buckets(), rows, /*need_labels=*/false);
  if (!checked.ok()) return checked.status();
  const v1::TrainingConfig& c = *checked;
  const auto n = static_cast<int64_t>(rows.size());
  TrainResult result;
  result.samples = n;
  try {
    const at::Tensor numeric = NumericTensor(table, rows);
    const at::Tensor categorical = CategoricalTensor(table, rows);
    // As in TrainRiskModel: local statistics standardize only a fresh model,
    // and go back in the state so the aggregate is the federation's; under
    // DP-SGD they are the noisy ones, or none.
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
    absl::Status trained;
    if (dp == nullptr) {
      trained = RunLocalEpochs(
          *model, n, c, /*min_batch=*/2,
          [&](const at::Tensor& index) {
            return model
                ->forward(numeric.index_select(0, index), categorical.index_select(0, index))
                .mean();
          },
          &result);
    } else {
      trained = RunDpSgdSteps(
          *model, n, c, *dp,
          [&](const at::Tensor& index, privacy::PerExampleGradients* tape) {
            model->RecordPerExample(tape);
            at::Tensor scores =
                model->forward(numeric.index_select(0, index), categorical.index_select(0, index));
            model->RecordPerExample(nullptr);
            return scores;
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
  return result;
}

std::vector<float> ScoreAnomalies(models::AnomalyAutoencoder& model,
                                  const data::DeclarationTable& table,
                                  std::span<const int64_t> rows) {
  torch::NoGradGuard no_grad;
  model->eval();
  std::vector<float> scores(rows.size());
  for (size_t start = 0; start < rows.size(); start += kScoreBatch) {
    const std::span<const int64_t> batch =
        rows.subspan(start, std::min(kScoreBatch, rows.size() - start));
    const at::Tensor s =
        model->forward(NumericTensor(table, batch), CategoricalTensor(table, batch)).contiguous();
    std::memcpy(scores.data() + start, s.data_ptr<float>(), batch.size() * sizeof(float));
  }
  return scores;
}

double FlagThreshold(std::vector<float> scores, double q) {
  if (scores.empty()) return std::numeric_limits<double>::infinity();
  q = std::clamp(q, 0.0, 1.0);
  const double position = q * static_cast<double>(scores.size() - 1);
  const auto lower = static_cast<size_t>(std::floor(position));
  const size_t upper = std::min(lower + 1, scores.size() - 1);
  std::nth_element(scores.begin(), scores.begin() + static_cast<ptrdiff_t>(lower), scores.end());
  const double low = scores[lower];
  double high = low;
  if (upper != lower) {
    high = *std::min_element(scores.begin() + static_cast<ptrdiff_t>(upper), scores.end());
  }
  return low + (high - low) * (position - static_cast<double>(lower));
}

absl::StatusOr<v1::EvaluationMetrics> EvaluateAnomalyModel(models::AnomalyAutoencoder& model,
                                                           const data::DeclarationTable& table,
                                                           std::span<const int64_t> threshold_rows,
                                                           std::span<const int64_t> holdout_rows) {
  if (holdout_rows.empty()) return absl::InvalidArgumentError("no hold-out rows to evaluate");
  for (std::span<const int64_t> rows : {threshold_rows, holdout_rows}) {
    if (absl::Status s = CheckRows(table, model->numeric_width(), model->buckets(), rows,
                                   /*need_labels=*/false);
        !s.ok()) {
      return s;
    }
  }
  try {
    const double threshold = FlagThreshold(ScoreAnomalies(model, table, threshold_rows),
                                           model->config().flag_quantile());
    const std::vector<float> scores = ScoreAnomalies(model, table, holdout_rows);
    double sum = 0;
    uint64_t flagged = 0;
    for (float s : scores) {
      sum += s;
      flagged += s > threshold ? 1 : 0;
    }
    const double mean_score = sum / static_cast<double>(scores.size());
    v1::EvaluationMetrics metrics;
    if (table.has_labels()) {
      std::vector<float> labels;
      labels.reserve(holdout_rows.size());
      for (int64_t r : holdout_rows) labels.push_back(table.labels[static_cast<size_t>(r)]);
      metrics = metrics::ComputeBinaryMetrics(scores, labels, mean_score);
    } else {
      metrics.set_loss(mean_score);
      metrics.set_examples(scores.size());
    }
    metrics.set_flagged(flagged);
    return metrics;
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("evaluation failed: ", e.what_without_backtrace()));
  }
}

}  // namespace fedcustoms::training
