// The masked update's wire layout (secagg::MaskedUpdate), shared by the node
// (Encode) and the coordinator (Decode): a golden encoding pins the layout
// word by word, then a sum of several nodes decodes to their weighted mean.
#include "common/secagg/masked_update.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace fedcustoms::secagg {
namespace {

v1::SecureRound Params(uint64_t total_weight, double clip = 1.0, double scale = 1 << 20,
                       uint32_t max_nodes = 4) {
  v1::SecureRound p;
  p.set_clip(clip);
  p.set_scale(scale);
  p.set_max_nodes(max_nodes);
  p.set_total_weight(total_weight);
  return p;
}

MaskedUpdate Codec(const v1::SecureRound& params) {
  absl::StatusOr<MaskedUpdate> codec = MaskedUpdate::Create(params);
  EXPECT_TRUE(codec.ok()) << codec.status();
  return *std::move(codec);
}

TEST(MaskedUpdate, EncodesTheDocumentedLayoutWordForWord) {
  // W = 4, n = 2: weight 1/2, scale 2^20. A statistic is divided by 1024
  // first; a value beyond the clip is clamped; the last word is n.
  const MaskedUpdate codec = Codec(Params(4));
  const std::vector<float> weights = {0.25f, -0.5f, 3.0f};
  const std::vector<float> running_var = {512.0f};
  const MaskedUpdate::Piece pieces[] = {{"fc.weight", weights}, {"bn.running_var", running_var}};
  absl::StatusOr<MaskedUpdate::Encoded> out = codec.Encode(pieces, 2);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->words, (std::vector<uint32_t>{131072u, 4294705152u, 524288u, 262144u, 2u}));
  EXPECT_EQ(out->clipped, 1u);
  EXPECT_EQ(MaskedUpdate::Words(4), 5u);
}

TEST(MaskedUpdate, SumOfNodesDecodesToTheWeightedMeanAndSampleCount) {
  const uint64_t total_weight = 100;
  const MaskedUpdate codec = Codec(Params(total_weight, 1.0, 1 << 22, 3));
  const std::vector<std::vector<float>> weights = {{0.1f, -0.2f}, {0.3f, 0.0f}, {-0.4f, 0.6f}};
  const std::vector<std::vector<float>> means = {{5.0f}, {9.0f}, {1.0f}};  // beyond the clip
  const std::vector<uint64_t> samples = {10, 30, 20};
  std::vector<uint32_t> sum(MaskedUpdate::Words(3), 0);
  for (size_t node = 0; node < samples.size(); ++node) {
    const MaskedUpdate::Piece pieces[] = {{"fc.weight", weights[node]},
                                          {"bn.running_mean", means[node]}};
    absl::StatusOr<MaskedUpdate::Encoded> out = codec.Encode(pieces, samples[node]);
    ASSERT_TRUE(out.ok()) << out.status();
    for (size_t i = 0; i < sum.size(); ++i) sum[i] += out->words[i];
  }
  const MaskedUpdate::Entry layout[] = {{"fc.weight", 2}, {"bn.running_mean", 1}};
  std::vector<float> mean(3);
  absl::StatusOr<uint64_t> n = codec.Decode(sum, layout, mean, 60);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 60u);  // the count word, as the nodes masked it
  const double bound = codec.codec().ErrorBound(60.0 / total_weight);
  EXPECT_NEAR(mean[0], (10 * 0.1 + 30 * 0.3 - 20 * 0.4) / 60.0, bound);
  EXPECT_NEAR(mean[1], (-10 * 0.2 + 20 * 0.6) / 60.0, bound);
  EXPECT_NEAR(mean[2], (10 * 5.0 + 30 * 9.0 + 20 * 1.0) / 60.0, bound * kStatisticsDivisor);
}

// Error paths.

TEST(MaskedUpdate, CreateRefusesUnsafeParametersAndAZeroTotalWeight) {
  EXPECT_TRUE(absl::IsInvalidArgument(MaskedUpdate::Create(Params(0)).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(MaskedUpdate::Create(Params(uint64_t{1} << 32)).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(MaskedUpdate::Create(Params(4, 1.0, 0x1p40)).status()));
}

TEST(MaskedUpdate, EncodeRefusesSampleCountsOutsideTheTotalWeightAndNaN) {
  const MaskedUpdate codec = Codec(Params(4));
  const std::vector<float> values = {0.1f};
  const MaskedUpdate::Piece pieces[] = {{"w", values}};
  EXPECT_TRUE(absl::IsInvalidArgument(codec.Encode(pieces, 0).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(codec.Encode(pieces, 5).status()));
  const std::vector<float> nan = {std::nanf("")};
  const MaskedUpdate::Piece bad[] = {{"w", nan}};
  EXPECT_TRUE(absl::IsInvalidArgument(codec.Encode(bad, 1).status()));
}

// The attacker: one of three nodes masks a count word that makes the words
// sum to 1 (in Z_2^32), which divided the mean by 1 instead of Σ n when the
// coordinator trusted the word (the mean scaled up to W times). Decoded with
// the public rows, the mean is exactly the honest one and the word only
// shows the lie.
TEST(MaskedUpdate, AFalseCountWordCannotRescaleTheMean) {
  const uint64_t total_weight = 100;
  const MaskedUpdate codec = Codec(Params(total_weight, 1.0, 1 << 22, 3));
  const std::vector<std::vector<float>> updates = {{0.5f}, {0.25f}, {-0.5f}};
  const std::vector<uint64_t> rows = {40, 30, 30};
  std::vector<uint32_t> honest(MaskedUpdate::Words(1), 0);
  for (size_t node = 0; node < rows.size(); ++node) {
    const MaskedUpdate::Piece pieces[] = {{"w", updates[node]}};
    absl::StatusOr<MaskedUpdate::Encoded> out = codec.Encode(pieces, rows[node]);
    ASSERT_TRUE(out.ok()) << out.status();
    for (size_t i = 0; i < honest.size(); ++i) honest[i] += out->words[i];
  }
  std::vector<uint32_t> lied = honest;
  lied.back() = 1;  // the third node's word chosen so that Σ n "is" 1
  const MaskedUpdate::Entry layout[] = {{"w", 1}};
  std::vector<float> honest_mean(1), lied_mean(1);
  ASSERT_TRUE(codec.Decode(honest, layout, honest_mean, 100).ok());
  absl::StatusOr<uint64_t> word = codec.Decode(lied, layout, lied_mean, 100);
  ASSERT_TRUE(word.ok()) << word.status();
  EXPECT_EQ(*word, 1u);
  EXPECT_EQ(lied_mean[0], honest_mean[0]);
  EXPECT_NEAR(honest_mean[0], (40 * 0.5 + 30 * 0.25 - 30 * 0.5) / 100.0,
              codec.codec().ErrorBound(1.0));
}

TEST(MaskedUpdate, DecodeRefusesAWeightOutsideTheTotalAndWrongSizes) {
  const MaskedUpdate codec = Codec(Params(4));
  const MaskedUpdate::Entry layout[] = {{"w", 1}};
  std::vector<float> mean(1);
  EXPECT_EQ(codec.Decode(std::vector<uint32_t>{7, 1}, layout, mean, 0).status(),
            absl::InvalidArgumentError("the contributors' weight 0 is outside 1..4 (the declared "
                                       "training rows)"));
  EXPECT_TRUE(
      absl::IsInvalidArgument(codec.Decode(std::vector<uint32_t>{7, 5}, layout, mean, 5).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      codec.Decode(std::vector<uint32_t>{7, 1, 1}, layout, mean, 1).status()));
  std::vector<float> short_mean;
  EXPECT_TRUE(absl::IsInvalidArgument(
      codec.Decode(std::vector<uint32_t>{7, 1}, layout, short_mean, 1).status()));
}

}  // namespace
}  // namespace fedcustoms::secagg
