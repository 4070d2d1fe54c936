#include "common/training/risk_trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
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

absl::StatusOr<TrainResult> TrainRiskModel(models::RiskMlp& model,
                                           const data::DeclarationTable& table,
                                           std::span<const int64_t> rows,
                                           const v1::TrainingConfig& config) {
  const v1::TrainingConfig c = WithDefaults(config);
  if (absl::Status s = CheckTrainingConfig(c); !s.ok()) return s;
  if (absl::Status s = CheckRows(table, model->numeric_width(), model->buckets(), rows,
                                 /*need_labels=*/true);
      !s.ok()) {
    return s;
  }
  const auto n = static_cast<int64_t>(rows.size());
  if (n < 2)
    return absl::InvalidArgumentError(absl::StrCat("training needs at least 2 rows, got ", n));

  int64_t positives = 0;
  for (int64_t r : rows) positives += table.labels[r] == 1.0f ? 1 : 0;

  TrainResult result;
  result.samples = n;
  result.positive_weight = PositiveWeight(positives, n - positives, c);
  // BatchNorm cannot train on a single row.
  const int64_t batch_size = std::max<int64_t>(c.batch_size(), 2);

  try {
    const at::Tensor numeric = NumericTensor(table, rows);
    const at::Tensor categorical = CategoricalTensor(table, rows);
    const at::Tensor labels = LabelTensor(table, rows);
    const at::Tensor pos_weight = torch::full({1}, result.positive_weight, torch::kFloat32);
    namespace F = torch::nn::functional;
    const auto loss_options = F::BinaryCrossEntropyWithLogitsFuncOptions().pos_weight(pos_weight);

    // The local column statistics: used to standardize only when the model
    // has none yet (a fresh model), and sent back in the state after training
    // so the aggregate becomes the federation's statistics.
    const at::Tensor local_mean = numeric.mean(0);
    const at::Tensor local_variance = numeric.var(0, /*unbiased=*/true);
    if (!model->HasStandardization()) model->SetStandardization(local_mean, local_variance);
    model->train();
    model->SeedDropout(c.seed() ^ kDropoutSeedMix);
    std::unique_ptr<torch::optim::Optimizer> optimizer;
    if (c.optimizer() == "adam") {
      optimizer = std::make_unique<torch::optim::Adam>(
          model->parameters(), torch::optim::AdamOptions(c.learning_rate()));
    } else {
      optimizer = std::make_unique<torch::optim::SGD>(model->parameters(),
                                                      torch::optim::SGDOptions(c.learning_rate()));
    }
    at::Generator shuffle = at::make_generator<at::CPUGeneratorImpl>(c.seed());
    // FedProx: the parameters the round started from. The proximal term
    // (mu/2)||w - w_global||^2 enters through its gradient mu (w - w_global),
    // added after backward(); the reported loss stays the data loss.
    const double mu = c.proximal_mu();
    std::vector<at::Tensor> start_parameters;
    if (mu > 0) {
      for (const at::Tensor& p : model->parameters()) start_parameters.push_back(p.detach().clone());
    }

    for (uint32_t epoch = 0; epoch < c.local_epochs(); ++epoch) {
      const at::Tensor order = torch::randperm(n, shuffle, torch::dtype(torch::kInt64));
      double loss_sum = 0;
      for (int64_t start = 0; start < n;) {
        int64_t end = std::min(start + batch_size, n);
        if (n - end == 1) end = n;  // no single-row last batch
        const at::Tensor index = order.slice(0, start, end);
        optimizer->zero_grad();
        const at::Tensor logits =
            model->forward(numeric.index_select(0, index), categorical.index_select(0, index));
        const at::Tensor loss = F::binary_cross_entropy_with_logits(
            logits, labels.index_select(0, index), loss_options);
        const double value = loss.item<double>();
        if (!std::isfinite(value)) {
          model->eval();
          return absl::InternalError(absl::StrCat("training diverged: loss is ", value,
                                                  " at epoch ", epoch + 1, ", step ",
                                                  result.steps + 1));
        }
        loss.backward();
        if (mu > 0) {
          torch::NoGradGuard no_grad;
          const std::vector<at::Tensor> parameters = model->parameters();
          for (size_t i = 0; i < parameters.size(); ++i) {
            at::Tensor grad = parameters[i].mutable_grad();
            if (grad.defined()) grad.add_(parameters[i] - start_parameters[i], mu);
          }
        }
        optimizer->step();
        ++result.steps;
        loss_sum += value * static_cast<double>(end - start);
        start = end;
      }
      result.mean_loss = loss_sum / static_cast<double>(n);
      result.samples_seen += n;
    }
    model->SetStandardization(local_mean, local_variance);
  } catch (const c10::Error& e) {
    model->eval();
    return absl::InternalError(absl::StrCat("training failed: ", e.what_without_backtrace()));
  }
  model->eval();
  return result;
}

}  // namespace fedcustoms::training
