#include "common/tensor/named_tensors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <torch/torch.h>

#include <filesystem>
#include <limits>

#include "common/tensor/tensor_spec.h"

namespace fedcustoms::tensor {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct TinyImpl : torch::nn::Module {
  TinyImpl() {
    linear = register_module("linear", torch::nn::Linear(2, 3));
    scale = register_parameter("scale", torch::ones({3}));
    count = register_buffer("count", torch::zeros({}, torch::kInt64));
  }
  torch::nn::Linear linear{nullptr};
  torch::Tensor scale;
  torch::Tensor count;
};
TORCH_MODULE(Tiny);

std::filesystem::path MakeTempDir() {
  std::string pattern = (std::filesystem::path(testing::TempDir()) / "named_XXXXXX").string();
  EXPECT_NE(::mkdtemp(pattern.data()), nullptr);
  return pattern;
}

std::vector<std::string> Names(const NamedTensors& tensors) {
  std::vector<std::string> names;
  for (const auto& [name, t] : tensors) names.push_back(name);
  return names;
}

TEST(NamedTensors, StateOfIsSortedDetachedAndSharesStorage) {
  Tiny tiny;
  NamedTensors state = StateOf(*tiny);
  EXPECT_THAT(Names(state), ElementsAre("count", "linear.bias", "linear.weight", "scale"));
  for (const auto& [name, t] : state) EXPECT_FALSE(t.requires_grad()) << name;
  {
    torch::NoGradGuard no_grad;
    tiny->scale.fill_(5);
  }
  EXPECT_EQ(state[3].second[0].item<float>(), 5.0f);
}

TEST(NamedTensors, CloneStateIsASnapshot) {
  Tiny tiny;
  NamedTensors snapshot = CloneState(StateOf(*tiny));
  {
    torch::NoGradGuard no_grad;
    tiny->scale.fill_(5);
  }
  EXPECT_EQ(snapshot[3].second[0].item<float>(), 1.0f);
}

TEST(NamedTensors, LoadStateAcceptsAnyOrder) {
  Tiny a;
  Tiny b;
  {
    torch::NoGradGuard no_grad;
    a->scale.fill_(2);
    a->count.fill_(9);
  }
  NamedTensors state = CloneState(StateOf(*a));
  std::reverse(state.begin(), state.end());
  ASSERT_TRUE(LoadState(*b, state).ok());
  EXPECT_TRUE(torch::equal(b->scale, a->scale));
  EXPECT_EQ(b->count.item<int64_t>(), 9);
  EXPECT_TRUE(b->scale.requires_grad());  // still a parameter
}

TEST(NamedTensors, IsAggregatableMeansFloatingPoint) {
  EXPECT_TRUE(IsAggregatable(torch::zeros({2})));
  EXPECT_TRUE(IsAggregatable(torch::zeros({2}, torch::kFloat16)));
  EXPECT_FALSE(IsAggregatable(torch::zeros({}, torch::kInt64)));
  EXPECT_FALSE(IsAggregatable(torch::zeros({2}, torch::kBool)));
  EXPECT_FALSE(IsAggregatable(torch::Tensor()));
}

TEST(NamedTensors, AllFiniteFindsNanAndInf) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(AllFinite(torch::randn({100})));
  EXPECT_FALSE(AllFinite(torch::tensor({1.0f, nan})));
  EXPECT_FALSE(AllFinite(torch::tensor({-inf, 1.0f})));
  EXPECT_FALSE(AllFinite(torch::tensor({1.0, static_cast<double>(inf)}, torch::kFloat64)));
  EXPECT_FALSE(AllFinite(torch::tensor({1.0f, nan}).to(torch::kFloat16)));
  EXPECT_FALSE(AllFinite(torch::tensor({1.0f, 2.0f, nan, 4.0f}).reshape({2, 2}).t()));
  EXPECT_TRUE(
      AllFinite(torch::tensor({1.0f, nan, 3.0f}).slice(0, 0, 3, 2)));  // strided view skips NaN
  EXPECT_TRUE(AllFinite(torch::zeros({3}, torch::kInt64)));
  EXPECT_TRUE(AllFinite(torch::zeros({0})));
}

TEST(NamedTensors, SortAndCanonicalOrder) {
  NamedTensors t{{"b", torch::zeros({1})}, {"a", torch::zeros({1})}};
  EXPECT_FALSE(IsCanonical(t).ok());
  SortByName(t);
  EXPECT_THAT(Names(t), ElementsAre("a", "b"));
  EXPECT_TRUE(IsCanonical(t).ok());
}

TEST(NamedTensors, SpecChecksNameDtypeAndShape) {
  NamedTensors state{{"a", torch::zeros({2, 3})}, {"n", torch::zeros({}, torch::kInt64)}};
  std::vector<TensorSpec> spec = SpecOf(state);
  EXPECT_TRUE(CheckMatchesSpec(state, spec).ok());
  EXPECT_EQ(CheckMatchesSpec("a", torch::zeros({3, 2}), spec[0]).message(),
            "tensor \"a\": shape [2, 3] expected, got [3, 2]");
  EXPECT_EQ(CheckMatchesSpec("a", torch::zeros({2, 3}, torch::kFloat64), spec[0]).message(),
            "tensor \"a\": dtype float32 expected, got float64");
  EXPECT_EQ(CheckMatchesSpec("b", torch::zeros({2, 3}), spec[0], 0).message(),
            "tensor 0 is \"b\", expected \"a\"");
  EXPECT_EQ(CheckMatchesSpec(NamedTensors{state[0]}, spec).message(), "has 1 tensors, expected 2");
  EXPECT_EQ(AggregatableOf(state).size(), 1u);
}

TEST(NamedTensors, PickledStateRoundTripsAndLeavesNoTemporaryFile) {
  const std::filesystem::path dir = MakeTempDir();
  NamedTensors state{{"a", torch::randn({3, 2})},
                     {"b", torch::arange(4, torch::kInt64)},
                     {"c", torch::tensor({true, false})},
                     {"d", torch::randn({4, 3}).t()}};
  ASSERT_TRUE(SavePickledState(state, dir / "state.pt").ok());
  ASSERT_TRUE(SavePickledState(state, dir / "state.pt").ok());  // overwrites atomically
  absl::StatusOr<NamedTensors> loaded = LoadPickledState(dir / "state.pt");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->size(), state.size());
  for (size_t i = 0; i < state.size(); ++i) {
    EXPECT_EQ((*loaded)[i].first, state[i].first);
    EXPECT_TRUE(torch::equal((*loaded)[i].second, state[i].second)) << state[i].first;
  }
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir),
                          std::filesystem::directory_iterator()),
            1);
  std::filesystem::remove_all(dir);
}

// Tests of the error paths follow.

TEST(NamedTensorsErrors, SaveIntoMissingDirectoryFailsWithThePath) {
  absl::Status status = SavePickledState({{"a", torch::zeros({1})}}, "/nonexistent/dir/state.pt");
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(status.message()), HasSubstr("/nonexistent/dir"));
}

TEST(NamedTensorsErrors, SaveRejectsDuplicateAndUndefinedTensors) {
  const std::filesystem::path dir = MakeTempDir();
  EXPECT_EQ(SavePickledState({{"a", torch::zeros({1})}, {"a", torch::zeros({1})}}, dir / "x.pt")
                .message(),
            "duplicate tensor \"a\"");
  EXPECT_EQ(SavePickledState({{"u", torch::Tensor()}}, dir / "x.pt").message(),
            "tensor \"u\" is undefined");
  EXPECT_FALSE(std::filesystem::exists(dir / "x.pt"));
  std::filesystem::remove_all(dir);
}

TEST(NamedTensorsErrors, LoadStateOfAnUndefinedTensor) {
  Tiny tiny;
  NamedTensors state = CloneState(StateOf(*tiny));
  state[0].second = torch::Tensor();
  EXPECT_EQ(LoadState(*tiny, state).message(), "tensor \"count\" is undefined");
}

TEST(NamedTensorsErrors, CanonicalOrderRejectsDuplicatesAndEmptyNames) {
  EXPECT_EQ(IsCanonical({{"a", torch::zeros({1})}, {"a", torch::zeros({1})}}).message(),
            "tensor 1 \"a\" is not after \"a\": names must be unique and ascending");
  EXPECT_EQ(IsCanonical({{"", torch::zeros({1})}}).message(), "tensor 0 has an empty name");
}

}  // namespace
}  // namespace fedcustoms::tensor
