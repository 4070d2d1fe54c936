// Explanations of declaration scores: integrated gradients on a trained risk
// model (completeness, attribution to columns, which feature drives which
// declaration), the anomaly model's per-feature errors, counterfactuals, and
// `fedcustoms score` end to end on a signed model directory.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "analyst/explain/declaration_explainer.h"
#include "analyst/model/declarations_scoring.h"
#include "analyst/model/pulled_model.h"
#include "common/data/declaration_schema.h"
#include "common/data/declarations_csv.h"
#include "common/io/atomic_file.h"
#include "common/models/boosted_trees_state.h"
#include "common/task/declaration_models.h"
#include "common/task/risk_task.h"
#include "common/tensor/named_tensors.h"
#include "common/training/anomaly_trainer.h"
#include "common/training/risk_trainer.h"
#include "common/training/table_tensors.h"
#include "common/trees/boosted_trees_trainer.h"
#include "tests/support/pulled_model_dir.h"
#include "tests/support/small_declaration_schema.h"

namespace fedcustoms::analyst {
namespace {

using ::testing::HasSubstr;

// A file where non-compliance has two known causes: origin "NG", and a
// declared value above 5000 (over-invoicing). Everything else is noise.
std::string MakeCsv(size_t rows, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::normal_distribution<double> normal(0, 1);
  std::string csv = testing_support::kSmallSchemaHeader;
  for (size_t r = 0; r < rows; ++r) {
    const double o = u(rng);
    const char* origin = o < 0.4    ? "CN"
                         : o < 0.65 ? "DE"
                         : o < 0.85 ? "US"
                         : o < 0.94 ? "TR"
                                    : "NG";
    const double value = std::exp(6.0 + 1.5 * normal(rng));
    const double mass = 100 + 20 * normal(rng);
    const char* hs = u(rng) < 0.5 ? "610910" : "850440";
    const bool positive = std::string(origin) == "NG" || value > 5000;
    absl::StrAppend(&csv, "D", r, ",2024-03-01,", value, ",", mass, ",", origin, ",", hs, ",",
                    u(rng) < 0.3 ? "random" : "risk", ",", positive ? 1 : 0, "\n");
  }
  return csv;
}

class DeclarationExplanationsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    torch::set_num_threads(1);
    dir_ = new std::string(std::filesystem::temp_directory_path() /
                           absl::StrCat("fedcustoms-explain-", ::getpid()));
    std::filesystem::create_directories(*dir_);
    ASSERT_TRUE(
        io::WriteFileAtomically(*dir_ + "/schema.json", testing_support::kSmallSchemaJson).ok());
    ASSERT_TRUE(io::WriteFileAtomically(*dir_ + "/data.csv", MakeCsv(3000, 11)).ok());
    auto schema = data::LoadDeclarationSchema(*dir_ + "/schema.json");
    ASSERT_TRUE(schema.ok()) << schema.status();
    auto table = data::ReadDeclarationsCsv(*dir_ + "/data.csv", *schema, v1::FAIL);
    ASSERT_TRUE(table.ok()) << table.status();
    std::vector<int64_t> rows(table->rows);
    std::iota(rows.begin(), rows.end(), 0);
    v1::TrainingConfig training;
    training.set_local_epochs(12);
    training.set_batch_size(64);
    training.set_learning_rate(0.01);
    training.set_seed(3);

    risk_spec_ = new task::ModelSpec;
    risk_spec_->kind = v1::TASK_RISK;
    risk_spec_->schema = *schema;
    auto risk = task::MakeRiskModel(*risk_spec_);
    ASSERT_TRUE(risk.ok()) << risk.status();
    auto trained = training::TrainRiskModel(*risk, *table, rows, training);
    ASSERT_TRUE(trained.ok()) << trained.status();
    risk_dir_ = new std::string(*dir_ + "/risk");
    public_key_ = new std::string;
    ASSERT_TRUE(testing::WritePulledModelDir(*risk_dir_, *risk_spec_, tensor::StateOf(**risk), 4,
                                             public_key_)
                    .ok());

    task::ModelSpec anomaly_spec = *risk_spec_;
    anomaly_spec.kind = v1::TASK_ANOMALY;
    auto anomaly = task::MakeAnomalyModel(anomaly_spec);
    ASSERT_TRUE(anomaly.ok()) << anomaly.status();
    training.set_local_epochs(4);
    ASSERT_TRUE(training::TrainAnomalyModel(*anomaly, *table, rows, training).ok());
    anomaly_dir_ = new std::string(*dir_ + "/anomaly");
    ASSERT_TRUE(testing::WritePulledModelDir(*anomaly_dir_, anomaly_spec,
                                             tensor::StateOf(**anomaly), 2, public_key_)
                    .ok());
  }

  static void TearDownTestSuite() { std::filesystem::remove_all(*dir_); }

  void SetUp() override {
    auto schema = data::LoadDeclarationSchema(*dir_ + "/schema.json");
    ASSERT_TRUE(schema.ok());
    schema_ = *schema;
    data::ReadOptions read;
    read.raw_columns = {"origin"};
    auto table = data::ReadDeclarationsCsv(*dir_ + "/data.csv", schema_, read);
    ASSERT_TRUE(table.ok()) << table.status();
    table_ = *std::move(table);
    rows_.resize(table_.rows);
    std::iota(rows_.begin(), rows_.end(), 0);
  }

  DeclarationExplainer Explainer(const std::string& model_dir) {
    auto pulled = LoadPulledModel(model_dir, *public_key_, schema_);
    EXPECT_TRUE(pulled.ok()) << pulled.status();
    auto explainer = DeclarationExplainer::Create(*pulled);
    EXPECT_TRUE(explainer.ok()) << explainer.status();
    return *std::move(explainer);
  }

  // Row index of the first declaration matching `pred`.
  template <typename Pred>
  int64_t FindRow(Pred pred) const {
    for (size_t r = 0; r < table_.rows; ++r) {
      const std::string& origin = table_.raw_columns[0].values[r];
      const double value = std::expm1(table_.numeric[r * 2]);
      if (pred(origin, value)) return static_cast<int64_t>(r);
    }
    ADD_FAILURE() << "no row matches";
    return 0;
  }

  static size_t Feature(const DeclarationExplainer& e, const std::string& name) {
    const auto& names = e.feature_names();
    return static_cast<size_t>(std::find(names.begin(), names.end(), name) - names.begin());
  }

  static size_t TopFeature(const Explanation& e) {
    size_t best = 0;
    for (size_t k = 1; k < e.contributions.size(); ++k) {
      if (std::abs(e.contributions[k]) > std::abs(e.contributions[best])) best = k;
    }
    return best;
  }

  inline static std::string* dir_ = nullptr;
  inline static std::string* risk_dir_ = nullptr;
  inline static std::string* anomaly_dir_ = nullptr;
  inline static std::string* public_key_ = nullptr;
  inline static task::ModelSpec* risk_spec_ = nullptr;
  v1::DeclarationSchema schema_;
  data::DeclarationTable table_;
  std::vector<int64_t> rows_;
};

TEST_F(DeclarationExplanationsTest, ContributionsSumToScoreMinusBaselineOnEveryRow) {
  DeclarationExplainer explainer = Explainer(*risk_dir_);
  ASSERT_TRUE(explainer.SetReference(table_, rows_).ok());
  auto explanations = explainer.Explain(table_, rows_);
  ASSERT_TRUE(explanations.ok()) << explanations.status();
  auto scores = explainer.scorer().Score(table_, rows_);
  ASSERT_TRUE(scores.ok());
  ASSERT_EQ(explanations->size(), table_.rows);
  double worst = 0;
  for (size_t r = 0; r < table_.rows; ++r) {
    const Explanation& e = (*explanations)[r];
    // One contribution per column: 2 numeric + 2 categorical, never per bucket.
    ASSERT_EQ(e.contributions.size(), 4u);
    EXPECT_NEAR(e.score, (*scores)[r], 1e-5);
    EXPECT_NEAR(e.baseline_score, explainer.baseline_score(), 1e-6);
    const double sum = std::accumulate(e.contributions.begin(), e.contributions.end(), 0.0);
    const double missing = std::abs(sum - (e.score - e.baseline_score));
    EXPECT_NEAR(missing, e.completeness_gap, 1e-5) << "row " << r;
    worst = std::max<double>(worst, e.completeness_gap);
  }
  EXPECT_LE(worst, 1e-3);
  EXPECT_STREQ(explainer.method(), "integrated_gradients");
}

// A logistic model with a cross: pulled through its signed manifest (the
// cross travels as hyper-parameters and is resolved against the schema),
// scored and explained. A cross's attribution is split between its two
// columns, so the contributions still sum to the score's change: exactly,
// the model being linear in its encoded input.
TEST_F(DeclarationExplanationsTest, ALogisticModelWithACrossIsExplainedCompletely) {
  task::ModelSpec spec = *risk_spec_;
  spec.risk = v1::RiskModelConfig();
  spec.risk.set_kind(v1::RiskModelConfig::LOGISTIC);
  v1::CategoricalCross* cross = spec.risk.add_crosses();
  cross->add_columns("origin");
  cross->add_columns("hs");
  cross->set_hash_buckets(512);
  auto model = task::MakeRiskModel(spec);
  ASSERT_TRUE(model.ok()) << model.status();
  v1::TrainingConfig training;
  training.set_local_epochs(5);
  training.set_batch_size(64);
  training.set_learning_rate(0.5);
  training.set_optimizer("sgd");
  ASSERT_TRUE(training::TrainRiskModel(*model, table_, rows_, training).ok());
  {
    // The cross learnt something: its weights are not all 0.
    const at::Tensor w = (*model)->named_parameters()["crosses.0.weight"];
    ASSERT_GT(w.abs().max().item<float>(), 1e-3);
  }
  const std::string dir = *dir_ + "/logistic";
  ASSERT_TRUE(
      testing::WritePulledModelDir(dir, spec, tensor::StateOf(**model), 6, public_key_).ok());
  DeclarationExplainer explainer = Explainer(dir);
  ASSERT_TRUE(explainer.SetReference(table_, rows_).ok());
  auto explanations = explainer.Explain(table_, rows_);
  ASSERT_TRUE(explanations.ok()) << explanations.status();
  auto scores = explainer.scorer().Score(table_, rows_);
  ASSERT_TRUE(scores.ok());
  (*model)->eval();
  const at::Tensor direct = torch::sigmoid((*model)->forward(
      training::NumericTensor(table_, rows_), training::CategoricalTensor(table_, rows_)));
  double worst = 0;
  for (size_t r = 0; r < table_.rows; ++r) {
    const Explanation& e = (*explanations)[r];
    ASSERT_EQ(e.contributions.size(), 4u);
    EXPECT_NEAR(e.score, direct[static_cast<int64_t>(r)].item<float>(), 1e-5) << "row " << r;
    EXPECT_NEAR(e.score, (*scores)[r], 1e-5);
    const double sum = std::accumulate(e.contributions.begin(), e.contributions.end(), 0.0);
    worst = std::max(worst, std::abs(sum - (e.score - e.baseline_score)));
  }
  EXPECT_LE(worst, 1e-4);
}

// Dummy and completeness axioms, row by row: a declaration that differs from
// the baseline declaration in one feature only gets all of its score change
// on that feature and exactly 0 on every other.
TEST_F(DeclarationExplanationsTest, OnlyTheFeatureThatDiffersFromTheBaselineGetsAContribution) {
  DeclarationExplainer explainer = Explainer(*risk_dir_);
  const int64_t row =
      FindRow([](const std::string& o, double v) { return o == "CN" && v > 200 && v < 300; });
  const std::vector<int64_t> reference = {row};
  ASSERT_TRUE(explainer.SetReference(table_, reference).ok());
  data::DeclarationTable changed = table_;
  changed.numeric[row * 2] += 4.0f;  // value x e^4, above the planted 5000; nothing else
  auto e = explainer.Explain(changed, reference);
  ASSERT_TRUE(e.ok());
  const Explanation& x = (*e)[0];
  const size_t value = Feature(explainer, "value");
  for (size_t k = 0; k < x.contributions.size(); ++k) {
    if (k != value) EXPECT_EQ(x.contributions[k], 0) << explainer.feature_names()[k];
  }
  EXPECT_NEAR(x.contributions[value], x.score - x.baseline_score, x.completeness_gap + 1e-6);
  EXPECT_GT(x.score - x.baseline_score, 0.5);
}

// Each contribution, not only their sum, matches a brute-force integral: a
// midpoint Riemann sum of autograd's gradient of P over 100 000 steps.
TEST_F(DeclarationExplanationsTest, ContributionsMatchABruteForceIntegral) {
  DeclarationExplainer explainer = Explainer(*risk_dir_);
  ASSERT_TRUE(explainer.SetReference(table_, rows_).ok());
  const std::vector<int64_t> some = {3, 250, 1111, 2024};
  auto e = explainer.Explain(table_, some);
  ASSERT_TRUE(e.ok());
  models::RiskMlp& model = *explainer.scorer().risk_model();
  torch::Tensor encoded, baseline;
  {
    torch::NoGradGuard no_grad;
    encoded = model->Encode(training::NumericTensor(table_, some),
                            training::CategoricalTensor(table_, some));
    baseline = model
                   ->Encode(training::NumericTensor(table_, rows_),
                            training::CategoricalTensor(table_, rows_))
                   .to(torch::kFloat64)
                   .mean(0)
                   .to(torch::kFloat32);
  }
  constexpr int64_t kSteps = 100000;
  const int64_t dim = model->config().embedding_dim();
  for (size_t i = 0; i < some.size(); ++i) {
    const torch::Tensor delta = encoded[static_cast<int64_t>(i)] - baseline;
    torch::Tensor gradient_sum = torch::zeros_like(baseline, torch::kFloat64);
    for (int64_t start = 0; start < kSteps; start += 20000) {
      const torch::Tensor t = (torch::arange(start, start + 20000, torch::kFloat64) + 0.5) / kSteps;
      torch::Tensor path =
          (baseline.unsqueeze(0) + t.to(torch::kFloat32).unsqueeze(1) * delta.unsqueeze(0))
              .detach()
              .requires_grad_(true);
      const torch::Tensor p = torch::sigmoid(model->LogitsOfEncoded(path)).sum();
      gradient_sum += torch::autograd::grad({p}, {path})[0].to(torch::kFloat64).sum(0);
    }
    const torch::Tensor brute = gradient_sum / kSteps * delta.to(torch::kFloat64);
    // Folded per column as the explainer does: 2 numeric, then 2 embeddings.
    const std::vector<double> want = {brute[0].item<double>(), brute[1].item<double>(),
                                      brute.narrow(0, 2, dim).sum().item<double>(),
                                      brute.narrow(0, 2 + dim, dim).sum().item<double>()};
    for (size_t k = 0; k < want.size(); ++k) {
      EXPECT_NEAR((*e)[i].contributions[k], want[k], 2e-3)
          << "row " << some[i] << " " << explainer.feature_names()[k];
    }
  }
}

TEST_F(DeclarationExplanationsTest, RefinementShrinksTheGapFromFewSteps) {
  DeclarationExplainer explainer = Explainer(*risk_dir_);
  models::RiskMlp& model = *explainer.scorer().risk_model();
  torch::Tensor encoded, baseline;
  {
    torch::NoGradGuard no_grad;
    encoded = model->Encode(training::NumericTensor(table_, rows_),
                            training::CategoricalTensor(table_, rows_));
    baseline = encoded.mean(0);
  }
  IntegratedGradientsOptions coarse;
  coarse.steps = 2;
  coarse.max_steps = 2;
  IntegratedGradientsOptions refined = coarse;
  refined.max_steps = 2048;
  const auto a = ComputeIntegratedGradients(model, encoded, baseline, coarse);
  const auto b = ComputeIntegratedGradients(model, encoded, baseline, refined);
  EXPECT_GT(a.completeness_gap.max().item<float>(), 1e-2);
  EXPECT_LE(b.completeness_gap.max().item<float>(), 1e-3);
  EXPECT_TRUE((b.completeness_gap <= a.completeness_gap).all().item<bool>());
  IntegratedGradientsOptions bad;
  bad.steps = 0;
  EXPECT_THROW(ComputeIntegratedGradients(model, encoded, baseline, bad), c10::Error);
}

TEST_F(DeclarationExplanationsTest, EachKnownCauseIsTheTopReasonOfItsDeclarations) {
  DeclarationExplainer explainer = Explainer(*risk_dir_);
  ASSERT_TRUE(explainer.SetReference(table_, rows_).ok());
  auto explanations = explainer.Explain(table_, rows_);
  ASSERT_TRUE(explanations.ok());
  auto scores = explainer.scorer().Score(table_, rows_);
  const size_t origin = Feature(explainer, "origin"), value = Feature(explainer, "value");
  // Among declarations the model scores high, count how often the cause we
  // planted is the largest (and positive) contribution.
  size_t ng = 0, ng_right = 0, dear = 0, dear_right = 0;
  for (size_t r = 0; r < table_.rows; ++r) {
    if ((*scores)[r] < 0.5) continue;
    const Explanation& e = (*explanations)[r];
    const bool is_ng = table_.raw_columns[0].values[r] == "NG";
    const bool is_dear = std::expm1(table_.numeric[r * 2]) > 5000;
    if (is_ng && !is_dear) {
      ++ng;
      if (TopFeature(e) == origin && e.contributions[origin] > 0) ++ng_right;
    }
    if (is_dear && !is_ng) {
      ++dear;
      if (TopFeature(e) == value && e.contributions[value] > 0) ++dear_right;
    }
  }
  ASSERT_GT(ng, 20u);
  ASSERT_GT(dear, 20u);
  EXPECT_GE(ng_right, ng * 9 / 10) << ng_right << " of " << ng;
  EXPECT_GE(dear_right, dear * 9 / 10) << dear_right << " of " << dear;
}

TEST_F(DeclarationExplanationsTest, AnomalyContributionsAreTheScoresExactSplit) {
  DeclarationExplainer explainer = Explainer(*anomaly_dir_);
  EXPECT_STREQ(explainer.method(), "reconstruction_error");
  auto explanations = explainer.Explain(table_, rows_);
  ASSERT_TRUE(explanations.ok()) << explanations.status();
  auto scores = explainer.scorer().Score(table_, rows_);
  ASSERT_TRUE(scores.ok());
  for (size_t r = 0; r < table_.rows; r += 7) {
    const Explanation& e = (*explanations)[r];
    EXPECT_EQ(e.baseline_score, 0);
    EXPECT_NEAR(e.score, (*scores)[r], 1e-4 * std::max(1.0f, e.score));
    const double sum = std::accumulate(e.contributions.begin(), e.contributions.end(), 0.0);
    EXPECT_NEAR(sum, e.score, 1e-4 * std::max(1.0f, e.score));
    for (float c : e.contributions) EXPECT_GE(c, 0);
  }
  // The most extreme declared value is explained by the value column.
  size_t extreme = 0;
  for (size_t r = 0; r < table_.rows; ++r) {
    if (table_.numeric[r * 2] > table_.numeric[extreme * 2]) extreme = r;
  }
  EXPECT_EQ(TopFeature((*explanations)[extreme]), Feature(explainer, "value"));
}

// For flagged declarations whose value alone makes them risky: the printed
// value itself, read back as the CSV reader reads it, is below the threshold,
// and 1 % of the way back towards the declared value is not.
// A boosted-trees model pulled like any other: scored through the signed
// state, explained by its tree paths (adding up to the score's change from
// the baseline), the planted causes on top, and a counterfactual found.
TEST_F(DeclarationExplanationsTest, BoostedTreesAreScoredAndExplainedByTheirPaths) {
  task::ModelSpec spec = *risk_spec_;
  spec.risk = v1::RiskModelConfig();
  spec.risk.set_kind(v1::RiskModelConfig::BOOSTED_TREES);
  spec.risk.mutable_trees()->set_trees(40);
  spec.risk.mutable_trees()->set_max_depth(3);
  ASSERT_TRUE(task::FinalizeRiskModelConfig(&spec.risk).ok());
  trees::BoostingRows rows(table_, rows_, {});
  trees::BoostingRows* parties[] = {&rows};
  trees::BoostingParams params;
  params.trees = 40;
  params.tree.max_depth = 3;
  params.tree.learning_rate = 0.3;
  auto trained = trees::TrainBoostedTrees(parties, params);
  ASSERT_TRUE(trained.ok()) << trained.status();
  const std::string dir = *dir_ + "/trees";
  ASSERT_TRUE(testing::WritePulledModelDir(dir, spec, models::BoostedTreesState(trained->ensemble),
                                           3, public_key_)
                  .ok());
  DeclarationExplainer explainer = Explainer(dir);
  EXPECT_STREQ(explainer.method(), "tree_path");
  auto explanations = explainer.Explain(table_, rows_);
  ASSERT_TRUE(explanations.ok()) << explanations.status();
  auto scores = explainer.scorer().Score(table_, rows_);
  ASSERT_TRUE(scores.ok()) << scores.status();
  const std::vector<float> direct = trees::PredictProbabilities(trained->ensemble, table_, rows_);
  const size_t origin = Feature(explainer, "origin"), value = Feature(explainer, "value");
  double worst = 0;
  size_t ng = 0, ng_right = 0, dear = 0, dear_right = 0;
  for (size_t r = 0; r < table_.rows; ++r) {
    const Explanation& e = (*explanations)[r];
    EXPECT_EQ(e.score, direct[r]);
    EXPECT_EQ((*scores)[r], direct[r]);
    EXPECT_NEAR(e.baseline_score, explainer.baseline_score(), 1e-6);
    const double sum = std::accumulate(e.contributions.begin(), e.contributions.end(), 0.0);
    worst = std::max(worst, std::abs(sum - (e.score - e.baseline_score)));
    if ((*scores)[r] < 0.5) continue;
    const bool is_ng = table_.raw_columns[0].values[r] == "NG";
    const bool is_dear = std::expm1(table_.numeric[r * 2]) > 5000;
    if (is_ng && !is_dear) {
      ++ng;
      ng_right += TopFeature(e) == origin && e.contributions[origin] > 0;
    }
    if (is_dear && !is_ng) {
      ++dear;
      dear_right += TopFeature(e) == value && e.contributions[value] > 0;
    }
  }
  EXPECT_LE(worst, 1e-5) << "tree-path contributions add up exactly, up to float rounding";
  ASSERT_GT(ng, 20u);
  ASSERT_GT(dear, 20u);
  EXPECT_GE(ng_right, ng * 9 / 10) << ng_right << " of " << ng;
  EXPECT_GE(dear_right, dear * 9 / 10) << dear_right << " of " << dear;

  // What would have to differ: a dear declaration's value, below the cut.
  auto candidates = explainer.GatherCandidates(table_, "value");
  ASSERT_TRUE(candidates.ok()) << candidates.status();
  const int64_t row =
      FindRow([](const std::string& o, double v) { return o != "NG" && v > 20000; });
  ASSERT_GE((*scores)[static_cast<size_t>(row)], 0.5);
  auto cf = explainer.FindCounterfactual(table_, row, 0.5, *candidates);
  ASSERT_TRUE(cf.ok()) << cf.status();
  ASSERT_TRUE(cf->found) << cf->note;
  EXPECT_LT(cf->score, 0.5);
  EXPECT_LT(std::stod(cf->to), 7000);
}

TEST_F(DeclarationExplanationsTest, NumericCounterfactualIsTheNearestCrossing) {
  DeclarationExplainer explainer = Explainer(*risk_dir_);
  auto candidates = explainer.GatherCandidates(table_, "value");
  ASSERT_TRUE(candidates.ok()) << candidates.status();
  EXPECT_TRUE(candidates->numeric);
  EXPECT_EQ(candidates->numeric_values.size(), 256u);
  const double threshold = 0.5;
  size_t checked = 0;
  for (size_t r = 0; r < table_.rows && checked < 10; ++r) {
    const double declared = std::expm1(table_.numeric[r * 2]);
    if (table_.raw_columns[0].values[r] == "NG" || declared < 20000) continue;
    const auto row = static_cast<int64_t>(r);
    auto cf = explainer.FindCounterfactual(table_, row, threshold, *candidates);
    ASSERT_TRUE(cf.ok()) << cf.status();
    ASSERT_TRUE(cf->found) << cf->note;
    ++checked;
    const double from = std::stod(cf->from), to = std::stod(cf->to);
    EXPECT_NEAR(from, declared, 1e-3 * from);
    EXPECT_LT(to, from);
    EXPECT_LT(cf->score, threshold);
    data::DeclarationTable changed = table_;
    const std::vector<int64_t> one = {row};
    changed.numeric[r * 2] = static_cast<float>(std::log1p(to));
    EXPECT_EQ((*explainer.scorer().Score(changed, one))[0], cf->score) << cf->to;
    const double closer = std::log1p(to) + 0.01 * (std::log1p(from) - std::log1p(to));
    changed.numeric[r * 2] = static_cast<float>(closer);
    EXPECT_GE((*explainer.scorer().Score(changed, one))[0], threshold) << cf->to;
    // The known cause: below the planted 5000 limit, not far below it.
    EXPECT_GT(to, 1000);
    EXPECT_LT(to, 7000);
  }
  EXPECT_EQ(checked, 10u);
}

TEST_F(DeclarationExplanationsTest, CategoricalCounterfactualPicksTheMostFrequentCrossingValue) {
  DeclarationExplainer explainer = Explainer(*risk_dir_);
  const int64_t row = FindRow([](const std::string& o, double v) { return o == "NG" && v < 300; });
  CounterfactualCandidates values;
  values.feature = "origin";
  values.categorical_values = {{"CN", 1200}, {"DE", 750}, {"NG", 150}, {"TR", 270}, {"US", 600}};
  auto cf = explainer.FindCounterfactual(table_, row, 0.5, values);
  ASSERT_TRUE(cf.ok()) << cf.status();
  ASSERT_TRUE(cf->found) << cf->note;
  EXPECT_EQ(cf->from, "NG");
  EXPECT_EQ(cf->to, "CN");
  EXPECT_EQ(cf->crossing_values, 4u);
  EXPECT_LT(cf->score, 0.5);

  const int64_t low = FindRow([](const std::string& o, double v) { return o == "DE" && v < 300; });
  auto already = explainer.FindCounterfactual(table_, low, 0.5, values);
  ASSERT_TRUE(already.ok());
  EXPECT_FALSE(already->found);
  EXPECT_EQ(already->note, "already below the threshold");

  values.feature = "colour";
  auto unknown = explainer.FindCounterfactual(table_, row, 0.5, values);
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(unknown.status().message(),
              HasSubstr("\"colour\" is not a feature of the model (features: value, mass, "
                        "origin, hs)"));

  // From the file: the same choice; HS codes cut to 4 characters share a
  // bucket, which the note says.
  auto gathered = explainer.GatherCandidates(table_, "origin");
  ASSERT_TRUE(gathered.ok()) << gathered.status();
  EXPECT_EQ(gathered->categorical_values.size(), 5u);
  auto from_file = explainer.FindCounterfactual(table_, row, 0.5, *gathered);
  ASSERT_TRUE(from_file.ok());
  EXPECT_EQ(from_file->to, "CN");
  EXPECT_THAT(explainer.GatherCandidates(table_, "hs").status().message(),
              HasSubstr("the table was read without the raw values of \"hs\""));
}

std::vector<std::vector<std::string>> ReadCsv(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::vector<std::string>> lines;
  for (std::string line; std::getline(in, line);) {
    lines.push_back(absl::StrSplit(line, ','));
  }
  return lines;
}

TEST_F(DeclarationExplanationsTest, ScoreFileWritesScoresReasonsAndCounterfactuals) {
  ScoreFileOptions options;
  options.model_dir = *risk_dir_;
  options.anomaly_model_dir = *anomaly_dir_;
  options.public_key = *public_key_;
  options.data_csv = *dir_ + "/data.csv";
  options.schema_json = *dir_ + "/schema.json";
  options.out_csv = *dir_ + "/scores.csv";
  options.explain = 3;
  options.counterfactual = "origin";
  auto summary = ScoreDeclarationsFile(options);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->rows, 3000u);
  EXPECT_EQ(summary->flagged, 150u);  // ceil(5 % of 3000)
  EXPECT_EQ(summary->model, "risk v4");
  EXPECT_LE(summary->max_completeness_gap, 1e-3);
  EXPECT_GT(summary->counterfactuals_found, 0u);

  const auto lines = ReadCsv(options.out_csv);
  ASSERT_EQ(lines.size(), 3001u);
  EXPECT_EQ(lines[0], (std::vector<std::string>{
                          "declaration_id", "risk_probability", "anomaly_score", "flagged",
                          "reason_1_feature", "reason_1_contribution", "reason_2_feature",
                          "reason_2_contribution", "reason_3_feature", "reason_3_contribution",
                          "explanation_baseline", "completeness_gap", "counterfactual_from",
                          "counterfactual_to", "counterfactual_score", "counterfactual_note"}));
  size_t flagged = 0;
  for (size_t i = 1; i < lines.size(); ++i) {
    const auto& f = lines[i];
    ASSERT_EQ(f.size(), 16u) << i;
    EXPECT_EQ(f[0], absl::StrCat("D", i - 1));
    const double p = std::stod(f[1]);
    EXPECT_TRUE(p >= 0 && p <= 1);
    // Reasons are ordered by |contribution|.
    EXPECT_GE(std::abs(std::stod(f[5])), std::abs(std::stod(f[7])));
    EXPECT_GE(std::abs(std::stod(f[7])), std::abs(std::stod(f[9])));
    if (f[3] == "1") {
      ++flagged;
      EXPECT_FALSE(f[15].empty());
      if (!f[13].empty()) EXPECT_LT(std::stod(f[14]), summary->threshold) << i;
      EXPECT_GE(std::stod(f[1]), summary->threshold);
    } else {
      EXPECT_TRUE(f[12].empty() && f[13].empty());
    }
  }
  EXPECT_EQ(flagged, 150u);

  options.explain = 65;
  EXPECT_THAT(ScoreDeclarationsFile(options).status().message(),
              HasSubstr("explain: expected 0..64 features, got 65"));
  options.explain = 0;
  options.counterfactual = "colour";
  EXPECT_THAT(ScoreDeclarationsFile(options).status().message(),
              HasSubstr("\"colour\" is not a feature"));
  options.counterfactual.clear();
  options.expected_kind = v1::TASK_ANOMALY;
  EXPECT_THAT(ScoreDeclarationsFile(options).status().message(),
              HasSubstr("expected an anomaly model: " + *risk_dir_ + " holds risk v4"));
  options.expected_kind.reset();
  options.anomaly_model_dir = *risk_dir_;
  EXPECT_THAT(ScoreDeclarationsFile(options).status().message(),
              HasSubstr("holds risk v4, not an anomaly model"));
}

}  // namespace
}  // namespace fedcustoms::analyst
