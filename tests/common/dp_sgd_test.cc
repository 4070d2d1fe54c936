// DP-SGD's parts: per-example gradients (exact against one backward per
// example, for every layer type the declaration models use), the clipped and
// noised sum (clipping bound, noise variance), the DP-SGD loop (Poisson steps,
// coverage) and the trainers under DP.
#include <ATen/CPUGeneratorImpl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/models/anomaly_autoencoder.h"
#include "common/models/risk_mlp.h"
#include "common/models/xray_cnn.h"
#include "common/privacy/noisy_clipped_sum.h"
#include "common/privacy/noisy_column_moments.h"
#include "common/privacy/per_example_gradients.h"
#include "common/privacy/privacy_config.h"
#include "common/privacy/rdp_accountant.h"
#include "common/privacy/secure_gaussian.h"
#include "common/training/anomaly_trainer.h"
#include "common/training/local_training_loop.h"
#include "common/training/risk_trainer.h"
#include "common/training/table_tensors.h"
#include "common/training/xray_trainer.h"

namespace fedcustoms::privacy {
namespace {

namespace F = torch::nn::functional;

// A small table with repeated categorical ids (so two examples of one batch
// share an embedding row) and labels.
struct Batch {
  at::Tensor numeric, categorical, labels;
};

Batch MakeBatch(int64_t b, int64_t numeric_width, const std::vector<uint32_t>& buckets,
                uint64_t seed = 3) {
  at::Generator g = at::make_generator<at::CPUGeneratorImpl>(seed);
  Batch out;
  out.numeric = torch::randn({b, numeric_width}, g);
  std::vector<at::Tensor> columns;
  for (uint32_t n : buckets) {
    columns.push_back(torch::randint(0, n, {b, 1}, g, torch::dtype(torch::kInt64)));
  }
  out.categorical = columns.empty() ? torch::zeros({b, 0}, torch::kInt64) : torch::cat(columns, 1);
  out.labels = torch::randint(0, 2, {b}, g).to(torch::kFloat32);
  return out;
}

// `model`'s forward pass over `rows` of `batch`, its layers recorded on
// `tape` (none when null).
template <typename Model>
at::Tensor TapedForward(Model& model, const Batch& batch, const at::Tensor& rows,
                        PerExampleGradients* tape) {
  model->RecordPerExample(tape);
  at::Tensor out =
      model->forward(batch.numeric.index_select(0, rows), batch.categorical.index_select(0, rows));
  model->RecordPerExample(nullptr);
  return out;
}

// Checks the tape's per-example gradients, squared norms and weighted sum
// against one backward pass per example for every parameter of `module`.
// `losses(rows, tape)` gives the per-example losses of `rows`.
void ExpectExactAgainstOneAtATime(
    torch::nn::Module& module, int64_t b,
    const std::function<at::Tensor(const at::Tensor& rows, PerExampleGradients* tape)>& losses) {
  const std::vector<at::Tensor> parameters = module.parameters();
  PerExampleGradients tape;
  const at::Tensor all = torch::arange(b, torch::kInt64);
  const at::Tensor batch_losses = losses(all, &tape);
  ASSERT_TRUE(tape.CheckCovers(module).ok()) << tape.CheckCovers(module);
  tape.Backward(batch_losses);
  for (const at::Tensor& p : parameters) {
    EXPECT_FALSE(p.grad().defined()) << "the tape must not form parameter gradients";
  }
  const at::Tensor norms = tape.SquaredNorms();
  std::vector<at::Tensor> per_example;
  for (const at::Tensor& p : parameters) per_example.push_back(tape.PerExample(p));

  at::Tensor expected_sum_scale = torch::linspace(0.1, 1.0, b);
  std::vector<at::Tensor> expected_sum;
  for (const at::Tensor& p : parameters) expected_sum.push_back(torch::zeros_like(p));
  for (int64_t i = 0; i < b; ++i) {
    for (const at::Tensor& p : parameters) p.mutable_grad() = at::Tensor();
    losses(torch::tensor({i}, torch::kInt64), nullptr).sum().backward();
    double norm2 = 0;
    for (size_t k = 0; k < parameters.size(); ++k) {
      at::Tensor g = parameters[k].grad();
      if (!g.defined()) g = torch::zeros_like(parameters[k]);
      EXPECT_TRUE(torch::allclose(per_example[k][i], g, 1e-5, 1e-6))
          << "parameter " << k << " example " << i << " max diff "
          << (per_example[k][i] - g).abs().max().item<double>();
      norm2 += g.pow(2).sum().item<double>();
      expected_sum[k] += g * expected_sum_scale[i];
    }
    EXPECT_NEAR(norms[i].item<double>(), norm2, 1e-5 * std::max(1.0, norm2)) << "example " << i;
  }
  for (const at::Tensor& p : parameters) p.mutable_grad() = at::Tensor();
  tape.WriteWeightedSum(expected_sum_scale);
  for (size_t k = 0; k < parameters.size(); ++k) {
    EXPECT_TRUE(torch::allclose(parameters[k].grad(), expected_sum[k], 1e-5, 1e-6))
        << "weighted sum of parameter " << k;
  }
}

TEST(PerExampleGradientsTest, RiskMlpMatchesOneBackwardPerExample) {
  const std::vector<uint32_t> buckets = {3, 5};  // few buckets: repeated ids
  v1::RiskModelConfig config;
  config.add_hidden_units(6);
  config.add_hidden_units(4);
  config.set_embedding_dim(3);
  models::RiskMlp model(4, buckets, config, /*seed=*/7);
  model->SetStandardization(torch::full({4}, 0.5), torch::full({4}, 2.0));
  model->eval();  // the same function for the batch and for each example
  const Batch batch = MakeBatch(9, 4, buckets);
  const auto weight = torch::full({1}, 3.0);
  ExpectExactAgainstOneAtATime(*model, 9, [&](const at::Tensor& rows, PerExampleGradients* tape) {
    at::Tensor logits = TapedForward(model, batch, rows, tape);
    return F::binary_cross_entropy_with_logits(
        logits, batch.labels.index_select(0, rows),
        F::BinaryCrossEntropyWithLogitsFuncOptions().pos_weight(weight).reduction(torch::kNone));
  });
}

TEST(PerExampleGradientsTest, AnomalyAutoencoderMatchesOneBackwardPerExample) {
  const std::vector<uint32_t> buckets = {4, 2, 3};
  v1::AnomalyModelConfig config;
  config.add_hidden_units(5);
  config.add_hidden_units(2);
  config.set_embedding_dim(2);
  models::AnomalyAutoencoder model(3, buckets, config, /*seed=*/5);
  model->eval();
  const Batch batch = MakeBatch(8, 3, buckets, /*seed=*/9);
  ExpectExactAgainstOneAtATime(*model, 8, [&](const at::Tensor& rows, PerExampleGradients* tape) {
    at::Tensor scores = TapedForward(model, batch, rows, tape);
    return scores;
  });
}

TEST(PerExampleGradientsTest, ModelsWithOnlyOneKindOfFeatureAreCovered) {
  v1::RiskModelConfig config;
  config.add_hidden_units(3);
  for (const auto& [numeric, buckets] :
       std::vector<std::pair<int64_t, std::vector<uint32_t>>>{{0, {4}}, {2, {}}}) {
    models::RiskMlp model(numeric, buckets, config);
    model->eval();
    const Batch batch = MakeBatch(5, numeric, buckets);
    ExpectExactAgainstOneAtATime(*model, 5, [&](const at::Tensor& rows, PerExampleGradients* tape) {
      at::Tensor logits = TapedForward(model, batch, rows, tape);
      return logits.pow(2);
    });
  }
}

TEST(PerExampleGradientsTest, LogisticAndCrossedModelsMatchOneBackwardPerExample) {
  const std::vector<uint32_t> buckets = {3, 4};
  for (const auto kind : {v1::RiskModelConfig::LOGISTIC, v1::RiskModelConfig::MLP}) {
    v1::RiskModelConfig config;
    config.set_kind(kind);
    if (kind == v1::RiskModelConfig::MLP) config.add_hidden_units(3);
    v1::CategoricalCross* cross = config.add_crosses();
    cross->add_columns("a");
    cross->add_columns("b");
    cross->set_hash_buckets(5);  // few buckets: examples share cross weights
    models::RiskMlp model(2, buckets, config, /*seed=*/3,
                          std::vector<models::CrossColumns>{{0, 1}});
    {
      // Away from the all-zero start, so every gradient depends on the rest.
      torch::NoGradGuard no_grad;
      at::Generator g = at::make_generator<at::CPUGeneratorImpl>(21);
      for (at::Tensor& p : model->parameters()) p.normal_(0, 1, g);
    }
    model->eval();
    const Batch batch = MakeBatch(9, 2, buckets, /*seed=*/4);
    ExpectExactAgainstOneAtATime(*model, 9, [&](const at::Tensor& rows, PerExampleGradients* tape) {
      at::Tensor logits = TapedForward(model, batch, rows, tape);
      return F::binary_cross_entropy_with_logits(
          logits, batch.labels.index_select(0, rows),
          F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kNone));
    });
  }
}

// The X-ray CNN: convolutions (per-example gradients from unfolded patches),
// max-pools, the hidden and output Linear layers, with dropout off (eval) so
// the batch and each example see the same function.
TEST(PerExampleGradientsTest, XrayCnnMatchesOneBackwardPerExample) {
  v1::XrayModelConfig config;
  config.add_channels(3);
  config.add_channels(4);
  config.set_image_size(8);
  for (const char* name : {"clear", "firearm", "knife"}) config.add_classes(name);
  config.set_hidden_units(5);
  models::XrayCnn model(config, /*seed=*/2);
  model->eval();
  at::Generator g = at::make_generator<at::CPUGeneratorImpl>(8);
  const at::Tensor images = torch::rand({6, 1, 8, 8}, g);
  const at::Tensor labels = torch::randint(0, 3, {6}, g, torch::dtype(torch::kInt64));
  ExpectExactAgainstOneAtATime(*model, 6, [&](const at::Tensor& rows, PerExampleGradients* tape) {
    model->RecordPerExample(tape);
    at::Tensor logits = model->forward(images.index_select(0, rows));
    model->RecordPerExample(nullptr);
    return F::cross_entropy(logits, labels.index_select(0, rows),
                            F::CrossEntropyFuncOptions().reduction(torch::kNone));
  });
}

// Any stride, padding and dilation, with and without bias.
TEST(PerExampleGradientsTest, Conv2dWithStrideDilationAndNoBiasMatchesOneBackwardPerExample) {
  for (const bool bias : {true, false}) {
    torch::nn::Conv2d conv(torch::nn::Conv2dOptions(2, 3, {3, 2})
                               .stride({2, 1})
                               .padding({1, 0})
                               .dilation({1, 2})
                               .bias(bias));
    at::Generator g = at::make_generator<at::CPUGeneratorImpl>(4);
    const at::Tensor x = torch::randn({5, 2, 7, 6}, g);
    ExpectExactAgainstOneAtATime(*conv, 5, [&](const at::Tensor& rows, PerExampleGradients* tape) {
      const at::Tensor in = x.index_select(0, rows);
      const at::Tensor y = tape ? tape->Conv2d(*conv, in) : conv->forward(in);
      return y.pow(2).sum({1, 2, 3});
    });
  }
}

TEST(PerExampleGradientsTest, APassThatMissesAParameterIsRefusedByName) {
  models::RiskMlp model(2, std::vector<uint32_t>{3}, v1::RiskModelConfig());
  const Batch batch = MakeBatch(4, 2, {3});
  PerExampleGradients tape;
  // The forward pass without the tape records nothing: every parameter
  // would escape clipping.
  (void)model->forward(batch.numeric, batch.categorical);
  const absl::Status missed = tape.CheckCovers(*model);
  EXPECT_EQ(missed.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(missed.message()), ::testing::HasSubstr("embeddings.0.weight"));
  // A layer recorded twice is refused too (its norm would not be exact).
  model->RecordPerExample(&tape);
  (void)model->forward(batch.numeric, batch.categorical);
  (void)model->forward(batch.numeric, batch.categorical);
  model->RecordPerExample(nullptr);
  EXPECT_THAT(std::string(tape.CheckCovers(*model).message()),
              ::testing::HasSubstr("used in 2 recorded layers"));
}

// The clipped sum: with no noise, each example contributes its gradient
// scaled to norm at most C, and the sum is divided by the expected batch.
TEST(NoisyClippedSumTest, ClipsEachExampleToTheBoundBeforeSumming) {
  torch::nn::Linear layer(3, 2);
  const at::Tensor x =
      torch::tensor({{10.0f, 0.0f, 0.0f}, {0.01f, 0.0f, 0.0f}, {0.0f, 5.0f, 5.0f}});
  PerExampleGradients tape;
  const at::Tensor losses = tape.Linear(*layer, x).sum(1);
  tape.Backward(losses);
  const at::Tensor norms = tape.SquaredNorms().sqrt();
  const double clip = 2.0;  // row 1's gradient (norm about 1.41) stays as it is
  SecureGaussian noise("test");
  const ClippingStats stats =
      NoisyClippedSum(layer->parameters(), &tape, clip, /*noise_multiplier=*/0,
                      /*expected_batch=*/4, noise);
  EXPECT_EQ(stats.examples, 3);
  EXPECT_EQ(stats.clipped, (norms > clip).sum().item<int64_t>());
  EXPECT_EQ(stats.clipped, 2);  // rows 0 and 2 have large inputs
  // Expected: Σ_i min(1, C/||g_i||) g_i / 4, formed from PerExample().
  const at::Tensor scale = (clip / (norms + 1e-6)).clamp_max(1.0);
  const at::Tensor expected_w = (tape.PerExample(layer->weight) * scale.view({3, 1, 1})).sum(0) / 4;
  const at::Tensor expected_b = (tape.PerExample(layer->bias) * scale.view({3, 1})).sum(0) / 4;
  EXPECT_TRUE(torch::allclose(layer->weight.grad(), expected_w, 1e-5, 1e-7));
  EXPECT_TRUE(torch::allclose(layer->bias.grad(), expected_b, 1e-5, 1e-7));
  // Each clipped example's norm is at most C.
  for (int64_t i = 0; i < 3; ++i) {
    const double clipped_norm =
        std::sqrt((tape.PerExample(layer->weight)[i] * scale[i]).pow(2).sum().item<double>() +
                  (tape.PerExample(layer->bias)[i] * scale[i]).pow(2).sum().item<double>());
    EXPECT_LE(clipped_norm, clip + 1e-5);
  }
}

// The noise: on an empty batch the gradient is N(0, σ²C²)/expected_batch per
// coordinate. For m = 200 000 coordinates the sample variance s² satisfies
// (m-1)s²/v ~ χ²(m-1), i.e. s²/v ≈ 1 ± sqrt(2/m) = 1 ± 0.0032; the test
// allows 6 standard deviations (two-sided false-failure probability about
// 2e-9 for a fresh seed; the seed is fixed, so the run is deterministic).
TEST(NoisyClippedSumTest, TheNoiseHasVarianceSigmaSquaredCSquared) {
  const double sigma = 1.3, clip = 0.7, expected_batch = 50;
  torch::nn::Linear layer(1000, 199);  // 199 000 + 199 = 199 199 coordinates
  SecureGaussian noise("seed 2024");
  NoisyClippedSum(layer->parameters(), nullptr, clip, sigma, expected_batch, noise);
  const at::Tensor all =
      torch::cat({layer->weight.grad().flatten(), layer->bias.grad()}).to(torch::kFloat64) *
      expected_batch;
  const auto m = static_cast<double>(all.numel());
  const double v = sigma * sigma * clip * clip;
  const double ratio = all.var().item<double>() / v;
  EXPECT_NEAR(ratio, 1.0, 6 * std::sqrt(2.0 / m)) << "s²/σ²C² = " << ratio;
  // Mean 0: the sample mean is N(0, v/m); 6 standard deviations again.
  EXPECT_NEAR(all.mean().item<double>(), 0.0, 6 * std::sqrt(v / m));

  // With examples, the noise is added on top of the clipped sum: the
  // difference from the noiseless sum has the same variance.
  const at::Tensor x = torch::randn({20, 1000});
  PerExampleGradients tape;
  tape.Backward(tape.Linear(*layer, x).sum(1));
  SecureGaussian unused("unused");
  NoisyClippedSum(layer->parameters(), &tape, clip, 0, expected_batch, unused);
  const at::Tensor noiseless =
      torch::cat({layer->weight.grad().flatten(), layer->bias.grad()}).to(torch::kFloat64).clone();
  SecureGaussian noise2("seed 99");
  NoisyClippedSum(layer->parameters(), &tape, clip, sigma, expected_batch, noise2);
  const at::Tensor noisy =
      torch::cat({layer->weight.grad().flatten(), layer->bias.grad()}).to(torch::kFloat64);
  const double ratio2 = ((noisy - noiseless) * expected_batch).var().item<double>() / v;
  EXPECT_NEAR(ratio2, 1.0, 6 * std::sqrt(2.0 / m)) << "s²/σ²C² = " << ratio2;
}

// The noise source: keyed, so one secret gives one stream and another a
// different one; its values are N(0, σ²): mean, variance and the share
// beyond 2σ (4.55 %) on 400 000 draws, each within 6 standard errors.
TEST(SecureGaussianTest, IsStandardNormalAndKeyedBy256Bits) {
  at::Tensor a = torch::empty({400000});
  SecureGaussian("key one").Fill(a, 2.0);
  at::Tensor again = torch::empty({400000});
  SecureGaussian("key one").Fill(again, 2.0);
  at::Tensor other = torch::empty({400000});
  SecureGaussian("key two").Fill(other, 2.0);
  EXPECT_TRUE(torch::equal(a, again));
  EXPECT_FALSE(torch::equal(a, other));
  const at::Tensor z = a.to(torch::kFloat64) / 2.0;
  const double m = static_cast<double>(z.numel());
  EXPECT_NEAR(z.mean().item<double>(), 0.0, 6 / std::sqrt(m));
  EXPECT_NEAR(z.var().item<double>(), 1.0, 6 * std::sqrt(2.0 / m));
  const double beyond = (z.abs() > 2.0).to(torch::kFloat64).mean().item<double>();
  EXPECT_NEAR(beyond, 0.0455, 6 * std::sqrt(0.0455 * 0.9545 / m));
  // Consecutive fills continue the stream (no value repeats).
  SecureGaussian stream("key one");
  at::Tensor first = torch::empty({1000}), second = torch::empty({1000});
  stream.Fill(first, 1.0);
  stream.Fill(second, 1.0);
  EXPECT_FALSE(torch::equal(first, second));
}

// A model crafted to overflow on one row must not turn that row's presence
// into a failed round: the row is left out of its step and training goes on.
TEST(NoisyClippedSumTest, ARowWithANonFiniteGradientIsLeftOutNotFatal) {
  torch::nn::Linear layer(2, 1);
  const at::Tensor x =
      torch::tensor({{1.0f, 2.0f}, {std::numeric_limits<float>::infinity(), 0.0f}, {0.5f, -1.0f}});
  PerExampleGradients tape;
  const at::Tensor losses = tape.Linear(*layer, x).sum(1);
  const at::Tensor finite = torch::isfinite(losses);
  tape.Backward(torch::where(finite, losses, torch::zeros_like(losses)));
  SecureGaussian noise("n");
  const ClippingStats stats =
      NoisyClippedSum(layer->parameters(), &tape, 10.0, 0.0, 3, noise, ~finite);
  EXPECT_EQ(stats.excluded, 1);
  EXPECT_TRUE(torch::isfinite(layer->weight.grad()).all().item<bool>());
  // What is left is the sum over rows 0 and 2 only.
  const at::Tensor expected = (x[0] + x[2]).unsqueeze(0) / 3;
  EXPECT_TRUE(torch::allclose(layer->weight.grad(), expected, 1e-6, 1e-6));
}

// The X-ray trainer under DP-SGD: the accountant's steps and rate, class
// weights never from the local class counts, and it learns a separable
// task (bright images are class 1) with moderate noise.
TEST(DpSgdTrainingTest, TheXrayCnnTrainsWithDpSgd) {
  v1::XrayModelConfig config;
  config.add_channels(4);
  config.set_image_size(8);
  for (const char* name : {"clear", "bright"}) config.add_classes(name);
  config.set_hidden_units(8);
  config.set_pixel_encoding(v1::XrayModelConfig::INTENSITY);
  models::XrayCnn model(config, /*seed=*/3);
  at::Generator g = at::make_generator<at::CPUGeneratorImpl>(12);
  const int64_t n = 600;
  const at::Tensor labels = torch::randint(0, 2, {n}, g, torch::dtype(torch::kInt64));
  // 8-bit images: dark noise, or bright noise for class 1.
  const at::Tensor images =
      (torch::rand({n, 1, 8, 8}, g) * 100 + labels.view({n, 1, 1, 1}).to(torch::kFloat32) * 120)
          .to(torch::kUInt8);
  v1::TrainingConfig training;
  training.set_local_epochs(10);
  training.set_batch_size(60);
  training.set_learning_rate(0.01);
  training::DpSgdOptions dp;
  dp.clip_norm = 1.0;
  dp.noise_multiplier = 0.5;
  dp.secret = "xray dp test";
  absl::StatusOr<training::TrainResult> r =
      training::TrainXrayModel(model, images, labels, training, /*augment=*/false, &dp);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_DOUBLE_EQ(r->sampling_rate, 0.1);
  EXPECT_EQ(r->steps, static_cast<int64_t>(StepsForEpochs(10, 0.1)));
  EXPECT_EQ(r->positive_weight, 1.0) << "class weights are never from the local counts";
  torch::NoGradGuard no_grad;
  const at::Tensor predicted = model->forward(training::UnitImages(images)).argmax(1);
  const double accuracy = (predicted == labels).to(torch::kFloat64).mean().item<double>();
  EXPECT_GT(accuracy, 0.9);
}

// The standardization statistics under DP: clipped to the range, then the
// Gaussian mechanism on the sums of u and u² (Δ = sqrt(2F)). Over 400 keys,
// the noise of the mean has the stated variance (half·σΔ/n)² (a χ² test,
// 6 standard errors: false failure below 1e-8); a range that cuts the data
// is what the statistics see, and a NaN counts as the range's centre.
TEST(NoisyColumnMomentsTest, ClipsToTheRangeAndItsNoiseHasTheStatedVariance) {
  const int64_t n = 1000;
  at::Generator g = at::make_generator<at::CPUGeneratorImpl>(5);
  const at::Tensor x = torch::stack({torch::randn({n}, g) * 2 + 10, torch::rand({n}, g) * 40}, 1);
  // σ = 1e-9: no noise to speak of; the second column is clipped to 30.
  {
    SecureGaussian noise("quiet");
    const ColumnMoments m = NoisyColumnMoments(x, 0, 30, 1e-9, noise);
    const at::Tensor clipped = x.clamp(0, 30);
    EXPECT_TRUE(torch::allclose(m.mean, clipped.mean(0), 1e-4, 1e-4)) << m.mean;
    EXPECT_TRUE(torch::allclose(m.variance, clipped.var(0, /*unbiased=*/false), 1e-3, 1e-3))
        << m.variance;
  }
  const double sigma = 20, half = 15, delta = std::sqrt(4.0);
  const double expected_sd = half * sigma * delta / static_cast<double>(n);
  const double truth = x.select(1, 0).mean().item<double>();
  std::vector<double> errors;
  for (int k = 0; k < 400; ++k) {
    SecureGaussian noise(absl::StrCat("key ", k));
    errors.push_back(NoisyColumnMoments(x, 0, 30, sigma, noise).mean[0].item<double>() - truth);
  }
  const at::Tensor e = torch::tensor(errors, torch::kFloat64);
  const double ratio = e.pow(2).mean().item<double>() / (expected_sd * expected_sd);
  EXPECT_NEAR(ratio, 1.0, 6 * std::sqrt(2.0 / 400)) << "mean noise variance / stated";
  // Variance floored: a constant column reports kMinScaledVariance x half².
  SecureGaussian noise("floor");
  const at::Tensor constant = torch::full({n, 1}, 15.0);
  EXPECT_NEAR(NoisyColumnMoments(constant, 0, 30, 1e-9, noise).variance[0].item<double>(),
              kMinScaledVariance * half * half, 1e-6);
  // NaN counts as the centre, +inf as the top of the range, -inf as its
  // bottom: each moves the mean exactly so.
  at::Tensor odd = torch::full({4, 1}, 10.0);
  odd[1][0] = std::numeric_limits<float>::quiet_NaN();
  odd[2][0] = std::numeric_limits<float>::infinity();
  odd[3][0] = -std::numeric_limits<float>::infinity();
  SecureGaussian noise2("nan");
  const ColumnMoments m = NoisyColumnMoments(odd, 0, 30, 1e-9, noise2);
  EXPECT_NEAR(m.mean[0].item<double>(), (10.0 + 15.0 + 30.0 + 0.0) / 4, 1e-4);
  EXPECT_TRUE(torch::isfinite(m.variance).all().item<bool>());
  // The statistics' noise is not the gradients': another key.
  SecureGaussian gradients("same secret"), statistics("same secret|statistics");
  at::Tensor a = torch::empty({64}), b = torch::empty({64});
  gradients.Fill(a, 1.0);
  statistics.Fill(b, 1.0);
  EXPECT_FALSE(torch::allclose(a, b));
}

// The noise calibrated to a target spends it over the planned rounds with
// the statistics query counted: ε after planned_rounds rounds is within 0.01
// below the target, and σ is above what DP-SGD alone would need.
TEST(PrivacyPlanTest, TheCalibratedNoiseSpendsTheTargetWithTheStatisticsQuery) {
  v1::PrivacyConfig p;
  p.set_mode(v1::PrivacyConfig::DP_SGD);
  p.set_target_epsilon(3);
  ASSERT_TRUE(FinalizePrivacyConfig(&p, 10000, 5).ok());
  EXPECT_EQ(p.stats_noise_multiplier(), 20);
  EXPECT_EQ(p.numeric_low(), 0);
  EXPECT_EQ(p.numeric_high(), 30);
  v1::TrainingConfig training;
  training.set_batch_size(100);
  training.set_local_epochs(2);
  absl::StatusOr<DpSgdPlan> plan = PlanDpSgd(p, training, 10000);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->stats_noise_multiplier, 20);
  v1::PrivacySpent spent;
  for (int r = 0; r < 5; ++r) ASSERT_TRUE(AddRound(*plan, &spent).ok());
  EXPECT_LE(spent.epsilon(), 3.0);
  EXPECT_GE(spent.epsilon(), 3.0 - 0.01);
  absl::StatusOr<double> alone = NoiseMultiplierFor(
      3, p.delta(), plan->sampling_rate, plan->steps * 5, kProductOrders, kProductConversion);
  ASSERT_TRUE(alone.ok());
  EXPECT_GT(plan->noise_multiplier, *alone);

  v1::PrivacyConfig bad = p;
  bad.set_numeric_low(40);
  EXPECT_THAT(std::string(FinalizePrivacyConfig(&bad, 10000, 5).message()),
              ::testing::HasSubstr("privacy.numeric_high: must be finite, within ±1e9 and above "
                                   "numeric_low 40"));
  bad = p;
  bad.set_numeric_low(-5);
  bad.set_numeric_high(0);
  EXPECT_THAT(std::string(FinalizePrivacyConfig(&bad, 10000, 5).message()),
              ::testing::HasSubstr("privacy.numeric_high: set it with numeric_low"));
  bad = p;
  bad.set_stats_noise_multiplier(0.5);
  EXPECT_THAT(std::string(FinalizePrivacyConfig(&bad, 10000, 5).message()),
              ::testing::HasSubstr("privacy.stats_noise_multiplier: must be in [1, 1e6]"));
}

data::DeclarationTable Table(size_t rows, uint32_t seed = 11) {
  data::DeclarationTable t;
  t.rows = rows;
  t.numeric_names = {"value", "weight"};
  t.categorical_names = {"origin"};
  t.buckets = {8};
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int64_t> origin(0, 7);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (size_t i = 0; i < rows; ++i) {
    const float value = normal(rng);
    const int64_t o = origin(rng);
    const double logit = -2.0 + 3.0 * (o == 3) + 2.0 * (value > 1.0f);
    t.numeric.push_back(value);
    t.numeric.push_back(normal(rng));
    t.categorical.push_back(o);
    t.labels.push_back(unit(rng) < 1.0 / (1.0 + std::exp(-logit)) ? 1.0f : 0.0f);
  }
  return t;
}

std::vector<int64_t> AllRows(size_t n) {
  std::vector<int64_t> rows(n);
  std::iota(rows.begin(), rows.end(), 0);
  return rows;
}

TEST(DpSgdTrainingTest, TakesTheAccountantsStepsWithPoissonBatchesAndKeepsStatisticsPrivate) {
  const data::DeclarationTable table = Table(2000);
  const std::vector<int64_t> rows = AllRows(2000);
  models::RiskMlp model(2, table.buckets, v1::RiskModelConfig(), 1);
  v1::TrainingConfig config;
  config.set_local_epochs(2);
  config.set_batch_size(100);
  training::DpSgdOptions dp;
  dp.clip_norm = 1.0;
  dp.noise_multiplier = 1.0;
  dp.secret = "test secret 77";
  const absl::StatusOr<training::TrainResult> r =
      training::TrainRiskModel(model, table, rows, config, &dp);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_DOUBLE_EQ(r->sampling_rate, 0.05);
  EXPECT_EQ(r->steps, static_cast<int64_t>(StepsForEpochs(2, 0.05)));
  EXPECT_EQ(r->steps, 40);
  // 40 steps of Binomial(2000, 0.05): mean 4000, sd sqrt(40·95) ≈ 62; 6 sd.
  EXPECT_NEAR(static_cast<double>(r->samples_seen), 4000.0, 6 * std::sqrt(40 * 2000 * 0.05 * 0.95));
  EXPECT_EQ(r->positive_weight, 1.0) << "never derived from the local positive rate";
  // Without a statistics query the standardization is not set from the data.
  EXPECT_FALSE(model->HasStandardization());
  EXPECT_TRUE(std::isfinite(r->mean_loss));

  // With one, the model standardizes with (and sends back) the noisy
  // moments: close to the data's (σ 20 on 2000 rows), never equal to them.
  dp.stats_noise_multiplier = 20;
  dp.numeric_low = -10;
  dp.numeric_high = 10;
  models::RiskMlp private_stats(2, table.buckets, v1::RiskModelConfig(), 1);
  ASSERT_TRUE(training::TrainRiskModel(private_stats, table, rows, config, &dp).ok());
  ASSERT_TRUE(private_stats->HasStandardization());
  const auto params = private_stats->named_buffers();
  const at::Tensor mean = params["standardize.running_mean"];
  const at::Tensor numeric = training::NumericTensor(table, rows);
  // Noise sd of a mean: 10 · 20 · 2 / 2000 = 0.2; within 6 of them.
  EXPECT_TRUE(torch::allclose(mean, numeric.mean(0), 0, 1.2)) << mean;
  EXPECT_FALSE(torch::equal(mean, numeric.mean(0)));
}

TEST(DpSgdTrainingTest, IsReproducibleForASecretSeedAndDiffersAcrossSeeds) {
  const data::DeclarationTable table = Table(500);
  const std::vector<int64_t> rows = AllRows(500);
  auto train = [&](uint64_t secret) {
    models::AnomalyAutoencoder model(2, table.buckets, v1::AnomalyModelConfig(), 1);
    training::DpSgdOptions dp;
    dp.secret = absl::StrCat("test secret ", secret);
    v1::TrainingConfig config;
    config.set_batch_size(50);
    EXPECT_TRUE(training::TrainAnomalyModel(model, table, rows, config, &dp).ok());
    return model->parameters()[0].detach().clone();
  };
  EXPECT_TRUE(torch::equal(train(5), train(5)));
  EXPECT_FALSE(torch::equal(train(5), train(6)));
}

// With σ = 1 and C = 1, DP-SGD must still learn the signal (it is a training
// method, not only noise): on the hold-out, the risky origin scores higher.
TEST(DpSgdTrainingTest, LearnsTheSignalWithModerateNoise) {
  const data::DeclarationTable table = Table(6000, 3);
  const std::vector<int64_t> train_rows = AllRows(5000);
  std::vector<int64_t> holdout(1000);
  std::iota(holdout.begin(), holdout.end(), 5000);
  models::RiskMlp model(2, table.buckets, v1::RiskModelConfig(), 1);
  v1::TrainingConfig config;
  config.set_local_epochs(5);
  config.set_batch_size(250);
  config.set_learning_rate(0.01);
  training::DpSgdOptions dp;
  dp.clip_norm = 1.0;
  dp.noise_multiplier = 1.0;
  dp.secret = "test secret 1";
  ASSERT_TRUE(TrainRiskModel(model, table, train_rows, config, &dp).ok());
  torch::NoGradGuard no_grad;
  const at::Tensor scores = torch::sigmoid(model->forward(
      training::NumericTensor(table, holdout), training::CategoricalTensor(table, holdout)));
  // The origin-3 rows are the riskiest: their mean score must be higher.
  const at::Tensor risky = training::CategoricalTensor(table, holdout).select(1, 0) == 3;
  EXPECT_GT(scores.index({risky}).mean().item<double>(),
            scores.index({~risky}).mean().item<double>() + 0.1);
}

// A membership-inference attacker (Yeom et al. 2018: a row is called a member
// when the model's loss on it is low) against a small risk model trained on
// 300 rows for 60 epochs: without privacy it tells members from non-members
// (advantage above 0.3); with DP-SGD at ε ≈ 1 its advantage (the largest TPR − FPR over every
// threshold) stays within what (ε, δ)-DP allows, (e^ε − 1)/(e^ε + 1) + δ,
// plus the sampling error of 300 + 300 rows (4 standard errors of a
// difference of two proportions, 0.16).
double MembershipAdvantage(models::RiskMlp& model, const data::DeclarationTable& table,
                           const std::vector<int64_t>& members,
                           const std::vector<int64_t>& others) {
  torch::NoGradGuard no_grad;
  model->eval();
  auto losses = [&](const std::vector<int64_t>& rows) {
    return F::binary_cross_entropy_with_logits(
        model->forward(training::NumericTensor(table, rows),
                       training::CategoricalTensor(table, rows)),
        training::LabelTensor(table, rows),
        F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kNone));
  };
  const at::Tensor in = losses(members), out = losses(others);
  double best = 0;
  for (const at::Tensor& t : {in, out}) {
    for (int64_t i = 0; i < t.numel(); ++i) {
      const double threshold = t[i].item<double>();
      const double tpr = (in <= threshold).to(torch::kFloat64).mean().item<double>();
      const double fpr = (out <= threshold).to(torch::kFloat64).mean().item<double>();
      best = std::max(best, tpr - fpr);
    }
  }
  return best;
}

TEST(DpSgdTrainingTest, AMembershipAttackGetsLittleFromADpModelAndMuchFromAPlainOne) {
  // Weak signal, many categories: a plain model can only memorize.
  data::DeclarationTable table = Table(600, 21);
  table.buckets = {64};
  std::mt19937 rng(5);
  for (int64_t& c : table.categorical) c = static_cast<int64_t>(rng() % 64);
  std::vector<int64_t> members(300), others(300);
  std::iota(members.begin(), members.end(), 0);
  std::iota(others.begin(), others.end(), 300);
  v1::RiskModelConfig wide;
  wide.add_hidden_units(128);
  wide.add_hidden_units(64);
  wide.set_embedding_dim(16);
  v1::TrainingConfig config;
  config.set_local_epochs(60);
  config.set_batch_size(50);
  config.set_learning_rate(0.01);
  config.set_positive_weight(1);

  models::RiskMlp plain(2, table.buckets, wide, 1);
  ASSERT_TRUE(training::TrainRiskModel(plain, table, members, config).ok());
  const double plain_advantage = MembershipAdvantage(plain, table, members, others);

  // σ for ε = 1 at δ = 1e-3 over the 60 epochs' steps (q = 50 / 300).
  const double q = 50.0 / 300.0;
  const uint64_t steps = StepsForEpochs(60, q);
  const double sigma =
      *NoiseMultiplierFor(1.0, 1e-3, q, steps, Orders::kOpacus, Conversion::kImproved);
  const double epsilon =
      EpsilonOf(q, sigma, steps, 1e-3, Orders::kOpacus, Conversion::kImproved)->epsilon;
  ASSERT_LE(epsilon, 1.0);
  models::RiskMlp private_model(2, table.buckets, wide, 1);
  training::DpSgdOptions dp;
  dp.clip_norm = 1.0;
  dp.noise_multiplier = sigma;
  dp.secret = "membership";
  ASSERT_TRUE(training::TrainRiskModel(private_model, table, members, config, &dp).ok());
  const double dp_advantage = MembershipAdvantage(private_model, table, members, others);

  const double bound = (std::exp(epsilon) - 1) / (std::exp(epsilon) + 1) + 1e-3;
  EXPECT_GT(plain_advantage, 0.3) << "the attack works on a plain model";
  RecordProperty("plain_advantage", std::to_string(plain_advantage));
  RecordProperty("dp_advantage", std::to_string(dp_advantage));
  EXPECT_LE(dp_advantage, bound + 0.16) << "epsilon " << epsilon << ", sigma " << sigma;
  // Measured: 0.35 plain, 0.10 private.
  EXPECT_LT(dp_advantage, plain_advantage / 2);
}

}  // namespace
}  // namespace fedcustoms::privacy
