// The Aggregator interface: one factory picks the rule, and every rule
// (FedAvg, a robust rule, the secure sum) finishes into a MeanUpdate that the
// server optimizer applies the same way.
#include "coordinator/aggregation/aggregator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <vector>

#include "common/secagg/masked_update.h"

namespace fedcustoms::coordinator {
namespace {
using Kind = v1::RobustAggregationConfig;

tensor::NamedTensors Global() {
  return {{"fc.weight", torch::zeros({2, 2})}, {"bn.running_mean", torch::ones({2})}};
}

// Node i's update: i + 1 on every weight, 10 x (i + 1) on the statistic.
tensor::NamedTensors UpdateOf(int i) {
  return {{"fc.weight", torch::full({2, 2}, static_cast<float>(i + 1))},
          {"bn.running_mean", torch::full({2}, 10.0f * static_cast<float>(i + 1))}};
}

const std::vector<uint64_t> kSamples = {100, 100, 200};

v1::SecureRound SecureParams() {
  v1::SecureRound p;
  p.set_clip(4.0);
  p.set_scale(1 << 20);
  p.set_max_nodes(3);
  p.set_total_weight(1000);
  return p;
}

AggregatorOptions Options() {
  AggregatorOptions o;
  o.spec = UpdateSpec::Of(Global());
  o.capacity = 3;
  o.robust.set_max_memory_mib(16);
  o.secure_params = SecureParams();
  o.unmask = [](std::vector<uint32_t> sum) { return sum; };  // no masks in this test
  return o;
}

// What node i uploads for `kind`: its update, or its masked input's layout.
tensor::NamedTensors UploadOf(AggregatorKind kind, int i) {
  tensor::NamedTensors update = UpdateOf(i);
  if (kind != AggregatorKind::kSecure) return update;
  auto codec = secagg::MaskedUpdate::Create(SecureParams());
  EXPECT_TRUE(codec.ok()) << codec.status();
  std::vector<secagg::MaskedUpdate::Piece> pieces;
  for (const auto& [name, t] : update) {
    pieces.push_back({name, {t.data_ptr<float>(), static_cast<size_t>(t.numel())}});
  }
  auto encoded = codec->Encode(pieces, kSamples[i]);
  EXPECT_TRUE(encoded.ok()) << encoded.status();
  at::Tensor words = torch::from_blob(encoded->words.data(),
                                      {static_cast<int64_t>(encoded->words.size())}, torch::kInt32)
                         .clone();
  return {{secagg::kMaskedInputTensorName, words}};
}

absl::StatusOr<tensor::NamedTensors> Round(AggregatorKind kind, AggregatorOptions options) {
  auto aggregator = MakeAggregator(kind, std::move(options));
  if (!aggregator.ok()) return aggregator.status();
  for (int i = 0; i < 3; ++i) {
    const tensor::NamedTensors upload = UploadOf(kind, i);
    if (absl::Status s = (*aggregator)->Validate(InMemoryTensors(upload)); !s.ok()) return s;
    if (absl::Status s = (*aggregator)->Add(InMemoryTensors(upload), kSamples[i]); !s.ok()) {
      return s;
    }
  }
  EXPECT_EQ((*aggregator)->updates(), 3u);
  absl::StatusOr<MeanUpdate> mean = (*aggregator)->Finish();
  if (!mean.ok()) return mean.status();
  EXPECT_EQ(mean->samples(), 400u);
  const tensor::NamedTensors global = Global();
  return mean->Apply(InMemoryTensors(global));
}

TEST(AggregatorKindOf, SecureModeAlwaysSumsAndTrustedModePicksTheRule) {
  // As the config leaves them: MEAN unless a rule is chosen.
  v1::RobustAggregationConfig mean, median, bounded;
  mean.set_kind(Kind::MEAN);
  median.set_kind(Kind::MEDIAN);
  bounded.set_kind(Kind::MEAN);
  bounded.set_norm_bound(2.0);
  EXPECT_EQ(AggregatorKindOf(v1::SECURE, mean), AggregatorKind::kSecure);
  EXPECT_EQ(AggregatorKindOf(v1::SECURE, median), AggregatorKind::kSecure);
  EXPECT_EQ(AggregatorKindOf(v1::TRUSTED, mean), AggregatorKind::kFedAvg);
  EXPECT_EQ(AggregatorKindOf(v1::TRUSTED, median), AggregatorKind::kRobust);
  EXPECT_EQ(AggregatorKindOf(v1::TRUSTED, bounded), AggregatorKind::kRobust);
}

TEST(Aggregator, FedAvgFinishesIntoTheWeightedMean) {
  auto next = Round(AggregatorKind::kFedAvg, Options());
  ASSERT_TRUE(next.ok()) << next.status();
  // (100 x 1 + 100 x 2 + 200 x 3) / 400 = 2.25.
  EXPECT_TRUE(torch::allclose((*next)[0].second, torch::full({2, 2}, 2.25f)));
  EXPECT_TRUE(torch::allclose((*next)[1].second, torch::full({2}, 1.0f + 22.5f)));
}

TEST(Aggregator, RobustMedianFinishesIntoTheCoordinateMedian) {
  AggregatorOptions options = Options();
  options.robust.set_kind(Kind::MEDIAN);
  auto next = Round(AggregatorKind::kRobust, options);
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_TRUE(torch::allclose((*next)[0].second, torch::full({2, 2}, 2.0f)));
  EXPECT_TRUE(torch::allclose((*next)[1].second, torch::full({2}, 21.0f)));
}

TEST(Aggregator, SecureSumDecodesToTheWeightedMeanWithinTheQuantizationBound) {
  auto next = Round(AggregatorKind::kSecure, Options());
  ASSERT_TRUE(next.ok()) << next.status();
  // The statistic (22.5, beyond the clip of 4) passes by kStatisticsDivisor.
  EXPECT_TRUE(torch::allclose((*next)[0].second, torch::full({2, 2}, 2.25f), 0, 1e-4));
  EXPECT_TRUE(torch::allclose((*next)[1].second, torch::full({2}, 23.5f), 0, 1e-2));
}

// Error paths.

TEST(Aggregator, ARobustRuleBeyondItsMemoryCapIsRefusedWithTheSizes) {
  AggregatorOptions options = Options();
  options.spec = UpdateSpec::Of({{"w", torch::zeros({1024, 1024})}});
  options.capacity = 10;
  options.robust.set_kind(Kind::MEDIAN);
  options.robust.set_max_memory_mib(1);
  auto aggregator = MakeAggregator(AggregatorKind::kRobust, options);
  EXPECT_EQ(aggregator.status(),
            absl::FailedPreconditionError("MEDIAN would keep 10 updates of 1048576 parameters (40 "
                                          "MiB); robust_aggregation.max_memory_mib is 1"));
}

TEST(Aggregator, EachRuleRefusesTheOtherModesUploadsAndFinishingEmpty) {
  AggregatorOptions options = Options();
  options.robust.set_kind(Kind::MEDIAN);
  for (AggregatorKind kind :
       {AggregatorKind::kFedAvg, AggregatorKind::kRobust, AggregatorKind::kSecure}) {
    auto aggregator = MakeAggregator(kind, options);
    ASSERT_TRUE(aggregator.ok()) << aggregator.status();
    const AggregatorKind other =
        kind == AggregatorKind::kSecure ? AggregatorKind::kFedAvg : AggregatorKind::kSecure;
    const tensor::NamedTensors wrong = UploadOf(other, 0);
    EXPECT_TRUE(absl::IsInvalidArgument((*aggregator)->Validate(InMemoryTensors(wrong))));
    EXPECT_FALSE((*aggregator)->Finish().ok());
  }
}

TEST(Aggregator, SecureFinishFailsWhenUnmaskingFailsAndIgnoresAFalseCountWord) {
  AggregatorOptions options = Options();
  options.unmask = [](std::vector<uint32_t>) -> absl::StatusOr<std::vector<uint32_t>> {
    return absl::FailedPreconditionError("too few reveals");
  };
  auto aggregator = MakeAggregator(AggregatorKind::kSecure, options);
  ASSERT_TRUE(aggregator.ok());
  const tensor::NamedTensors upload = UploadOf(AggregatorKind::kSecure, 0);
  EXPECT_TRUE(absl::IsInvalidArgument((*aggregator)->Add(InMemoryTensors(upload), 0)));
  ASSERT_TRUE((*aggregator)->Add(InMemoryTensors(upload), kSamples[0]).ok());
  EXPECT_EQ((*aggregator)->Finish().status(), absl::FailedPreconditionError("too few reveals"));

  options = Options();
  options.unmask = [](std::vector<uint32_t> sum) -> absl::StatusOr<std::vector<uint32_t>> {
    sum.back() = 5000;  // more samples than the 1000 the nodes declared
    return sum;
  };
  aggregator = MakeAggregator(AggregatorKind::kSecure, options);
  ASSERT_TRUE(aggregator.ok());
  ASSERT_TRUE((*aggregator)->Add(InMemoryTensors(upload), kSamples[0]).ok());
  absl::StatusOr<MeanUpdate> lied = (*aggregator)->Finish();
  ASSERT_TRUE(lied.ok()) << lied.status();
  EXPECT_EQ(lied->samples(), kSamples[0]);  // the public weight, not the word
}

}  // namespace
}  // namespace fedcustoms::coordinator
