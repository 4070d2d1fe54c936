// Fixed-point encoding for secure aggregation: the documented error and
// overflow bounds, and a masked sum that decodes to the plain weighted mean.
#include "common/secagg/fixed_point.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/rand.h>

#include <cmath>
#include <random>
#include <vector>

#include "common/secagg/mask_generator.h"

namespace fedcustoms::secagg {
namespace {

FixedPointCodec Codec(FixedPointCodec::Options options = {}) {
  auto codec = FixedPointCodec::Create(options);
  EXPECT_TRUE(codec.ok()) << codec.status();
  return *codec;
}

// Encodes each node's values with its weight and adds the words mod 2^32.
std::vector<uint32_t> EncodedSum(const FixedPointCodec& codec,
                                 const std::vector<std::vector<float>>& values,
                                 const std::vector<double>& weights) {
  std::vector<uint32_t> sum(values[0].size(), 0), words(values[0].size());
  for (size_t node = 0; node < values.size(); ++node) {
    EXPECT_TRUE(codec.Encode(values[node], weights[node], words).ok());
    for (size_t i = 0; i < sum.size(); ++i) sum[i] += words[i];
  }
  return sum;
}

TEST(FixedPointCodec, WeightedMeanWithinTheDocumentedBound) {
  FixedPointCodec::Options options;
  options.max_nodes = 10;
  const FixedPointCodec codec = Codec(options);
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> value(-0.9f, 0.9f);
  const std::vector<uint64_t> samples = {120, 5000, 37, 900, 4, 2600, 71, 333, 1500, 10};
  double total_rows = 0;
  for (uint64_t n : samples) total_rows += static_cast<double>(n);
  total_rows *= 1.25;  // declared rows exceed what was used: Σ w < 1
  std::vector<std::vector<float>> values(samples.size(), std::vector<float>(20000));
  std::vector<double> weights;
  for (size_t node = 0; node < samples.size(); ++node) {
    for (float& v : values[node]) v = value(rng);
    weights.push_back(static_cast<double>(samples[node]) / total_rows);
  }
  double total_weight = 0;
  for (double w : weights) total_weight += w;
  std::vector<float> mean(20000);
  ASSERT_TRUE(codec.DecodeMean(EncodedSum(codec, values, weights), total_weight, mean).ok());
  const double bound = codec.ErrorBound(total_weight);
  double worst = 0;
  for (size_t i = 0; i < mean.size(); ++i) {
    double exact = 0;
    for (size_t node = 0; node < samples.size(); ++node) exact += weights[node] * values[node][i];
    exact /= total_weight;
    // The bound, plus float32 rounding of the decoded value.
    const double error = std::abs(mean[i] - exact);
    worst = std::max(worst, error);
    ASSERT_LE(error, bound + std::abs(exact) * 1e-7) << i;
  }
  EXPECT_GT(worst, 0.0);  // it is a real quantization, not a copy
}

// All nodes at the clip limit with the largest total weight: the signed sum
// is at its extreme and still reads back with the right sign and value.
TEST(FixedPointCodec, ExtremeSumsDoNotOverflow) {
  FixedPointCodec::Options options;
  options.max_nodes = 4;
  options.scale = 2147483648.0 - 3;  // the largest scale Create accepts here
  const FixedPointCodec codec = Codec(options);
  options.scale += 1;
  EXPECT_FALSE(FixedPointCodec::Create(options).ok());
  for (float sign : {1.0f, -1.0f}) {
    std::vector<std::vector<float>> values(4, std::vector<float>(3, sign * 50.0f));
    std::vector<float> mean(3);
    ASSERT_TRUE(
        codec.DecodeMean(EncodedSum(codec, values, {0.25, 0.25, 0.25, 0.25}), 1.0, mean).ok());
    for (float m : mean) EXPECT_NEAR(m, sign * options.clip, codec.ErrorBound(1.0));
  }
}

// 0.1 is not exact in float: rounded up, a float clip would push the largest
// accepted scale past 2^31. The clamp uses the exact clip.
TEST(FixedPointCodec, AFloatValueAtTheClipDoesNotWrap) {
  FixedPointCodec::Options options;
  options.clip = 0.1;
  options.max_nodes = 1;
  options.scale = (2147483648.0 - 1.5) / 0.1;
  const FixedPointCodec codec = Codec(options);
  const std::vector<float> values = {0.1f, -0.1f};
  std::vector<uint32_t> words(2);
  ASSERT_TRUE(codec.Encode(values, 1.0, words).ok());
  std::vector<float> back(2);
  ASSERT_TRUE(codec.DecodeMean(words, 1.0, back).ok());
  EXPECT_NEAR(back[0], 0.1, 1e-6);
  EXPECT_NEAR(back[1], -0.1, 1e-6);
}

TEST(FixedPointCodec, RefusesAConfigurationThatCouldOverflow) {
  FixedPointCodec::Options options;
  options.scale = double(1u << 31);
  absl::StatusOr<FixedPointCodec> codec = FixedPointCodec::Create(options);
  ASSERT_FALSE(codec.ok());
  EXPECT_THAT(std::string(codec.status().message()),
              testing::HasSubstr("could overflow the 32-bit ring"));
  options = {};
  options.max_total_weight = 8;
  EXPECT_FALSE(FixedPointCodec::Create(options).ok());
  options = {};
  options.clip = 0;
  EXPECT_EQ(std::string(FixedPointCodec::Create(options).status().message()),
            "clip must be finite and > 0, not 0");
}

TEST(FixedPointCodec, ClipsAndCountsOutOfRangeValues) {
  const FixedPointCodec codec = Codec();
  const std::vector<float> values = {0.5f, 3.0f, -7.0f, -1.0f};
  std::vector<uint32_t> words(4);
  auto clipped = codec.Encode(values, 1.0, words);
  ASSERT_TRUE(clipped.ok());
  EXPECT_EQ(*clipped, 2u);
  std::vector<float> back(4);
  ASSERT_TRUE(codec.DecodeMean(words, 1.0, back).ok());
  EXPECT_EQ(back, (std::vector<float>{0.5f, 1.0f, -1.0f, -1.0f}));
}

TEST(FixedPointCodec, BadInputsAreNamed) {
  const FixedPointCodec codec = Codec();
  std::vector<uint32_t> words(2);
  const std::vector<float> values = {0.1f, NAN};
  EXPECT_EQ(std::string(codec.Encode(values, 0.5, words).status().message()),
            "value 1 is NaN or Inf");
  EXPECT_EQ(std::string(codec.Encode(values, 0.0, words).status().message()),
            "weight 0 is outside (0, 1]");
  std::vector<uint32_t> short_out(1);
  EXPECT_EQ(std::string(codec.Encode(values, 0.5, short_out).status().message()),
            "output has 1 words for 2 values");
}

// Encoded, masked with pairwise and self masks, summed, self masks removed:
// the coordinator's sum decodes to the same mean as the plain encoded sum.
TEST(FixedPointCodec, MaskedSumDecodesToThePlainMean) {
  const FixedPointCodec codec = Codec();
  auto seed = [] {
    MaskSeed s{};
    EXPECT_EQ(RAND_bytes(s.data(), static_cast<int>(s.size())), 1);
    return s;
  };
  std::vector<std::vector<float>> values = {
      {0.1f, -0.2f, 0.3f}, {0.4f, 0.5f, -0.6f}, {-0.7f, 0.8f, 0.05f}};
  const std::vector<double> weights = {0.2, 0.3, 0.5};
  const MaskSeed pair01 = seed(), pair02 = seed(), pair12 = seed();
  const std::vector<MaskSeed> self = {seed(), seed(), seed()};
  std::vector<uint32_t> sum(3, 0);
  for (size_t node = 0; node < 3; ++node) {
    std::vector<uint32_t> words(3);
    ASSERT_TRUE(codec.Encode(values[node], weights[node], words).ok());
    ASSERT_TRUE(ApplyMask(self[node], MaskSign::kAdd, words).ok());
    if (node == 0) {
      ASSERT_TRUE(ApplyMask(pair01, MaskSign::kAdd, words).ok());
      ASSERT_TRUE(ApplyMask(pair02, MaskSign::kAdd, words).ok());
    } else if (node == 1) {
      ASSERT_TRUE(ApplyMask(pair01, MaskSign::kSubtract, words).ok());
      ASSERT_TRUE(ApplyMask(pair12, MaskSign::kAdd, words).ok());
    } else {
      ASSERT_TRUE(ApplyMask(pair02, MaskSign::kSubtract, words).ok());
      ASSERT_TRUE(ApplyMask(pair12, MaskSign::kSubtract, words).ok());
    }
    for (size_t i = 0; i < 3; ++i) sum[i] += words[i];
  }
  for (const MaskSeed& s : self) ASSERT_TRUE(ApplyMask(s, MaskSign::kSubtract, sum).ok());
  std::vector<float> masked_mean(3), plain_mean(3);
  ASSERT_TRUE(codec.DecodeMean(sum, 1.0, masked_mean).ok());
  ASSERT_TRUE(codec.DecodeMean(EncodedSum(codec, values, weights), 1.0, plain_mean).ok());
  EXPECT_EQ(masked_mean, plain_mean);
  EXPECT_NEAR(masked_mean[0], 0.2 * 0.1 + 0.3 * 0.4 + 0.5 * -0.7, 1e-6);
}

}  // namespace
}  // namespace fedcustoms::secagg
