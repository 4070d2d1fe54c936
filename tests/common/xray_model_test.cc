#include <ATen/CPUGeneratorImpl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/metrics/binary_metrics.h"
#include "common/models/xray_cnn.h"
#include "common/tensor/named_tensors.h"
#include "common/tensor/tensor_spec.h"
#include "common/training/xray_trainer.h"

namespace fedcustoms::training {
namespace {

using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

constexpr char kPython[] = "/usr/bin/python3";
// Exit code of the script below when the interpreter lacks torch.
constexpr int kNoTorch = 77;

v1::XrayModelConfig TinyConfig(int depth = 2, uint32_t input_channels = 1,
                               uint32_t image_size = 16) {
  v1::XrayModelConfig c;
  const uint32_t widths[] = {4, 6, 8, 8, 8, 8};
  for (int i = 0; i < depth; ++i) c.add_channels(widths[i]);
  c.set_image_size(image_size);
  c.set_input_channels(input_channels);
  for (const char* name : {"clear", "firearm", "knife"}) c.add_classes(name);
  c.set_hidden_units(5);
  return c;
}

// The model the training tests learn with: 32x32 images, three classes.
v1::XrayModelConfig ShapesConfig() {
  v1::XrayModelConfig c;
  c.add_channels(8);
  c.add_channels(16);
  c.set_image_size(32);
  for (const char* name : {"clear", "square", "bar"}) c.add_classes(name);
  c.set_hidden_units(32);
  return c;
}

struct XraySet {
  at::Tensor images;  // int16 holding uint16 pixels [N, 1, S, S]
  at::Tensor labels;  // int64 [N]
};

// A learnable synthetic X-ray problem: every image is a noisy background of
// random brightness; class 1 adds a bright 6x6 square, class 2 a dark 3x12
// bar (horizontal or vertical), each at a random position. Half the images
// are clear, a quarter each threat: the threats are the rarer classes.
XraySet ShapesSet(int64_t n, uint32_t seed, int64_t size = 32) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> background(0.35f, 0.65f);
  std::normal_distribution<float> noise(0.0f, 0.05f);
  std::vector<uint16_t> pixels(static_cast<size_t>(n * size * size));
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t label = i % 4 == 1 ? 1 : i % 4 == 3 ? 2 : 0;
    labels[i] = label;
    std::vector<float> image(static_cast<size_t>(size * size), background(rng));
    if (label == 1) {
      std::uniform_int_distribution<int64_t> at(0, size - 6);
      const int64_t r = at(rng), c = at(rng);
      for (int64_t y = r; y < r + 6; ++y) {
        for (int64_t x = c; x < c + 6; ++x) image[y * size + x] = 0.95f;
      }
    } else if (label == 2) {
      const bool vertical = rng() % 2 == 1;
      const int64_t h = vertical ? 12 : 3, w = vertical ? 3 : 12;
      const int64_t r = std::uniform_int_distribution<int64_t>(0, size - h)(rng);
      const int64_t c = std::uniform_int_distribution<int64_t>(0, size - w)(rng);
      for (int64_t y = r; y < r + h; ++y) {
        for (int64_t x = c; x < c + w; ++x) image[y * size + x] = 0.05f;
      }
    }
    for (int64_t p = 0; p < size * size; ++p) {
      const float v = std::clamp(image[p] + noise(rng), 0.0f, 1.0f);
      pixels[i * size * size + p] = static_cast<uint16_t>(std::lround(v * 65535.0f));
    }
  }
  return {Uint16Images(pixels, n, 1, size, size), torch::tensor(labels, torch::kInt64)};
}

v1::TrainingConfig FastConfig(uint32_t epochs = 5) {
  v1::TrainingConfig c;
  c.set_local_epochs(epochs);
  c.set_batch_size(32);
  c.set_learning_rate(3e-3);
  return c;
}

bool AllEqual(const tensor::NamedTensors& a, const tensor::NamedTensors& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].first != b[i].first || !torch::equal(a[i].second, b[i].second)) return false;
  }
  return true;
}

at::Tensor SomeImages(int64_t n, const v1::XrayModelConfig& c) {
  const int64_t s = c.image_size();
  return torch::arange(n * c.input_channels() * s * s, torch::kFloat32)
      .reshape({n, c.input_channels(), s, s})
      .remainder(97.0)
      .div(96.0);
}

// Tests of the model.

TEST(XrayCnn, ShapesAndStateNamesForEachDepthAndChannelCount) {
  for (int depth = 1; depth <= 3; ++depth) {
    for (uint32_t input_channels : {1u, 2u}) {
      SCOPED_TRACE(absl::StrCat("depth ", depth, ", input_channels ", input_channels));
      const v1::XrayModelConfig config = TinyConfig(depth, input_channels);
      models::XrayCnn model(config);
      const int64_t side = 16 >> depth;
      const int64_t last = config.channels(depth - 1);
      EXPECT_EQ(model->flat_features(), last * side * side);

      std::vector<tensor::TensorSpec> expected;
      int64_t in = input_channels;
      for (int i = 0; i < depth; ++i) {
        const int64_t out = config.channels(i);
        expected.push_back({absl::StrCat("conv.", i, ".bias"), torch::kFloat32, {out}});
        expected.push_back({absl::StrCat("conv.", i, ".weight"), torch::kFloat32, {out, in, 3, 3}});
        in = out;
      }
      expected.push_back({"hidden.bias", torch::kFloat32, {5}});
      expected.push_back({"hidden.weight", torch::kFloat32, {5, last * side * side}});
      expected.push_back({"output.bias", torch::kFloat32, {3}});
      expected.push_back({"output.weight", torch::kFloat32, {3, 5}});
      const tensor::NamedTensors state = tensor::StateOf(*model);
      EXPECT_TRUE(tensor::IsCanonical(state).ok());
      EXPECT_THAT(tensor::SpecOf(state), ElementsAreArray(expected));

      model->eval();
      const at::Tensor logits = model->forward(SomeImages(7, config));
      EXPECT_EQ(logits.sizes(), torch::IntArrayRef({7, 3}));
      EXPECT_EQ(logits.scalar_type(), torch::kFloat32);
      EXPECT_TRUE(torch::isfinite(logits).all().item<bool>());
    }
  }
}

TEST(XrayCnn, PoolingFloorsOddSides) {
  v1::XrayModelConfig c = TinyConfig(3);
  c.set_image_size(28);  // 28 -> 14 -> 7 -> 3
  models::XrayCnn model(c);
  EXPECT_EQ(model->flat_features(), 8 * 3 * 3);
  model->eval();
  EXPECT_EQ(model->forward(SomeImages(2, c)).sizes(), torch::IntArrayRef({2, 3}));
}

TEST(XrayCnn, UnsetConfigFieldsTakeTheDocumentedDefaults) {
  models::XrayCnn model{v1::XrayModelConfig()};
  const v1::XrayModelConfig& c = model->config();
  EXPECT_THAT(c.channels(), ElementsAreArray({16u, 32u, 64u}));
  EXPECT_EQ(c.image_size(), 64u);
  EXPECT_EQ(c.input_channels(), 1u);
  EXPECT_THAT(c.classes(), ElementsAreArray({"clear", "firearm", "knife", "drugs"}));
  EXPECT_EQ(c.hidden_units(), 128u);
  EXPECT_EQ(model->flat_features(), 64 * 8 * 8);
  EXPECT_EQ(model->num_classes(), 4);
}

// The first convolution reads standardized attenuation by default: a pixel at
// the center's transmission is 0, one a scale darker is 1, a pixel of 0
// counts is capped at attenuation 8; INTENSITY passes the pixels through.
TEST(XrayCnn, EncodesPixelsAsStandardizedAttenuationUnlessToldIntensity) {
  v1::XrayModelConfig c = TinyConfig();
  models::XrayCnn attenuation(c);
  const at::Tensor pixels = torch::tensor(
      {std::exp(-0.75f), std::exp(-1.05f), 1.0f, 0.0f, std::exp(-9.0f)}, torch::kFloat32);
  const at::Tensor expected =
      torch::tensor({0.0f, 1.0f, -2.5f, (8 - 0.75f) / 0.3f, (8 - 0.75f) / 0.3f}, torch::kFloat32);
  EXPECT_TRUE(torch::allclose(attenuation->EncodePixels(pixels), expected, 1e-5, 1e-4))
      << attenuation->EncodePixels(pixels);

  c.set_pixel_encoding(v1::XrayModelConfig::INTENSITY);
  models::XrayCnn intensity(c);
  EXPECT_TRUE(torch::equal(intensity->EncodePixels(pixels), pixels));
  // Same weights, different inputs to the first convolution: other logits.
  const at::Tensor images = SomeImages(3, c);
  EXPECT_FALSE(torch::allclose(attenuation->forward(images), intensity->forward(images)));
}

TEST(XrayCnn, SameSeedSameWeightsDifferentSeedDifferentWeights) {
  const v1::XrayModelConfig c = TinyConfig(3, 2);
  EXPECT_TRUE(
      AllEqual(tensor::StateOf(*models::XrayCnn(c, 42)), tensor::StateOf(*models::XrayCnn(c, 42))));
  const tensor::NamedTensors a = tensor::StateOf(*models::XrayCnn(c, 42));
  const tensor::NamedTensors b = tensor::StateOf(*models::XrayCnn(c, 43));
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_FALSE(torch::equal(a[i].second, b[i].second)) << a[i].first;
  }
}

TEST(XrayCnn, InitializationDoesNotDependOnTheGlobalRng) {
  torch::manual_seed(5);
  models::XrayCnn model(TinyConfig(), 9);
  torch::manual_seed(123);
  EXPECT_TRUE(
      AllEqual(tensor::StateOf(*model), tensor::StateOf(*models::XrayCnn(TinyConfig(), 9))));
  model->ResetParameters(9);
  EXPECT_TRUE(
      AllEqual(tensor::StateOf(*model), tensor::StateOf(*models::XrayCnn(TinyConfig(), 9))));
}

// PyTorch's default: U(±1/sqrt(fan_in)) for weights and biases alike, whose
// standard deviation is bound / sqrt(3).
TEST(XrayCnn, InitializationFollowsPyTorchsDefaultBounds) {
  v1::XrayModelConfig c = TinyConfig(2);
  c.set_hidden_units(64);
  models::XrayCnn model(c, 3);
  for (const auto& [name, t] : tensor::StateOf(*model)) {
    if (name.ends_with(".bias")) continue;
    SCOPED_TRACE(name);
    const double bound = 1.0 / std::sqrt(static_cast<double>(t.numel() / t.size(0)));
    EXPECT_LE(t.abs().max().item<double>(), bound);
    if (t.numel() >= 500) {
      EXPECT_NEAR(t.std().item<double>(), bound / std::sqrt(3.0), 0.1 * bound);
    }
  }
}

TEST(XrayCnn, DropoutIsReproducibleFromItsSeedAndOffInEval) {
  v1::XrayModelConfig c = TinyConfig();
  c.set_dropout(0.5);
  models::XrayCnn model(c);
  const at::Tensor images = SomeImages(6, c);
  model->train();
  auto run = [&](uint64_t seed) {
    model->SeedDropout(seed);
    return model->forward(images).detach();
  };
  EXPECT_TRUE(torch::equal(run(77), run(77)));
  EXPECT_FALSE(torch::equal(run(77), run(78)));
  model->eval();
  EXPECT_TRUE(torch::equal(model->forward(images), model->forward(images)));
}

// One Python run (importing torch takes seconds): our pickled state loads
// strictly into the PyTorch module documented in xray_cnn.h and gives the
// same logits on dual-energy images of a side that pooling floors (20 -> 10
// -> 5 -> 2).
TEST(XrayCnn, PickledStateGivesTheSameLogitsInPyTorch) {
  std::string pattern = (std::filesystem::path(testing::TempDir()) / "xray_cnn_XXXXXX").string();
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
  const std::filesystem::path dir = pattern;
  v1::XrayModelConfig c = TinyConfig(3, 2, 20);
  c.set_dropout(0.3);
  c.set_attenuation_center(1.25);
  c.set_attenuation_scale(0.5);
  models::XrayCnn model(c, 5);
  model->eval();
  ASSERT_TRUE(tensor::SavePickledState(tensor::StateOf(*model), dir / "model.pt").ok());
  // Some pixels at 0, where the attenuation is capped at 8.
  const at::Tensor images = torch::rand({5, 2, 20, 20}, torch::kFloat32).sub_(0.05).clamp_min_(0.0);
  tensor::NamedTensors io;
  io.emplace_back("images", images);
  io.emplace_back("logits", model->forward(images).detach());
  ASSERT_TRUE(tensor::SavePickledState(io, dir / "io.pt").ok());

  const std::string script = R"PY(
import math
import sys
try:
    import torch
    from torch import nn
    import torch.nn.functional as F
except ImportError:
    sys.exit(77)

class XrayCnn(nn.Module):
    def __init__(self, channels, input_channels, image_size, hidden, classes, p, center, scale):
        super().__init__()
        self.center, self.scale = center, scale
        widths = [input_channels] + channels
        self.conv = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1)
                                  for a, b in zip(widths, widths[1:]))
        side = image_size >> len(channels)
        self.hidden = nn.Linear(channels[-1] * side * side, hidden)
        self.dropout = nn.Dropout(p)
        self.output = nn.Linear(hidden, classes)
    def forward(self, x):
        x = (-x.clamp_min(math.exp(-8)).log() - self.center) / self.scale
        for conv in self.conv:
            x = F.max_pool2d(F.relu(conv(x)), 2)
        x = F.relu(self.hidden(x.flatten(1)))
        return self.output(self.dropout(x))

m = XrayCnn([4, 6, 8], 2, 20, 5, 3, 0.3, 1.25, 0.5)
m.load_state_dict(torch.load(sys.argv[1]), strict=True)
m.eval()
io = torch.load(sys.argv[2])
with torch.no_grad():
    got = m(io["images"])
err = (got - io["logits"]).abs().max().item()
assert err <= 1e-5, err
print("LOGITS MATCH")
)PY";
  std::ofstream(dir / "script.py") << script;
  const std::string command =
      absl::StrCat(kPython, " ", (dir / "script.py").string(), " ", (dir / "model.pt").string(),
                   " ", (dir / "io.pt").string(), " 2>&1");
  std::string output;
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  char buffer[4096];
  while (size_t n = std::fread(buffer, 1, sizeof(buffer), pipe)) output.append(buffer, n);
  const int status = ::pclose(pipe);
  const int exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::filesystem::remove_all(dir);
  if (exit_code == kNoTorch) GTEST_SKIP() << kPython << " cannot import torch";
  ASSERT_EQ(exit_code, 0) << output;
  EXPECT_EQ(output, "LOGITS MATCH\n");
}

// Tests of the model's error paths follow.

TEST(XrayCnnErrors, ConfigErrorsNameTheField) {
  v1::XrayModelConfig c = TinyConfig(4, 1, 8);
  EXPECT_EQ(models::CheckXrayCnnConfig(c).message(),
            "xray_model.channels: 4 convolution blocks leave no pixel of image_size 8 (each "
            "halves it); at most 3 fit");
  EXPECT_TRUE(models::CheckXrayCnnConfig(TinyConfig(3, 1, 8)).ok());
  c = TinyConfig(6, 1, 32);
  EXPECT_EQ(models::CheckXrayCnnConfig(c, "tasks[1].xray_model").message(),
            "tasks[1].xray_model.channels: 6 convolution blocks leave no pixel of image_size 32 "
            "(each halves it); at most 5 fit");

  // The field checks shared with the data loader (xray::CheckXrayModelConfig).
  c = TinyConfig();
  c.set_channels(1, 0);
  EXPECT_THAT(std::string(models::CheckXrayCnnConfig(c).message()),
              HasSubstr("xray_model.channels[1]"));
  c = TinyConfig();
  c.set_input_channels(3);
  EXPECT_THAT(std::string(models::CheckXrayCnnConfig(c).message()),
              HasSubstr("xray_model.input_channels"));
  c = TinyConfig();
  c.set_dropout(1.0);
  EXPECT_THAT(std::string(models::CheckXrayCnnConfig(c).message()),
              HasSubstr("xray_model.dropout"));
  c = TinyConfig();
  c.set_classes(2, "clear");
  EXPECT_THAT(std::string(models::CheckXrayCnnConfig(c).message()),
              HasSubstr("xray_model.classes[2]"));

  c = TinyConfig(1, 1, 512);
  c.set_channels(0, 512);
  c.set_hidden_units(8192);
  EXPECT_EQ(models::CheckXrayCnnConfig(c).message(),
            "xray_model.hidden_units: the hidden layer would hold 274877906944 weights, at most "
            "268435456 (add convolution blocks or lower hidden_units)");

  EXPECT_THROW(models::XrayCnn(TinyConfig(4, 1, 8)), c10::Error);
}

TEST(XrayCnnErrors, ForwardRejectsWrongInputs) {
  const v1::XrayModelConfig c = TinyConfig();
  models::XrayCnn model(c);
  EXPECT_THROW(model->forward(torch::zeros({2, 2, 16, 16})), c10::Error);  // channels
  EXPECT_THROW(model->forward(torch::zeros({2, 1, 16, 15})), c10::Error);  // size
  EXPECT_THROW(model->forward(torch::zeros({1, 16, 16})), c10::Error);     // rank
  EXPECT_THROW(model->forward(torch::zeros({2, 1, 16, 16}, torch::kFloat64)), c10::Error);
}

// Tests of image conversion and augmentation.

TEST(XrayTrainer, UnitImagesScalesEachStoredWidth) {
  const std::vector<uint16_t> pixels = {0, 1, 32768, 65535};
  const at::Tensor wide = Uint16Images(pixels, 1, 1, 2, 2);
  EXPECT_EQ(wide.scalar_type(), torch::kInt16);
  EXPECT_TRUE(torch::allclose(UnitImages(wide).flatten(),
                              torch::tensor({0.0f, 1.0f / 65535, 32768.0f / 65535, 1.0f})));
  EXPECT_EQ(UnitImages(wide).max().item<float>(), 1.0f);
  const at::Tensor narrow = torch::tensor({0, 51, 255}, torch::kUInt8).view({1, 1, 1, 3});
  EXPECT_TRUE(torch::allclose(UnitImages(narrow).flatten(), torch::tensor({0.0f, 0.2f, 1.0f})));
  const at::Tensor unit = torch::rand({1, 1, 2, 2});
  EXPECT_EQ(UnitImages(unit).data_ptr(), unit.data_ptr());  // shared, not copied
  EXPECT_THROW(UnitImages(unit.to(torch::kFloat64)), c10::Error);
  EXPECT_THROW(Uint16Images(pixels, 1, 1, 2, 3), c10::Error);
}

// A batch of 64 copies of an 8x8 image with one bright pixel: images under 16
// pixels are not shifted, so the pixel lands on one of its four mirror
// positions, scaled by a gain in [0.9, 1.1]; all four flips occur.
TEST(XrayTrainer, AugmentationFlipsAndScalesEachImageOnItsOwn) {
  at::Tensor batch = torch::zeros({64, 1, 8, 8});
  batch.index_put_({torch::indexing::Slice(), 0, 1, 2}, 0.5f);
  const at::Tensor before = batch.clone();
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(7);
  const at::Tensor out = AugmentXrayBatch(batch, generator);
  EXPECT_TRUE(torch::equal(batch, before));  // input untouched
  ASSERT_EQ(out.sizes(), batch.sizes());
  std::set<std::pair<int64_t, int64_t>> positions;
  std::vector<float> gains;
  for (int64_t i = 0; i < 64; ++i) {
    const at::Tensor image = out[i][0];
    ASSERT_EQ(image.nonzero().size(0), 1) << i;
    const int64_t flat = image.flatten().argmax().item<int64_t>();
    positions.emplace(flat / 8, flat % 8);
    gains.push_back(image.max().item<float>() / 0.5f);
  }
  EXPECT_EQ(positions, (std::set<std::pair<int64_t, int64_t>>{{1, 2}, {1, 5}, {6, 2}, {6, 5}}));
  EXPECT_GE(*std::min_element(gains.begin(), gains.end()), 0.9f - 1e-6f);
  EXPECT_LE(*std::max_element(gains.begin(), gains.end()), 1.1f + 1e-6f);
  EXPECT_GT(
      *std::max_element(gains.begin(), gains.end()) - *std::min_element(gains.begin(), gains.end()),
      0.05f);

  // The same generator seed gives the same batch.
  at::Generator again = at::make_generator<at::CPUGeneratorImpl>(7);
  EXPECT_TRUE(torch::equal(AugmentXrayBatch(batch, again), out));
}

// At 32x32 shifts reach 32/16 = 2 pixels each way, filled from the edge: a
// uniform image stays uniform (zero fill would darken a border).
TEST(XrayTrainer, AugmentationShiftsUpToOneSixteenthWithEdgeFill) {
  at::Tensor dot = torch::zeros({200, 2, 32, 32});
  dot.index_put_({torch::indexing::Slice(), torch::indexing::Slice(), 16, 16}, 0.5f);
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(3);
  const at::Tensor out = AugmentXrayBatch(dot, generator);
  std::set<int64_t> rows;
  for (int64_t i = 0; i < 200; ++i) {
    // Both energy channels move together.
    ASSERT_TRUE(torch::equal(out[i][0], out[i][1])) << i;
    const int64_t flat = out[i][0].flatten().argmax().item<int64_t>();
    rows.insert(flat / 32);
  }
  // Row 16, or 15 when flipped, moved by -2..2.
  EXPECT_EQ(rows, (std::set<int64_t>{13, 14, 15, 16, 17, 18}));

  const at::Tensor flat_grey = torch::full({50, 1, 32, 32}, 0.6f);
  const at::Tensor shifted = AugmentXrayBatch(flat_grey, generator);
  for (int64_t i = 0; i < 50; ++i) {
    EXPECT_EQ(shifted[i].min().item<float>(), shifted[i].max().item<float>()) << i;
  }
  // Saturated pixels stay in [0, 1] under a gain above 1.
  EXPECT_LE(AugmentXrayBatch(torch::ones({50, 1, 32, 32}), generator).max().item<float>(), 1.0f);
}

TEST(XrayTrainer, ClassWeightsFollowTheDocumentedRule) {
  v1::TrainingConfig c;
  const std::vector<int64_t> counts = {90, 10, 0, 1};
  std::vector<double> w = XrayClassWeights(counts, c);
  ASSERT_EQ(w.size(), 4u);
  EXPECT_DOUBLE_EQ(w[0], 1.0);
  EXPECT_DOUBLE_EQ(w[1], 3.0);
  EXPECT_DOUBLE_EQ(w[2], 1.0);  // absent locally: never a target here
  EXPECT_DOUBLE_EQ(w[3], std::sqrt(90.0));
  c.set_max_positive_weight(5);
  EXPECT_DOUBLE_EQ(XrayClassWeights(counts, c)[3], 5.0);
  // Class 0 need not be the majority: the most frequent class weighs 1.
  EXPECT_THAT(XrayClassWeights(std::vector<int64_t>{4, 16}, v1::TrainingConfig()),
              ElementsAreArray({2.0, 1.0}));
  EXPECT_THAT(XrayClassWeights(std::vector<int64_t>{0, 0, 0}, v1::TrainingConfig()),
              ElementsAreArray({1.0, 1.0, 1.0}));
  // An explicit positive_weight weighs every threat class.
  c.set_positive_weight(7.5);
  EXPECT_THAT(XrayClassWeights(counts, c), ElementsAreArray({1.0, 7.5, 7.5, 7.5}));
}

// Tests of training and evaluation.

// 800 images in batches of 16 give the optimizer 50 steps an epoch; the
// accuracy passes 0.95 after about five epochs (fewer steps, e.g. 480 images in
// batches of 32, leave it near 0.75).
TEST(XrayTrainer, LearnsShapesAndBeatsTheUntrainedModel) {
  const XraySet train = ShapesSet(800, 1);
  const XraySet holdout = ShapesSet(240, 2);
  models::XrayCnn model(ShapesConfig(), 1);
  absl::StatusOr<v1::EvaluationMetrics> before =
      EvaluateXray(model, holdout.images, holdout.labels);
  ASSERT_TRUE(before.ok()) << before.status();

  v1::TrainingConfig config = FastConfig(8);
  config.set_batch_size(16);
  absl::StatusOr<TrainResult> result =
      TrainXrayModel(model, train.images, train.labels, config, /*augment=*/true);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_FALSE(model->is_training());
  absl::StatusOr<v1::EvaluationMetrics> after = EvaluateXray(model, holdout.images, holdout.labels);
  ASSERT_TRUE(after.ok()) << after.status();

  EXPECT_GT(after->accuracy(), 0.9);
  EXPECT_GT(after->accuracy(), before->accuracy() + 0.3);
  EXPECT_GT(after->roc_auc(), 0.95);
  EXPECT_GT(after->pr_auc(), 0.9);
  EXPECT_LT(after->loss(), before->loss());
  EXPECT_EQ(after->examples(), 240u);
  EXPECT_EQ(after->positives(), 120u);
  EXPECT_EQ(after->at_budget_size(), static_cast<int>(metrics::kBudgetPercents.size()));
  EXPECT_TRUE(std::isfinite(result->mean_loss));
}

TEST(XrayTrainer, ReportsCountsAndTheLargestClassWeight) {
  const XraySet data = ShapesSet(100, 3);  // 50 clear, 25 squares, 25 bars
  models::XrayCnn model(ShapesConfig());
  v1::TrainingConfig c = FastConfig(3);
  absl::StatusOr<TrainResult> result = TrainXrayModel(model, data.images, data.labels, c, false);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->samples, 100);
  EXPECT_EQ(result->samples_seen, 300);
  EXPECT_EQ(result->steps, 3 * 4);  // ceil(100 / 32) per epoch
  EXPECT_DOUBLE_EQ(result->positive_weight, std::sqrt(2.0));

  c.set_batch_size(1);  // no BatchNorm: single-image batches are fine
  c.set_local_epochs(1);
  result = TrainXrayModel(model, data.images.slice(0, 0, 5), data.labels.slice(0, 0, 5), c, true);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->steps, 5);
}

TEST(XrayTrainer, SameSeedGivesIdenticalWeightsAndDoesNotUseTheGlobalRng) {
  const XraySet data = ShapesSet(96, 4);
  v1::XrayModelConfig mc = ShapesConfig();
  mc.set_dropout(0.2);
  v1::TrainingConfig c = FastConfig(2);
  auto train = [&](const v1::TrainingConfig& config, bool augment, uint64_t global_seed) {
    models::XrayCnn model(mc, 1);
    torch::manual_seed(global_seed);
    EXPECT_TRUE(TrainXrayModel(model, data.images, data.labels, config, augment).ok());
    return tensor::CloneState(tensor::StateOf(*model));
  };
  const tensor::NamedTensors a = train(c, true, 1);
  EXPECT_TRUE(AllEqual(a, train(c, true, 999)));
  // Augmentation changes what the model sees, so what it learns.
  EXPECT_FALSE(AllEqual(a, train(c, false, 1)));
  c.set_seed(2);
  EXPECT_FALSE(AllEqual(a, train(c, true, 1)));
}

// FedProx: the proximal term pulls the local model towards the global one it
// started from, more strongly as mu grows.
TEST(XrayTrainer, ProximalTermKeepsTheModelNearItsStart) {
  const XraySet data = ShapesSet(128, 5);
  std::vector<double> drift;
  for (double mu : {0.0, 1.0, 50.0}) {
    models::XrayCnn model(ShapesConfig());
    std::vector<at::Tensor> start;
    for (const at::Tensor& p : model->parameters()) start.push_back(p.detach().clone());
    v1::TrainingConfig c = FastConfig(2);
    c.set_optimizer("sgd");
    c.set_learning_rate(0.01);
    c.set_proximal_mu(mu);
    ASSERT_TRUE(TrainXrayModel(model, data.images, data.labels, c, false).ok());
    const std::vector<at::Tensor> now = model->parameters();
    double d = 0;
    for (size_t i = 0; i < now.size(); ++i) d += (now[i] - start[i]).pow(2).sum().item<double>();
    drift.push_back(d);
  }
  EXPECT_GT(drift[0], 0);
  EXPECT_LT(drift[1], drift[0]);
  EXPECT_LT(drift[2], 0.5 * drift[1]);
}

TEST(XrayTrainer, PredictGivesSoftmaxRowsAcrossBatches) {
  // 64x64 images evaluate 128 at a time: 300 images make three batches.
  v1::XrayModelConfig c;
  c.add_channels(2);
  c.set_hidden_units(4);
  models::XrayCnn model(c);
  const at::Tensor images = torch::randint(0, 256, {300, 1, 64, 64}, torch::kUInt8);
  const std::vector<float> p = PredictXray(model, images);
  ASSERT_EQ(p.size(), 300u * 4);
  torch::NoGradGuard no_grad;
  const at::Tensor expected = torch::softmax(model->forward(UnitImages(images)), 1);
  const at::Tensor got = torch::tensor(p).view({300, 4});
  EXPECT_TRUE(torch::allclose(got, expected, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(got.sum(1), torch::ones({300}), 1e-5, 1e-5));
  EXPECT_TRUE(PredictXray(model, torch::zeros({0, 1, 64, 64})).empty());
}

TEST(XrayTrainer, EvaluateAgreesWithPredictions) {
  const XraySet data = ShapesSet(90, 6);
  models::XrayCnn model(ShapesConfig());
  ASSERT_TRUE(TrainXrayModel(model, data.images, data.labels, FastConfig(1), false).ok());
  absl::StatusOr<v1::EvaluationMetrics> m = EvaluateXray(model, data.images, data.labels);
  ASSERT_TRUE(m.ok()) << m.status();

  const at::Tensor p = torch::tensor(PredictXray(model, data.images)).view({90, 3});
  const at::Tensor labels = data.labels;
  const double accuracy = p.argmax(1).eq(labels).to(torch::kFloat64).mean().item<double>();
  const double loss =
      -p.log().gather(1, labels.view({90, 1})).to(torch::kFloat64).mean().item<double>();
  EXPECT_DOUBLE_EQ(m->accuracy(), accuracy);
  EXPECT_NEAR(m->loss(), loss, 1e-5);
  std::vector<float> threat_score(90), threat(90);
  for (int64_t i = 0; i < 90; ++i) {
    threat_score[i] = p[i].slice(0, 1).sum().item<float>();
    threat[i] = labels[i].item<int64_t>() != 0 ? 1.0f : 0.0f;
  }
  const v1::EvaluationMetrics reference = metrics::ComputeBinaryMetrics(threat_score, threat);
  EXPECT_NEAR(m->roc_auc(), reference.roc_auc(), 2e-3);
  EXPECT_EQ(m->examples(), 90u);
  EXPECT_EQ(m->positives(), reference.positives());
}

// Tests of the error paths follow: each leaves the model unchanged.

class XrayTrainerErrors : public ::testing::Test {
 protected:
  void SetUp() override { before_ = tensor::CloneState(tensor::StateOf(*model_)); }

  void ExpectRejected(const at::Tensor& images, const at::Tensor& labels,
                      const v1::TrainingConfig& c, const std::string& message,
                      bool data_error = true) {
    absl::StatusOr<TrainResult> result = TrainXrayModel(model_, images, labels, c, true);
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << result.status();
    EXPECT_EQ(result.status().message(), message);
    EXPECT_TRUE(AllEqual(before_, tensor::StateOf(*model_)));
    if (data_error) {  // evaluation checks the data the same way
      absl::StatusOr<v1::EvaluationMetrics> m = EvaluateXray(model_, images, labels);
      EXPECT_EQ(m.status().message(), message);
    }
  }

  XraySet data_ = ShapesSet(20, 9);
  models::XrayCnn model_{ShapesConfig()};
  tensor::NamedTensors before_;
};

TEST_F(XrayTrainerErrors, WrongImageShapeOrDtype) {
  ExpectRejected(torch::zeros({20, 2, 32, 32}), data_.labels, FastConfig(),
                 "images have shape [20, 2, 32, 32], expected [N, 1, 32, 32]");
  ExpectRejected(torch::zeros({20, 1, 32, 16}), data_.labels, FastConfig(),
                 "images have shape [20, 1, 32, 16], expected [N, 1, 32, 32]");
  ExpectRejected(torch::zeros({20, 1, 32, 32}, torch::kFloat64), data_.labels, FastConfig(),
                 "images have dtype Double, expected uint8, int16 (uint16 bits) or float32");
}

TEST_F(XrayTrainerErrors, BadLabels) {
  at::Tensor labels = data_.labels.clone();
  labels[7] = 3;
  ExpectRejected(data_.images, labels, FastConfig(), "labels[7] = 3 is not a class in [0, 3)");
  labels[7] = -1;
  ExpectRejected(data_.images, labels, FastConfig(), "labels[7] = -1 is not a class in [0, 3)");
  ExpectRejected(data_.images, data_.labels.to(torch::kInt32), FastConfig(),
                 "labels must be int64 [N], got Int [20]");
  ExpectRejected(data_.images, data_.labels.slice(0, 0, 19), FastConfig(),
                 "20 images but 19 labels");
  ExpectRejected(data_.images.slice(0, 0, 0), data_.labels.slice(0, 0, 0), FastConfig(),
                 "no images");
}

TEST_F(XrayTrainerErrors, FloatPixelsOutsideTheUnitRangeOrNotFinite) {
  at::Tensor images = UnitImages(data_.images).clone();
  images[4][0][3][3] = 300.0f;  // unscaled
  const std::string message =
      "images[4] has a value outside [0, 1] or not finite (float32 images must be scaled to "
      "[0, 1])";
  ExpectRejected(images, data_.labels, FastConfig(), message);
  images[4][0][3][3] = std::numeric_limits<float>::quiet_NaN();
  ExpectRejected(images, data_.labels, FastConfig(), message);
}

TEST_F(XrayTrainerErrors, BadTrainingConfig) {
  v1::TrainingConfig c = FastConfig();
  c.set_optimizer("rmsprop");
  ExpectRejected(data_.images, data_.labels, c, "optimizer \"rmsprop\" is not \"adam\" or \"sgd\"",
                 /*data_error=*/false);
  c = FastConfig();
  c.set_proximal_mu(-1);
  ExpectRejected(data_.images, data_.labels, c, "proximal_mu -1 is not in [0, 1000]",
                 /*data_error=*/false);
}

TEST_F(XrayTrainerErrors, DivergenceIsAReturnedError) {
  tensor::NamedTensors poisoned = tensor::CloneState(before_);
  for (auto& [name, t] : poisoned) {
    if (name == "output.bias") t.fill_(std::numeric_limits<float>::quiet_NaN());
  }
  ASSERT_TRUE(tensor::LoadState(*model_, poisoned).ok());
  absl::StatusOr<TrainResult> result =
      TrainXrayModel(model_, data_.images, data_.labels, FastConfig(), true);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(result.status().message(), "training diverged: loss is nan at epoch 1, step 1");
  EXPECT_FALSE(model_->is_training());
}

}  // namespace
}  // namespace fedcustoms::training
