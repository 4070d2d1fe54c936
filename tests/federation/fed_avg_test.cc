// FedAvg and update validation against direct computations.
#include "coordinator/aggregation/fed_avg.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

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
  ASSERT_TRUE(fed_avg.Add(InMemoryUpdate(u1), 100).ok());
  ASSERT_TRUE(fed_avg.Add(InMemoryUpdate(u2), 300).ok());
  ASSERT_TRUE(fed_avg.Add(InMemoryUpdate(u3), 600).ok());
  EXPECT_EQ(fed_avg.updates(), 3u);
  EXPECT_EQ(fed_avg.samples(), 1000u);
  auto next = fed_avg.Apply(global);
  ASSERT_TRUE(next.ok()) << next.status();
  ASSERT_EQ(next->size(), 3u);
  for (int i = 0; i < 2; ++i) {
    torch::Tensor expected = global[i].second + (u1[i].second * 100 + u2[i].second * 300 +
                                                 u3[i].second * 600) / 1000.0;
    EXPECT_EQ((*next)[i].first, global[i].first);
    EXPECT_TRUE(torch::allclose((*next)[i].second, expected, 1e-5, 1e-6));
  }
  // Integer buffers are not aggregated: the coordinator's value stays.
  EXPECT_EQ((*next)[2].second.item<int64_t>(), 7);
}

TEST(FedAvg, MemoryIsOneModelWhateverTheNodeCount) {
  tensor::NamedTensors global = Global();
  FedAvg fed_avg(UpdateSpec::Of(global));
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(fed_avg.Add(InMemoryUpdate(Update(1.0f)), 1).ok());
  auto next = fed_avg.Apply(global);
  ASSERT_TRUE(next.ok());
  // 50 identical updates with equal weight average to the update itself.
  EXPECT_TRUE(torch::allclose((*next)[0].second, global[0].second + Update(1.0f)[0].second,
                              1e-5, 1e-5));
}

// Error paths.

TEST(FedAvg, ApplyWithoutUpdatesFails) {
  tensor::NamedTensors global = Global();
  FedAvg fed_avg(UpdateSpec::Of(global));
  EXPECT_TRUE(absl::IsFailedPrecondition(fed_avg.Apply(global).status()));
}

TEST(FedAvg, ZeroSampleCountIsRefused) {
  tensor::NamedTensors global = Global();
  FedAvg fed_avg(UpdateSpec::Of(global));
  EXPECT_TRUE(absl::IsInvalidArgument(fed_avg.Add(InMemoryUpdate(Update(1)), 0)));
}

TEST(ValidateUpdate, AcceptsAMatchingUpdate) {
  EXPECT_TRUE(ValidateUpdate(InMemoryUpdate(Update(1)), UpdateSpec::Of(Global())).ok());
}

TEST(ValidateUpdate, RejectsWrongShape) {
  tensor::NamedTensors u = Update(1);
  u[1].second = torch::zeros({6});
  absl::Status s = ValidateUpdate(InMemoryUpdate(u), UpdateSpec::Of(Global()));
  EXPECT_EQ(s.message(), "update tensor \"b.bias\" has shape [6], expected [5]");
}

TEST(ValidateUpdate, RejectsWrongDtype) {
  tensor::NamedTensors u = Update(1);
  u[0].second = u[0].second.to(torch::kFloat64);
  absl::Status s = ValidateUpdate(InMemoryUpdate(u), UpdateSpec::Of(Global()));
  EXPECT_EQ(s.message(), "update tensor \"a.weight\" has dtype Double, expected Float");
}

TEST(ValidateUpdate, RejectsWrongName) {
  tensor::NamedTensors u = Update(1);
  u[0].first = "evil.weight";
  absl::Status s = ValidateUpdate(InMemoryUpdate(u), UpdateSpec::Of(Global()));
  EXPECT_EQ(s.message(), "update tensor 0 is \"evil.weight\", expected \"a.weight\"");
}

TEST(ValidateUpdate, RejectsNanAndInf) {
  for (float bad : {std::nanf(""), std::numeric_limits<float>::infinity()}) {
    tensor::NamedTensors u = Update(1);
    u[1].second[2] = bad;
    absl::Status s = ValidateUpdate(InMemoryUpdate(u), UpdateSpec::Of(Global()));
    EXPECT_EQ(s.message(), "update tensor \"b.bias\" contains NaN or Inf");
  }
}

TEST(ValidateUpdate, RejectsMissingAndExtraTensors) {
  tensor::NamedTensors u = Update(1);
  u.pop_back();
  EXPECT_EQ(ValidateUpdate(InMemoryUpdate(u), UpdateSpec::Of(Global())).message(),
            "update has 1 tensors, expected 2 (missing \"b.bias\")");
  u = Update(1);
  u.emplace_back("z.extra", torch::zeros({1}));
  EXPECT_EQ(ValidateUpdate(InMemoryUpdate(u), UpdateSpec::Of(Global())).message(),
            "update has an extra tensor \"z.extra\" after the 2 expected");
}

}  // namespace
}  // namespace fedcustoms::coordinator
