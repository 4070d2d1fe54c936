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
#include "common/crypto/atomic_file.h"
#include "common/data/declaration_schema.h"
#include "common/data/declarations_csv.h"
#include "common/task/declaration_models.h"
#include "common/tensor/named_tensors.h"
#include "common/training/anomaly_trainer.h"
#include "common/training/risk_trainer.h"
#include "node/analyst/declarations_scoring.h"
#include "node/analyst/pulled_model.h"
#include "node/explain/declaration_explainer.h"
#include "tests/support/pulled_model_dir.h"
#include "tests/support/small_declaration_schema.h"

namespace fedcustoms::node {
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
        crypto::WriteFileAtomically(*dir_ + "/schema.json", testing_support::kSmallSchemaJson)
            .ok());
    ASSERT_TRUE(crypto::WriteFileAtomically(*dir_ + "/data.csv", MakeCsv(3000, 11)).ok());
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

TEST_F(DeclarationExplanationsTest, TheBaselineDeclarationItselfHasNoContributions) {
  DeclarationExplainer explainer = Explainer(*risk_dir_);
  const std::vector<int64_t> one = {17};
  ASSERT_TRUE(explainer.SetReference(table_, one).ok());
  auto e = explainer.Explain(table_, one);
  ASSERT_TRUE(e.ok());
  EXPECT_NEAR((*e)[0].score, (*e)[0].baseline_score, 1e-5);
  for (float c : (*e)[0].contributions) EXPECT_NEAR(c, 0, 1e-6);
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

TEST_F(DeclarationExplanationsTest, NumericCounterfactualIsTheNearestCrossing) {
  DeclarationExplainer explainer = Explainer(*risk_dir_);
  const int64_t row =
      FindRow([](const std::string& o, double v) { return o == "CN" && v > 20000; });
  const double threshold = 0.5;
  auto cf = explainer.FindCounterfactual(table_, row, "value", threshold);
  ASSERT_TRUE(cf.ok()) << cf.status();
  ASSERT_TRUE(cf->found) << cf->note;
  const double from = std::stod(cf->from), to = std::stod(cf->to);
  EXPECT_NEAR(from, std::expm1(table_.numeric[row * 2]), 1e-3 * from);
  EXPECT_LT(to, from);
  EXPECT_LT(cf->score, threshold);
  // Minimal: 1 % of the way back towards the declared value is still flagged.
  data::DeclarationTable changed = table_;
  const std::vector<int64_t> one = {row};
  changed.numeric[row * 2] = static_cast<float>(std::log1p(to));
  EXPECT_LT((*explainer.scorer().Score(changed, one))[0], threshold);
  const double closer = std::log1p(to) + 0.01 * (std::log1p(from) - std::log1p(to));
  changed.numeric[row * 2] = static_cast<float>(closer);
  EXPECT_GE((*explainer.scorer().Score(changed, one))[0], threshold);
  // The known cause: below the planted 5000 limit, not far below it.
  EXPECT_GT(to, 1000);
  EXPECT_LT(to, 7000);
}

TEST_F(DeclarationExplanationsTest, CategoricalCounterfactualPicksTheMostFrequentCrossingValue) {
  DeclarationExplainer explainer = Explainer(*risk_dir_);
  const int64_t row = FindRow([](const std::string& o, double v) { return o == "NG" && v < 300; });
  const std::vector<std::pair<std::string, uint64_t>> values = {
      {"CN", 1200}, {"DE", 750}, {"NG", 150}, {"TR", 270}, {"US", 600}};
  auto cf = explainer.FindCounterfactual(table_, row, "origin", 0.5, values);
  ASSERT_TRUE(cf.ok()) << cf.status();
  ASSERT_TRUE(cf->found) << cf->note;
  EXPECT_EQ(cf->from, "NG");
  EXPECT_EQ(cf->to, "CN");
  EXPECT_EQ(cf->crossing_values, 4u);
  EXPECT_LT(cf->score, 0.5);

  const int64_t low = FindRow([](const std::string& o, double v) { return o == "DE" && v < 300; });
  auto already = explainer.FindCounterfactual(table_, low, "origin", 0.5, values);
  ASSERT_TRUE(already.ok());
  EXPECT_FALSE(already->found);
  EXPECT_EQ(already->note, "already below the threshold");

  auto unknown = explainer.FindCounterfactual(table_, row, "colour", 0.5, values);
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(unknown.status().message(),
              HasSubstr("\"colour\" is not a feature of the model (features: value, mass, "
                        "origin, hs)"));
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
      EXPECT_FALSE(f[12].empty());
    } else {
      EXPECT_TRUE(f[12].empty() && f[13].empty());
    }
  }
  EXPECT_EQ(flagged, 150u);

  options.explain = 65;
  EXPECT_THAT(ScoreDeclarationsFile(options).status().message(),
              HasSubstr("--explain: expected 0..64 features, got 65"));
  options.explain = 0;
  options.counterfactual = "colour";
  EXPECT_THAT(ScoreDeclarationsFile(options).status().message(),
              HasSubstr("\"colour\" is not a feature"));
  options.counterfactual.clear();
  options.anomaly_model_dir = *risk_dir_;
  EXPECT_THAT(ScoreDeclarationsFile(options).status().message(),
              HasSubstr("holds risk v4, not an anomaly model"));
}

}  // namespace
}  // namespace fedcustoms::node
