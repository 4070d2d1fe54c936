// FedAvg and update validation against direct computations.
#include "coordinator/aggregation/fed_avg.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "common/io/atomic_file.h"
#include "common/tensor/tensor_codec.h"
#include "coordinator/aggregation/update_validator.h"

namespace fedcustoms::coordinator {
namespace {

tensor::NamedTensors Global() {
  torch::manual_seed(3);
  return {{"a.weight", torch::randn({4, 3})},
          {"b.bias", torch::randn({5})},
          {"bn.num_batches_tracked", torch::tensor(7, torch::kInt64)}};
}

tensor::NamedTensors Update(float scale) {
  torch::manual_seed(static_cast<uint64_t>(scale * 100));
  return {{"a.weight", torch::randn({4, 3}) * scale}, {"b.bias", torch::randn({5}) * scale}};
}

TEST(FedAvg, WeightsUpdatesBySampleCount) {
  tensor::NamedTensors global = Global();
  FedAvg fed_avg(UpdateSpec::Of(global));
  tensor::NamedTensors u1 = Update(1.0f), u2 = Update(2.0f), u3 = Update(0.5f);
  ASSERT_TRUE(fed_avg.Add(InMemoryTensors(u1), 100).ok());
  ASSERT_TRUE(fed_avg.Add(InMemoryTensors(u2), 300).ok());
  ASSERT_TRUE(fed_avg.Add(InMemoryTensors(u3), 600).ok());
  EXPECT_EQ(fed_avg.updates(), 3u);
  EXPECT_EQ(fed_avg.samples(), 1000u);
  auto next = fed_avg.Apply(InMemoryTensors(global));
  ASSERT_TRUE(next.ok()) << next.status();
  ASSERT_EQ(next->size(), 3u);
  for (int i = 0; i < 2; ++i) {
    torch::Tensor expected =
        global[i].second + (u1[i].second * 100 + u2[i].second * 300 + u3[i].second * 600) / 1000.0;
    EXPECT_EQ((*next)[i].first, global[i].first);
    EXPECT_TRUE(torch::allclose((*next)[i].second, expected, 1e-5, 1e-6));
  }
  // Integer buffers are not aggregated: the coordinator's value stays.
  EXPECT_EQ((*next)[2].second.item<int64_t>(), 7);
}

// What happens to each kind of tensor: float32 weights and float buffers
// (e.g. batch-norm running statistics) get the weighted mean update; a float64
// tensor gets it too, computed in float32 and added in float64; a
// non-contiguous tensor (a transposed view) is read in its logical order and
// comes back in its shape; integer and bool buffers (counters, masks) are not
// aggregated and keep the coordinator's value. Updates themselves are always
// float32 (ValidateUpdate).
TEST(FedAvg, MixedDtypesNonContiguousTensorsAndBuffers) {
  torch::manual_seed(11);
  const torch::Tensor base = torch::randn({3, 4});
  tensor::NamedTensors global = {{"w.transposed", base.t()},  // [4, 3], non-contiguous
                                 {"bn.running_mean", torch::randn({4})},
                                 {"head.double", torch::randn({2}, torch::kFloat64)},
                                 {"bn.num_batches_tracked", torch::tensor(9, torch::kInt64)},
                                 {"mask", torch::tensor({true, false})}};
  ASSERT_FALSE(global[0].second.is_contiguous());
  const UpdateSpec spec = UpdateSpec::Of(global);
  ASSERT_EQ(spec.entries.size(), 3u);  // the three floating point tensors
  auto update = [](float s) {
    return tensor::NamedTensors{{"w.transposed", torch::full({4, 3}, s)},
                                {"bn.running_mean", torch::full({4}, 2 * s)},
                                {"head.double", torch::full({2}, 3 * s)}};
  };
  FedAvg fed_avg(spec);
  ASSERT_TRUE(fed_avg.Add(InMemoryTensors(update(1.0f)), 1).ok());
  ASSERT_TRUE(fed_avg.Add(InMemoryTensors(update(4.0f)), 2).ok());  // mean: 3
  auto next = fed_avg.Apply(InMemoryTensors(global));
  ASSERT_TRUE(next.ok()) << next.status();
  ASSERT_EQ(next->size(), 5u);
  EXPECT_TRUE(torch::allclose((*next)[0].second, base.t() + 3.0f, 1e-6, 1e-6));
  EXPECT_EQ((*next)[0].second.sizes(), (std::vector<int64_t>{4, 3}));
  EXPECT_TRUE(torch::allclose((*next)[1].second, global[1].second + 6.0f, 1e-6, 1e-6));
  EXPECT_EQ((*next)[2].second.scalar_type(), torch::kFloat64);
  EXPECT_TRUE(torch::allclose((*next)[2].second, global[2].second + 9.0, 1e-6, 1e-6));
  EXPECT_EQ((*next)[3].second.item<int64_t>(), 9);
  EXPECT_TRUE(torch::equal((*next)[4].second, global[4].second));
}

TEST(FedAvg, MemoryIsOneModelWhateverTheNodeCount) {
  tensor::NamedTensors global = Global();
  FedAvg fed_avg(UpdateSpec::Of(global));
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(fed_avg.Add(InMemoryTensors(Update(1.0f)), 1).ok());
  auto next = fed_avg.Apply(InMemoryTensors(global));
  ASSERT_TRUE(next.ok());
  // 50 identical updates with equal weight average to the update itself.
  EXPECT_TRUE(
      torch::allclose((*next)[0].second, global[0].second + Update(1.0f)[0].second, 1e-5, 1e-5));
}

// A spooled update decoded in slices much smaller than its tensors folds to
// the same sum as the update in memory, and a NaN in a later slice is found.
class TensorFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("fedcustoms_spool_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Spool(const tensor::NamedTensors& update) {
    const std::string path = (dir_ / "update.fct").string();
    EXPECT_TRUE(io::WriteFileAtomically(path, *tensor::EncodeToString(update)).ok());
    return path;
  }
  std::filesystem::path dir_;
};

TEST_F(TensorFileTest, SlicedFoldEqualsInMemoryFold) {
  tensor::NamedTensors global = Global();
  tensor::NamedTensors u = Update(1.5f);
  // 20-byte slices of 5 floats: "a.weight" (12 floats) arrives in 3 slices, "b.bias" in 1.
  const TensorFile spooled(Spool(u), /*slice_bytes=*/20);
  int slices = 0;
  ASSERT_TRUE(spooled
                  .ForEach([&](const TensorSlice&) {
                    ++slices;
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(slices, 4);
  ASSERT_TRUE(ValidateUpdate(spooled, UpdateSpec::Of(global)).ok());
  FedAvg sliced(UpdateSpec::Of(global));
  FedAvg whole(UpdateSpec::Of(global));
  ASSERT_TRUE(sliced.Add(spooled, 7).ok());
  ASSERT_TRUE(whole.Add(InMemoryTensors(u), 7).ok());
  auto a = sliced.Apply(InMemoryTensors(global));
  auto b = whole.Apply(InMemoryTensors(global));
  ASSERT_TRUE(a.ok() && b.ok());
  for (size_t i = 0; i < a->size(); ++i) EXPECT_TRUE(torch::equal((*a)[i].second, (*b)[i].second));
}

// The global model read from its wire file in small slices gives the same
// result as the global in memory; the aggregator is spent afterwards.
TEST_F(TensorFileTest, ApplyReadsTheGlobalFromItsFileInSlices) {
  tensor::NamedTensors global = Global();
  tensor::NamedTensors u = Update(0.7f);
  FedAvg from_file(UpdateSpec::Of(global));
  FedAvg from_memory(UpdateSpec::Of(global));
  ASSERT_TRUE(from_file.Add(InMemoryTensors(u), 3).ok());
  ASSERT_TRUE(from_memory.Add(InMemoryTensors(u), 3).ok());
  auto a = from_file.Apply(TensorFile(Spool(global), /*slice_bytes=*/8));
  auto b = from_memory.Apply(InMemoryTensors(global));
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_EQ(a->size(), 3u);
  for (size_t i = 0; i < a->size(); ++i) {
    EXPECT_EQ((*a)[i].first, (*b)[i].first);
    EXPECT_EQ((*a)[i].second.sizes(), global[i].second.sizes());
    EXPECT_TRUE(torch::equal((*a)[i].second, (*b)[i].second)) << (*a)[i].first;
  }
  EXPECT_TRUE(absl::IsFailedPrecondition(from_file.Apply(InMemoryTensors(global)).status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(from_file.Add(InMemoryTensors(u), 1)));
}

// A wire file is checked against the configured model's layout by its tensor
// headers, with the messages of tensor::CheckMatchesSpec.
TEST_F(TensorFileTest, CheckLayoutNamesTheFirstDifference) {
  tensor::NamedTensors global = Global();
  EXPECT_TRUE(CheckLayout(global, TensorFile(Spool(global), 8)).ok());
  tensor::NamedTensors wider = Global();
  wider[1].second = torch::zeros({6});
  EXPECT_EQ(std::string(CheckLayout(global, TensorFile(Spool(wider), 8)).message()),
            "tensor \"b.bias\": shape [5] expected, got [6]");
  tensor::NamedTensors fewer = {global[0], global[1]};
  EXPECT_EQ(std::string(CheckLayout(global, TensorFile(Spool(fewer))).message()),
            "has 2 tensors, expected 3");
}

TEST_F(TensorFileTest, NanInALaterSliceIsRejected) {
  tensor::NamedTensors global = Global();
  tensor::NamedTensors u = Update(1.0f);
  u[0].second.view(-1)[11] = std::nanf("");  // last element: the third slice
  const TensorFile spooled(Spool(u), /*slice_bytes=*/20);
  absl::Status s = ValidateUpdate(spooled, UpdateSpec::Of(global));
  EXPECT_TRUE(absl::IsInvalidArgument(s));
  EXPECT_EQ(std::string(s.message()), "update tensor \"a.weight\" contains NaN or Inf");
}

TEST_F(TensorFileTest, TruncatedSpoolIsAnError) {
  tensor::NamedTensors global = Global();
  std::string bytes = *tensor::EncodeToString(Update(1.0f));
  bytes.resize(bytes.size() - 8);
  const std::string path = (dir_ / "cut.fct").string();
  ASSERT_TRUE(io::WriteFileAtomically(path, bytes).ok());
  absl::Status s = ValidateUpdate(TensorFile(path, 20), UpdateSpec::Of(global));
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_NE(std::string(s.message()).find("truncated stream"), std::string::npos) << s;
}

// Error paths.

TEST(FedAvg, AnAggregateThatOverflowsIsRefused) {
  tensor::NamedTensors global = Global();
  tensor::NamedTensors huge = Update(1.0f);
  huge[1].second.fill_(3e38f);  // finite, so it passes validation
  ASSERT_TRUE(ValidateUpdate(InMemoryTensors(huge), UpdateSpec::Of(global)).ok());
  FedAvg fed_avg(UpdateSpec::Of(global));
  ASSERT_TRUE(fed_avg.Add(InMemoryTensors(huge), 10).ok());
  auto next = fed_avg.Apply(InMemoryTensors(global));
  ASSERT_FALSE(next.ok());
  EXPECT_EQ(std::string(next.status().message()),
            "the aggregate of tensor \"b.bias\" overflows to Inf or NaN (updates too large)");
}

TEST(FedAvg, ApplyWithoutUpdatesFails) {
  tensor::NamedTensors global = Global();
  FedAvg fed_avg(UpdateSpec::Of(global));
  EXPECT_TRUE(absl::IsFailedPrecondition(fed_avg.Apply(InMemoryTensors(global)).status()));
}

TEST(FedAvg, ZeroSampleCountIsRefused) {
  tensor::NamedTensors global = Global();
  FedAvg fed_avg(UpdateSpec::Of(global));
  EXPECT_TRUE(absl::IsInvalidArgument(fed_avg.Add(InMemoryTensors(Update(1)), 0)));
}

TEST(ValidateUpdate, AcceptsAMatchingUpdate) {
  EXPECT_TRUE(ValidateUpdate(InMemoryTensors(Update(1)), UpdateSpec::Of(Global())).ok());
}

TEST(ValidateUpdate, RejectsWrongShape) {
  tensor::NamedTensors u = Update(1);
  u[1].second = torch::zeros({6});
  absl::Status s = ValidateUpdate(InMemoryTensors(u), UpdateSpec::Of(Global()));
  EXPECT_EQ(s.message(), "update tensor \"b.bias\" has shape [6], expected [5]");
}

TEST(ValidateUpdate, RejectsWrongDtype) {
  tensor::NamedTensors u = Update(1);
  u[0].second = u[0].second.to(torch::kFloat64);
  absl::Status s = ValidateUpdate(InMemoryTensors(u), UpdateSpec::Of(Global()));
  EXPECT_EQ(s.message(), "update tensor \"a.weight\" has dtype Double, expected Float");
}

TEST(ValidateUpdate, RejectsWrongName) {
  tensor::NamedTensors u = Update(1);
  u[0].first = "evil.weight";
  absl::Status s = ValidateUpdate(InMemoryTensors(u), UpdateSpec::Of(Global()));
  EXPECT_EQ(s.message(), "update tensor 0 is \"evil.weight\", expected \"a.weight\"");
}

TEST(ValidateUpdate, RejectsNanAndInf) {
  for (float bad : {std::nanf(""), std::numeric_limits<float>::infinity()}) {
    tensor::NamedTensors u = Update(1);
    u[1].second[2] = bad;
    absl::Status s = ValidateUpdate(InMemoryTensors(u), UpdateSpec::Of(Global()));
    EXPECT_EQ(s.message(), "update tensor \"b.bias\" contains NaN or Inf");
  }
}

TEST(ValidateUpdate, RejectsMissingAndExtraTensors) {
  tensor::NamedTensors u = Update(1);
  u.pop_back();
  EXPECT_EQ(ValidateUpdate(InMemoryTensors(u), UpdateSpec::Of(Global())).message(),
            "update has 1 tensors, expected 2 (missing \"b.bias\")");
  u = Update(1);
  u.emplace_back("z.extra", torch::zeros({1}));
  EXPECT_EQ(ValidateUpdate(InMemoryTensors(u), UpdateSpec::Of(Global())).message(),
            "update has an extra tensor \"z.extra\" after the 2 expected");
}

}  // namespace
}  // namespace fedcustoms::coordinator
