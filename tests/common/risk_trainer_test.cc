#include "common/training/risk_trainer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "common/tensor/named_tensors.h"
#include "common/training/risk_evaluator.h"
#include "common/training/table_tensors.h"

namespace fedcustoms::training {
namespace {

using ::testing::ElementsAre;

// Declarations with a learnable signal: fraud comes from two origins and from
// high declared values; the HS code and the weight are noise.
data::DeclarationTable SyntheticTable(size_t rows, uint32_t seed = 11) {
  data::DeclarationTable t;
  t.rows = rows;
  t.numeric_names = {"value", "weight"};
  t.categorical_names = {"origin", "hs"};
  t.buckets = {16, 32};
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int64_t> origin(0, 15);
  std::uniform_int_distribution<int64_t> hs(0, 31);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (size_t i = 0; i < rows; ++i) {
    const float value = 8.0f + 1.5f * normal(rng);  // log1p of a declared value
    const float weight = 3.0f + normal(rng);
    const int64_t o = origin(rng);
    const double logit = -4.0 + 4.0 * (o == 3 || o == 7) + 3.0 * (value > 9.5f);
    t.numeric.push_back(value);
    t.numeric.push_back(weight);
    t.categorical.push_back(o);
    t.categorical.push_back(hs(rng));
    t.labels.push_back(unit(rng) < 1.0 / (1.0 + std::exp(-logit)) ? 1.0f : 0.0f);
  }
  return t;
}

std::vector<int64_t> Range(int64_t begin, int64_t end) {
  std::vector<int64_t> rows(end - begin);
  std::iota(rows.begin(), rows.end(), begin);
  return rows;
}

models::RiskMlp ModelFor(const data::DeclarationTable& t, uint64_t seed = 1) {
  v1::RiskModelConfig c;
  c.add_hidden_units(16);
  c.add_hidden_units(8);
  c.set_embedding_dim(4);
  return models::RiskMlp(static_cast<int64_t>(t.numeric_width()), t.buckets, c, seed);
}

v1::TrainingConfig FastConfig(uint32_t epochs = 4) {
  v1::TrainingConfig c;
  c.set_local_epochs(epochs);
  c.set_batch_size(64);
  c.set_learning_rate(0.01);
  return c;
}

// Probability that a random positive scores above a random negative.
double Auc(const std::vector<float>& scores, const data::DeclarationTable& t,
           const std::vector<int64_t>& rows) {
  double wins = 0;
  double pairs = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (t.labels[rows[i]] != 1.0f) continue;
    for (size_t j = 0; j < rows.size(); ++j) {
      if (t.labels[rows[j]] != 0.0f) continue;
      wins += scores[i] > scores[j] ? 1.0 : scores[i] == scores[j] ? 0.5 : 0.0;
      pairs += 1;
    }
  }
  return wins / pairs;
}

bool AllEqual(const tensor::NamedTensors& a, const tensor::NamedTensors& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].first != b[i].first || !torch::equal(a[i].second, b[i].second)) return false;
  }
  return true;
}

TEST(RiskTrainer, TrainingLowersTheLossAndSeparatesTheClasses) {
  const data::DeclarationTable table = SyntheticTable(3000);
  const std::vector<int64_t> train = Range(0, 2400);
  const std::vector<int64_t> holdout = Range(2400, 3000);
  models::RiskMlp model = ModelFor(table);

  const double loss_before = *MeanBceLoss(model, table, holdout);
  const double auc_before = Auc(PredictRisk(model, table, holdout), table, holdout);
  absl::StatusOr<TrainResult> result = TrainRiskModel(model, table, train, FastConfig());
  ASSERT_TRUE(result.ok()) << result.status();
  const double loss_after = *MeanBceLoss(model, table, holdout);
  const double auc_after = Auc(PredictRisk(model, table, holdout), table, holdout);

  EXPECT_LT(loss_after, loss_before);
  EXPECT_LT(loss_after, 0.45);
  EXPECT_GT(auc_after, 0.8);
  EXPECT_GT(auc_after, auc_before + 0.1);
  EXPECT_TRUE(std::isfinite(result->mean_loss));
  EXPECT_FALSE(model->is_training());
}

TEST(RiskTrainer, ReportsCountsAndTheDerivedPositiveWeight) {
  const data::DeclarationTable table = SyntheticTable(1000);
  const std::vector<int64_t> rows = Range(0, 1000);
  int64_t positives = 0;
  for (int64_t r : rows) positives += table.labels[r] == 1.0f;
  ASSERT_GT(positives, 0);
  models::RiskMlp model = ModelFor(table);
  absl::StatusOr<TrainResult> result = TrainRiskModel(model, table, rows, FastConfig(3));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->samples, 1000);
  EXPECT_EQ(result->samples_seen, 3000);
  EXPECT_EQ(result->steps, 3 * 16);  // ceil(1000 / 64) per epoch
  EXPECT_DOUBLE_EQ(result->positive_weight,
                   std::sqrt(static_cast<double>(1000 - positives) / positives));
}

TEST(RiskTrainer, SameSeedGivesIdenticalWeights) {
  const data::DeclarationTable table = SyntheticTable(800);
  const std::vector<int64_t> rows = Range(0, 800);
  models::RiskMlp a = ModelFor(table);
  models::RiskMlp b = ModelFor(table);
  ASSERT_TRUE(TrainRiskModel(a, table, rows, FastConfig(2)).ok());
  ASSERT_TRUE(TrainRiskModel(b, table, rows, FastConfig(2)).ok());
  EXPECT_TRUE(AllEqual(tensor::StateOf(*a), tensor::StateOf(*b)));

  models::RiskMlp c = ModelFor(table);
  v1::TrainingConfig other_seed = FastConfig(2);
  other_seed.set_seed(2);
  ASSERT_TRUE(TrainRiskModel(c, table, rows, other_seed).ok());
  EXPECT_FALSE(AllEqual(tensor::StateOf(*a), tensor::StateOf(*c)));
}

TEST(RiskTrainer, DoesNotUseTheGlobalRng) {
  const data::DeclarationTable table = SyntheticTable(300);
  const std::vector<int64_t> rows = Range(0, 300);
  models::RiskMlp a = ModelFor(table);
  models::RiskMlp b = ModelFor(table);
  torch::manual_seed(1);
  ASSERT_TRUE(TrainRiskModel(a, table, rows, FastConfig(1)).ok());
  torch::manual_seed(999);
  ASSERT_TRUE(TrainRiskModel(b, table, rows, FastConfig(1)).ok());
  EXPECT_TRUE(AllEqual(tensor::StateOf(*a), tensor::StateOf(*b)));
}

// Squared distance of the trained parameters from where they started.
double DriftOf(const models::RiskMlp& trained, const std::vector<at::Tensor>& start) {
  const std::vector<at::Tensor> now = trained->parameters();
  double drift = 0;
  for (size_t i = 0; i < now.size(); ++i) drift += (now[i] - start[i]).pow(2).sum().item<double>();
  return drift;
}

// FedProx: the proximal term pulls the local model towards the global one it
// started from, more strongly as mu grows; mu = 0 is plain training exactly.
TEST(RiskTrainer, ProximalTermKeepsTheModelNearItsStart) {
  const data::DeclarationTable table = SyntheticTable(800);
  const std::vector<int64_t> rows = Range(0, 800);
  std::vector<double> drift;
  for (double mu : {0.0, 1.0, 100.0}) {
    models::RiskMlp model = ModelFor(table);
    std::vector<at::Tensor> start;
    for (const at::Tensor& p : model->parameters()) start.push_back(p.detach().clone());
    v1::TrainingConfig config = FastConfig(3);
    config.set_optimizer("sgd");
    config.set_learning_rate(0.005);
    config.set_proximal_mu(mu);
    absl::StatusOr<TrainResult> result = TrainRiskModel(model, table, rows, config);
    ASSERT_TRUE(result.ok()) << result.status();
    drift.push_back(DriftOf(model, start));
  }
  EXPECT_LT(drift[1], drift[0]);
  EXPECT_LT(drift[2], 0.5 * drift[1]);

  models::RiskMlp plain = ModelFor(table);
  models::RiskMlp zero_mu = ModelFor(table);
  v1::TrainingConfig config = FastConfig(1);
  ASSERT_TRUE(TrainRiskModel(plain, table, rows, config).ok());
  config.set_proximal_mu(0);
  ASSERT_TRUE(TrainRiskModel(zero_mu, table, rows, config).ok());
  EXPECT_TRUE(AllEqual(tensor::StateOf(*plain), tensor::StateOf(*zero_mu)));
}

TEST(RiskTrainer, ProximalMuOutOfRangeIsRefused) {
  v1::TrainingConfig config = FastConfig(1);
  config.set_proximal_mu(-1);
  absl::Status s = CheckTrainingConfig(config);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(s.message()).find("proximal_mu -1 is not in [0, 1000]"), std::string::npos)
      << s;
}

TEST(RiskTrainer, StandardizationBecomesTheLocalColumnStatistics) {
  const data::DeclarationTable table = SyntheticTable(640);
  const std::vector<int64_t> rows = Range(0, 640);
  models::RiskMlp model = ModelFor(table);
  EXPECT_FALSE(model->HasStandardization());
  ASSERT_TRUE(TrainRiskModel(model, table, rows, FastConfig(1)).ok());
  EXPECT_TRUE(model->HasStandardization());
  const torch::Tensor numeric = NumericTensor(table, rows);
  for (const auto& [name, t] : tensor::StateOf(*model)) {
    if (name == "standardize.running_mean") {
      EXPECT_TRUE(torch::allclose(t, numeric.mean(0), 1e-5, 1e-4)) << t;
    }
    if (name == "standardize.running_var") {
      EXPECT_TRUE(torch::allclose(t, numeric.var(0), 1e-5, 1e-4)) << t;
    }
  }
}

TEST(RiskTrainer, TrainsWithTheGlobalStandardizationItWasGiven) {
  // Two nodes given the same global statistics: training on different rows
  // must not change how the other rows' features are scaled during training.
  // With fixed statistics, training is deterministic in the statistics given,
  // so a shifted global mean changes the trained weights.
  const data::DeclarationTable table = SyntheticTable(640);
  const std::vector<int64_t> rows = Range(0, 640);
  models::RiskMlp a = ModelFor(table);
  models::RiskMlp b = ModelFor(table);
  const torch::Tensor numeric = NumericTensor(table, rows);
  a->SetStandardization(numeric.mean(0), numeric.var(0));
  b->SetStandardization(numeric.mean(0) + 1.0, numeric.var(0));
  ASSERT_TRUE(TrainRiskModel(a, table, rows, FastConfig(1)).ok());
  ASSERT_TRUE(TrainRiskModel(b, table, rows, FastConfig(1)).ok());
  bool hidden_differs = false;
  const auto sa = tensor::StateOf(*a);
  const auto sb = tensor::StateOf(*b);
  for (size_t i = 0; i < sa.size(); ++i) {
    if (sa[i].first == "hidden.0.weight")
      hidden_differs = !torch::equal(sa[i].second, sb[i].second);
    if (sa[i].first == "standardize.running_mean") {
      EXPECT_TRUE(torch::equal(sa[i].second, sb[i].second));  // both end at the local mean
    }
  }
  EXPECT_TRUE(hidden_differs);
}

TEST(RiskTrainer, SgdAlsoLearns) {
  const data::DeclarationTable table = SyntheticTable(2000);
  const std::vector<int64_t> rows = Range(0, 2000);
  models::RiskMlp model = ModelFor(table);
  v1::TrainingConfig c = FastConfig(3);
  c.set_optimizer("sgd");
  c.set_learning_rate(0.1);
  const double before = *MeanBceLoss(model, table, rows);
  ASSERT_TRUE(TrainRiskModel(model, table, rows, c).ok());
  EXPECT_LT(*MeanBceLoss(model, table, rows), before);
}

TEST(RiskTrainer, SingleRowLastBatchIsMerged) {
  const data::DeclarationTable table = SyntheticTable(5);
  models::RiskMlp model = ModelFor(table);
  v1::TrainingConfig c = FastConfig(1);
  c.set_batch_size(2);
  absl::StatusOr<TrainResult> result = TrainRiskModel(model, table, Range(0, 5), c);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->steps, 2);
  c.set_batch_size(1);  // treated as 2
  result = TrainRiskModel(model, table, Range(0, 5), c);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->steps, 2);
}

TEST(RiskTrainer, PositiveWeightRules) {
  v1::TrainingConfig c;
  EXPECT_DOUBLE_EQ(PositiveWeight(10, 90, c), 3.0);
  EXPECT_DOUBLE_EQ(PositiveWeight(1, 99999, c), 30.0);  // default cap
  c.set_max_positive_weight(5);
  EXPECT_DOUBLE_EQ(PositiveWeight(1, 99999, c), 5.0);
  EXPECT_DOUBLE_EQ(PositiveWeight(0, 100, c), 1.0);
  EXPECT_DOUBLE_EQ(PositiveWeight(100, 0, c), 1.0);
  c.set_positive_weight(7.5);
  EXPECT_DOUBLE_EQ(PositiveWeight(10, 90, c), 7.5);
}

TEST(RiskTrainer, ZeroConfigValuesTakeTheDocumentedDefaults) {
  const v1::TrainingConfig c = WithDefaults(v1::TrainingConfig());
  EXPECT_EQ(c.local_epochs(), 1u);
  EXPECT_EQ(c.batch_size(), 256u);
  EXPECT_DOUBLE_EQ(c.learning_rate(), 1e-3);
  EXPECT_EQ(c.optimizer(), "adam");
  EXPECT_DOUBLE_EQ(c.positive_weight(), 0);
  EXPECT_DOUBLE_EQ(c.max_positive_weight(), 30);
  EXPECT_EQ(c.seed(), 1u);
  EXPECT_TRUE(CheckTrainingConfig(c).ok());
}

TEST(RiskTrainer, PredictRiskFollowsTheRowsAcrossBatches) {
  const data::DeclarationTable table = SyntheticTable(5000);
  models::RiskMlp model = ModelFor(table);
  std::vector<int64_t> rows = Range(0, 5000);
  std::reverse(rows.begin(), rows.end());
  const std::vector<float> scores = PredictRisk(model, table, rows);
  ASSERT_EQ(scores.size(), rows.size());
  torch::NoGradGuard no_grad;
  const torch::Tensor expected =
      torch::sigmoid(model->forward(NumericTensor(table, rows), CategoricalTensor(table, rows)));
  EXPECT_TRUE(torch::allclose(torch::tensor(scores), expected, 1e-5, 1e-6));
  for (float s : scores) ASSERT_TRUE(s > 0.0f && s < 1.0f);
  EXPECT_TRUE(PredictRisk(model, table, {}).empty());
}

TEST(RiskTrainer, TableTensorsGatherRows) {
  const data::DeclarationTable table = SyntheticTable(4);
  const std::vector<int64_t> rows{2, 0};
  const torch::Tensor numeric = NumericTensor(table, rows);
  EXPECT_EQ(numeric.sizes(), torch::IntArrayRef({2, 2}));
  EXPECT_EQ(numeric[0][1].item<float>(), table.numeric[2 * 2 + 1]);
  EXPECT_EQ(CategoricalTensor(table, rows)[1][0].item<int64_t>(), table.categorical[0]);
  EXPECT_EQ(LabelTensor(table, rows)[0].item<float>(), table.labels[2]);
  EXPECT_EQ(NumericTensor(table).sizes(), torch::IntArrayRef({4, 2}));
  EXPECT_EQ(CategoricalTensor(table).scalar_type(), torch::kInt64);
}

// Tests of the error paths follow: each leaves the model unchanged.

class RiskTrainerErrors : public ::testing::Test {
 protected:
  void SetUp() override { before_ = tensor::CloneState(tensor::StateOf(*model_)); }
  void ExpectRejected(const data::DeclarationTable& t, const std::vector<int64_t>& rows,
                      const v1::TrainingConfig& c, const std::string& message) {
    absl::StatusOr<TrainResult> result = TrainRiskModel(model_, t, rows, c);
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << result.status();
    EXPECT_EQ(result.status().message(), message);
    EXPECT_TRUE(AllEqual(before_, tensor::StateOf(*model_)));
  }

  data::DeclarationTable table_ = SyntheticTable(100);
  std::vector<int64_t> rows_ = Range(0, 100);
  models::RiskMlp model_ = ModelFor(table_);
  tensor::NamedTensors before_;
};

TEST_F(RiskTrainerErrors, NanFeature) {
  data::DeclarationTable t = table_;
  t.numeric[5 * 2] = std::numeric_limits<float>::quiet_NaN();
  ExpectRejected(t, rows_, FastConfig(), "row 5, numeric feature \"value\" is nan");
  t.numeric[5 * 2] = std::numeric_limits<float>::infinity();
  ExpectRejected(t, rows_, FastConfig(), "row 5, numeric feature \"value\" is inf");
}

TEST_F(RiskTrainerErrors, BucketOutOfRange) {
  data::DeclarationTable t = table_;
  t.categorical[7 * 2 + 1] = 32;
  ExpectRejected(t, rows_, FastConfig(),
                 "row 7, categorical feature \"hs\" has bucket 32, not in [0, 32)");
}

TEST_F(RiskTrainerErrors, LabelNotZeroOrOne) {
  data::DeclarationTable t = table_;
  t.labels[3] = 0.5f;
  ExpectRejected(t, rows_, FastConfig(), "row 3: label 0.5 is not 0 or 1");
}

TEST_F(RiskTrainerErrors, NoLabels) {
  data::DeclarationTable t = table_;
  t.labels.clear();
  ExpectRejected(t, rows_, FastConfig(), "the table has no labels");
}

TEST_F(RiskTrainerErrors, RowOutOfRange) {
  ExpectRejected(table_, {0, 100}, FastConfig(),
                 "row index 100 is out of range (the table has 100 rows)");
  ExpectRejected(table_, {-1}, FastConfig(),
                 "row index -1 is out of range (the table has 100 rows)");
}

TEST_F(RiskTrainerErrors, TableDoesNotFitTheModel) {
  data::DeclarationTable t = table_;
  t.buckets[0] = 17;
  ExpectRejected(t, rows_, FastConfig(),
                 "categorical feature \"origin\" has 17 buckets in the table, 16 in the model");
  data::DeclarationTable short_numeric = table_;
  short_numeric.numeric.pop_back();
  ExpectRejected(short_numeric, rows_, FastConfig(),
                 "table.numeric has 199 values, expected 100 rows x 2 features");
}

TEST_F(RiskTrainerErrors, TooFewRows) {
  ExpectRejected(table_, {4}, FastConfig(), "training needs at least 2 rows, got 1");
}

TEST_F(RiskTrainerErrors, BadConfig) {
  v1::TrainingConfig c = FastConfig();
  c.set_optimizer("rmsprop");
  ExpectRejected(table_, rows_, c, "optimizer \"rmsprop\" is not \"adam\" or \"sgd\"");
  c = FastConfig();
  c.set_learning_rate(-1);
  ExpectRejected(table_, rows_, c, "learning_rate -1 is not in (0, 10]");
  c = FastConfig();
  c.set_positive_weight(std::numeric_limits<double>::quiet_NaN());
  ExpectRejected(table_, rows_, c, "positive_weight nan is not 0 or in (0, 1e6]");
}

TEST_F(RiskTrainerErrors, DivergenceIsAReturnedError) {
  tensor::NamedTensors poisoned = tensor::CloneState(before_);
  for (auto& [name, t] : poisoned) {
    if (name == "output.bias") t.fill_(std::numeric_limits<float>::quiet_NaN());
  }
  ASSERT_TRUE(tensor::LoadState(*model_, poisoned).ok());
  absl::StatusOr<TrainResult> result = TrainRiskModel(model_, table_, rows_, FastConfig());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(result.status().message(), "training diverged: loss is nan at epoch 1, step 1");
}

TEST_F(RiskTrainerErrors, MeanBceLossRejectsEmptyAndBadRows) {
  EXPECT_EQ(MeanBceLoss(model_, table_, {}).status().message(), "no rows to evaluate");
  EXPECT_EQ(MeanBceLoss(model_, table_, std::vector<int64_t>{100}).status().message(),
            "row index 100 is out of range (the table has 100 rows)");
}

}  // namespace
}  // namespace fedcustoms::training
