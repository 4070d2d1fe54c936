#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "common/metrics/binary_metrics.h"
#include "common/models/anomaly_autoencoder.h"
#include "common/task/task_model.h"
#include "common/tensor/named_tensors.h"
#include "common/training/anomaly_trainer.h"

namespace fedcustoms::training {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Normal declarations follow two regularities: the declared value tracks the
// mass (value ≈ mass + 5 in log space) and the origin determines the HS
// chapter (hs = 2·origin or 2·origin + 1). An anomaly (label 1, ~3 %) breaks
// one of them: a value far below what the mass implies, or an HS chapter
// never seen with its origin. No label is used in training.
data::DeclarationTable PatternTable(size_t rows, uint32_t seed = 5) {
  data::DeclarationTable t;
  t.rows = rows;
  t.numeric_names = {"mass", "value"};
  t.categorical_names = {"origin", "hs"};
  t.buckets = {8, 16};
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int64_t> origin(0, 7);
  std::uniform_int_distribution<int64_t> bit(0, 1);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (size_t i = 0; i < rows; ++i) {
    const float mass = 3.0f + normal(rng);
    float value = mass + 5.0f + 0.2f * normal(rng);
    const int64_t o = origin(rng);
    int64_t hs = 2 * o + bit(rng);
    float label = 0;
    const double u = unit(rng);
    if (u < 0.015) {
      value -= 4.0f;  // undervalued
      label = 1;
    } else if (u < 0.03) {
      hs = (2 * o + 5) % 16;  // chapter never seen from this origin
      label = 1;
    }
    t.numeric.push_back(mass);
    t.numeric.push_back(value);
    t.categorical.push_back(o);
    t.categorical.push_back(hs);
    t.labels.push_back(label);
  }
  return t;
}

std::vector<int64_t> Range(int64_t begin, int64_t end) {
  std::vector<int64_t> rows(end - begin);
  std::iota(rows.begin(), rows.end(), begin);
  return rows;
}

v1::AnomalyModelConfig SmallConfig() {
  v1::AnomalyModelConfig c;
  c.add_hidden_units(16);
  c.add_hidden_units(4);
  c.set_embedding_dim(4);
  return c;
}

models::AnomalyAutoencoder ModelFor(const data::DeclarationTable& t, uint64_t seed = 1) {
  return models::AnomalyAutoencoder(static_cast<int64_t>(t.numeric_width()), t.buckets,
                                    SmallConfig(), seed);
}

v1::TrainingConfig FastConfig(uint32_t epochs = 8) {
  v1::TrainingConfig c;
  c.set_local_epochs(epochs);
  c.set_batch_size(64);
  c.set_learning_rate(0.01);
  return c;
}

std::vector<std::string> Names(const tensor::NamedTensors& tensors) {
  std::vector<std::string> names;
  for (const auto& [name, t] : tensors) names.push_back(name);
  return names;
}

TEST(AnomalyAutoencoder, StateNamesAreCanonical) {
  models::AnomalyAutoencoder model(2, std::vector<uint32_t>{8, 16}, SmallConfig(), 1);
  EXPECT_THAT(
      Names(tensor::StateOf(*model)),
      ElementsAre("categorical_heads.0.bias", "categorical_heads.0.weight",
                  "categorical_heads.1.bias", "categorical_heads.1.weight", "decoder.0.bias",
                  "decoder.0.weight", "embeddings.0.weight", "embeddings.1.weight",
                  "encoder.0.bias", "encoder.0.weight", "encoder.1.bias", "encoder.1.weight",
                  "numeric_head.bias", "numeric_head.weight", "standardize.num_batches_tracked",
                  "standardize.running_mean", "standardize.running_var"));
  // The decoder mirrors the encoder without the bottleneck: 4 -> 16, and the
  // heads read the 16 units.
  const tensor::NamedTensors state = tensor::StateOf(*model);
  for (const auto& [name, t] : state) {
    if (name == "decoder.0.weight") {
      EXPECT_EQ(t.sizes(), (std::vector<int64_t>{16, 4}));
    }
    if (name == "categorical_heads.1.weight") {
      EXPECT_EQ(t.sizes(), (std::vector<int64_t>{16, 16}));
    }
    if (name == "numeric_head.weight") {
      EXPECT_EQ(t.sizes(), (std::vector<int64_t>{2, 16}));
    }
  }
}

TEST(AnomalyAutoencoder, ScoresArePerRowNonNegativeAndSeeded) {
  const data::DeclarationTable table = PatternTable(50);
  models::AnomalyAutoencoder a = ModelFor(table, 3);
  models::AnomalyAutoencoder b = ModelFor(table, 3);
  models::AnomalyAutoencoder c = ModelFor(table, 4);
  const std::vector<int64_t> rows = Range(0, 50);
  const std::vector<float> sa = ScoreAnomalies(a, table, rows);
  ASSERT_EQ(sa.size(), 50u);
  for (float s : sa) {
    EXPECT_TRUE(std::isfinite(s));
    EXPECT_GE(s, 0.0f);
  }
  EXPECT_EQ(sa, ScoreAnomalies(b, table, rows));
  EXPECT_NE(sa, ScoreAnomalies(c, table, rows));
}

TEST(AnomalyAutoencoder, OnlyCategoricalOrOnlyNumericFeaturesWork) {
  models::AnomalyAutoencoder numeric_only(3, std::vector<uint32_t>{}, SmallConfig(), 1);
  EXPECT_EQ(
      numeric_only->forward(torch::randn({5, 3}), torch::zeros({5, 0}, torch::kInt64)).sizes(),
      (std::vector<int64_t>{5}));
  models::AnomalyAutoencoder categorical_only(0, std::vector<uint32_t>{4}, SmallConfig(), 1);
  EXPECT_EQ(
      categorical_only->forward(torch::zeros({5, 0}), torch::randint(4, {5, 1}, torch::kInt64))
          .sizes(),
      (std::vector<int64_t>{5}));
}

TEST(AnomalyAutoencoder, ConfigErrorsNameTheField) {
  v1::AnomalyModelConfig c = SmallConfig();
  c.set_flag_quantile(1.0);
  EXPECT_THAT(std::string(models::CheckAnomalyAutoencoderArgs(2, {8}, c).message()),
              HasSubstr("flag_quantile 1 is not in (0, 1)"));
  c = SmallConfig();
  c.set_categorical_weight(-1);
  EXPECT_THAT(std::string(models::CheckAnomalyAutoencoderArgs(2, {8}, c).message()),
              HasSubstr("categorical_weight -1"));
  c = SmallConfig();
  c.set_hidden_units(0, 0);
  EXPECT_THAT(std::string(models::CheckAnomalyAutoencoderArgs(2, {8}, c).message()),
              HasSubstr("hidden_units[0] = 0"));
  // 2^20 buckets x 65 outputs: the heads would not fit the cap.
  c = SmallConfig();
  c.set_hidden_units(0, 64);
  EXPECT_THAT(std::string(models::CheckAnomalyAutoencoderArgs(2, {1u << 20}, c).message()),
              HasSubstr("categorical output heads"));
  EXPECT_THROW(models::AnomalyAutoencoder(0, std::vector<uint32_t>{}, SmallConfig(), 1),
               c10::Error);
}

TEST(AnomalyAutoencoder, DefaultsAreDocumented) {
  const v1::AnomalyModelConfig c = models::WithDefaults(v1::AnomalyModelConfig());
  EXPECT_THAT(c.hidden_units(), ElementsAre(32, 8));
  EXPECT_EQ(c.embedding_dim(), 4u);
  EXPECT_DOUBLE_EQ(c.flag_quantile(), 0.99);
  EXPECT_DOUBLE_EQ(c.categorical_weight(), 1.0);
}

TEST(AnomalyTrainer, TrainingWithoutLabelsRanksBrokenPatternsHigh) {
  data::DeclarationTable table = PatternTable(6000);
  const std::vector<int64_t> train = Range(0, 4000);
  const std::vector<int64_t> holdout = Range(4000, 6000);
  std::vector<float> labels;
  for (int64_t r : holdout) labels.push_back(table.labels[r]);
  // Training must not read labels: train on a copy without them.
  data::DeclarationTable unlabelled = table;
  unlabelled.labels.clear();

  models::AnomalyAutoencoder model = ModelFor(table);
  const std::vector<float> before = ScoreAnomalies(model, table, holdout);
  auto result = TrainAnomalyModel(model, unlabelled, train, FastConfig());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->samples, 4000);
  EXPECT_EQ(result->samples_seen, 8 * 4000);
  const std::vector<float> after = ScoreAnomalies(model, table, holdout);
  const double mean_before = std::accumulate(before.begin(), before.end(), 0.0) / before.size();
  const double mean_after = std::accumulate(after.begin(), after.end(), 0.0) / after.size();
  EXPECT_LT(mean_after, 0.5 * mean_before);
  const v1::EvaluationMetrics m = metrics::ComputeBinaryMetrics(after, labels);
  EXPECT_GT(m.roc_auc(), 0.9);
  EXPECT_GT(m.pr_auc(), 0.5) << "positive rate is ~0.03";
}

TEST(AnomalyTrainer, EvaluationFlagsAboutTheConfiguredQuantile) {
  data::DeclarationTable table = PatternTable(4000, 9);
  models::AnomalyAutoencoder model = ModelFor(table);
  ASSERT_TRUE(TrainAnomalyModel(model, table, Range(0, 3000), FastConfig(4)).ok());
  auto m = EvaluateAnomalyModel(model, table, Range(0, 3000), Range(3000, 4000));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->examples(), 1000u);
  // Top 1 % of the training scores: about 10 of 1000 from the same
  // distribution (binomial, so a loose band).
  EXPECT_GE(m->flagged(), 2u);
  EXPECT_LE(m->flagged(), 30u);
  EXPECT_GT(m->roc_auc(), 0.8);
  EXPECT_GT(m->loss(), 0.0);

  // Without labels: only the unlabelled figures.
  table.labels.clear();
  auto unlabelled = EvaluateAnomalyModel(model, table, Range(0, 3000), Range(3000, 4000));
  ASSERT_TRUE(unlabelled.ok()) << unlabelled.status();
  EXPECT_EQ(unlabelled->flagged(), m->flagged());
  EXPECT_DOUBLE_EQ(unlabelled->loss(), m->loss());
  EXPECT_EQ(unlabelled->positives(), 0u);
  EXPECT_EQ(unlabelled->pr_auc(), 0.0);
}

TEST(AnomalyTrainer, TrainingIsDeterministicForASeed) {
  const data::DeclarationTable table = PatternTable(600);
  models::AnomalyAutoencoder a = ModelFor(table);
  models::AnomalyAutoencoder b = ModelFor(table);
  ASSERT_TRUE(TrainAnomalyModel(a, table, Range(0, 600), FastConfig(2)).ok());
  ASSERT_TRUE(TrainAnomalyModel(b, table, Range(0, 600), FastConfig(2)).ok());
  const tensor::NamedTensors sa = tensor::StateOf(*a);
  const tensor::NamedTensors sb = tensor::StateOf(*b);
  ASSERT_EQ(sa.size(), sb.size());
  for (size_t i = 0; i < sa.size(); ++i) {
    EXPECT_TRUE(torch::equal(sa[i].second, sb[i].second)) << sa[i].first;
  }
}

TEST(AnomalyTrainer, ErrorsNameTheRowOrTheProblem) {
  data::DeclarationTable table = PatternTable(100);
  models::AnomalyAutoencoder model = ModelFor(table);
  table.numeric[2 * 17 + 1] = std::numeric_limits<float>::quiet_NaN();
  auto r = TrainAnomalyModel(model, table, Range(0, 100), FastConfig(1));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("row 17"));
  table = PatternTable(100);
  r = TrainAnomalyModel(model, table, Range(0, 1), FastConfig(1));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("at least 2 rows"));
  // A model whose weights went non-finite: the first loss is NaN.
  models::AnomalyAutoencoder broken = ModelFor(table);
  {
    torch::NoGradGuard no_grad;
    broken->named_parameters()["encoder.0.weight"].fill_(std::nanf(""));
  }
  r = TrainAnomalyModel(broken, table, Range(0, 100), FastConfig(1));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("diverged: loss is nan at epoch 1, step 1"));
  EXPECT_FALSE(EvaluateAnomalyModel(model, table, Range(0, 10), {}).ok());
}

TEST(AnomalyTrainer, FlagThresholdInterpolatesLikeNumpy) {
  EXPECT_DOUBLE_EQ(FlagThreshold({5, 1, 4, 2, 3}, 0.5), 3.0);
  EXPECT_NEAR(FlagThreshold({5, 1, 4, 2, 3}, 0.9), 4.6, 1e-12);
  EXPECT_DOUBLE_EQ(FlagThreshold({7}, 0.99), 7.0);
  EXPECT_TRUE(std::isinf(FlagThreshold({}, 0.99)));
}

TEST(TaskModel, KindsResolveFromTheNameAndBuildTheirInitialState) {
  EXPECT_EQ(task::ResolveKind(v1::TASK_KIND_UNSPECIFIED, "anomaly"), v1::TASK_ANOMALY);
  EXPECT_EQ(task::ResolveKind(v1::TASK_KIND_UNSPECIFIED, "xray"), v1::TASK_XRAY);
  EXPECT_EQ(task::ResolveKind(v1::TASK_KIND_UNSPECIFIED, "risk-2027"), v1::TASK_RISK);
  EXPECT_EQ(task::ResolveKind(v1::TASK_ANOMALY, "risk"), v1::TASK_ANOMALY);

  v1::TaskConfig config;
  config.set_name("anomaly");
  config.mutable_anomaly_model()->set_flag_quantile(2);
  absl::Status bad = task::FinalizeTaskModel(&config);
  EXPECT_THAT(std::string(bad.message()), HasSubstr("anomaly_model: flag_quantile 2"));
  config.mutable_anomaly_model()->set_flag_quantile(0.95);
  ASSERT_TRUE(task::FinalizeTaskModel(&config).ok());
  EXPECT_EQ(config.kind(), v1::TASK_ANOMALY);

  v1::DeclarationSchema schema;
  v1::ColumnSpec* value = schema.add_columns();
  value->set_name("value");
  value->set_role(v1::NUMERIC);
  v1::ColumnSpec* origin = schema.add_columns();
  origin->set_name("origin");
  origin->set_role(v1::CATEGORICAL);
  origin->set_hash_buckets(8);
  const task::ModelSpec spec = task::SpecOf(config, schema);
  auto state = task::InitialState(spec, 1);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_THAT(Names(*state), ::testing::Contains("categorical_heads.0.weight"));
  EXPECT_EQ(task::ArchitectureName(spec.kind), "anomaly_autoencoder");
  // The input hash is the feature schema's, shared with a risk task.
  v1::TaskConfig risk;
  risk.set_name("risk");
  ASSERT_TRUE(task::FinalizeTaskModel(&risk).ok());
  EXPECT_EQ(task::InputHash(spec), task::InputHash(task::SpecOf(risk, schema)));
  EXPECT_THAT(task::HyperparametersJson(spec), HasSubstr("\"flag_quantile\":0.95"));

  // An assignment carries the kind and the model config to the node.
  v1::TaskAssignment assignment;
  assignment.set_task("anomaly");
  task::CopyModelConfig(spec, &assignment);
  const task::ModelSpec received = task::SpecOf(assignment, schema);
  EXPECT_EQ(received.kind, v1::TASK_ANOMALY);
  EXPECT_DOUBLE_EQ(received.anomaly.flag_quantile(), 0.95);
}

}  // namespace
}  // namespace fedcustoms::training
