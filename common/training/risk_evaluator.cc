#include "common/training/risk_evaluator.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/training/table_tensors.h"

namespace fedcustoms::training {
namespace {

constexpr size_t kEvalBatch = 4096;

}  // namespace

std::vector<float> PredictRisk(models::RiskMlp& model, const data::DeclarationTable& table,
                               std::span<const int64_t> rows) {
  torch::NoGradGuard no_grad;
  model->eval();
  std::vector<float> scores(rows.size());
  for (size_t start = 0; start < rows.size(); start += kEvalBatch) {
    const std::span<const int64_t> batch =
        rows.subspan(start, std::min(kEvalBatch, rows.size() - start));
    const at::Tensor p =
        torch::sigmoid(model->forward(NumericTensor(table, batch), CategoricalTensor(table, batch)))
            .contiguous();
    std::memcpy(scores.data() + start, p.data_ptr<float>(), batch.size() * sizeof(float));
  }
  return scores;
}

absl::StatusOr<double> MeanBceLoss(models::RiskMlp& model, const data::DeclarationTable& table,
                                   std::span<const int64_t> rows) {
  if (rows.empty()) return absl::InvalidArgumentError("no rows to evaluate");
  if (absl::Status s =
          CheckRows(table, model->numeric_width(), model->buckets(), rows, /*need_labels=*/true);
      !s.ok()) {
    return s;
  }
  namespace F = torch::nn::functional;
  torch::NoGradGuard no_grad;
  model->eval();
  double sum = 0;
  try {
    for (size_t start = 0; start < rows.size(); start += kEvalBatch) {
      const std::span<const int64_t> batch =
          rows.subspan(start, std::min(kEvalBatch, rows.size() - start));
      const at::Tensor logits =
          model->forward(NumericTensor(table, batch), CategoricalTensor(table, batch));
      sum += F::binary_cross_entropy_with_logits(
                 logits, LabelTensor(table, batch),
                 F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kSum))
                 .item<double>();
    }
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("evaluation failed: ", e.what_without_backtrace()));
  }
  return sum / static_cast<double>(rows.size());
}

}  // namespace fedcustoms::training
