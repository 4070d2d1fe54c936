// Secure-aggregation building blocks: mask expansion, X25519 + HKDF key
// agreement, and the share cipher, against published vectors and their
// security properties.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/rand.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "absl/strings/escaping.h"
#include "common/secagg/key_agreement.h"
#include "common/secagg/mask_generator.h"
#include "common/secagg/share_cipher.h"

namespace fedcustoms::secagg {
namespace {

MaskSeed RandomSeed() {
  MaskSeed seed{};
  EXPECT_EQ(RAND_bytes(seed.data(), static_cast<int>(seed.size())), 1);
  return seed;
}

MaskSeed SeedFromHex(const std::string& hex) {
  const std::string bytes = absl::HexStringToBytes(hex);
  MaskSeed seed{};
  std::memcpy(seed.data(), bytes.data(), seed.size());
  return seed;
}

// NIST SP 800-38A F.5.1 (CTR-AES128): the first keystream block is
// plaintext XOR ciphertext = ec8cdf73 98607cb0 f2d21675 ea9ea1e4.
TEST(ApplyMask, IsTheAes128CtrKeystreamAsLittleEndianWords) {
  MaskSeed seed = SeedFromHex("2b7e151628aed2a6abf7158809cf4f3cf0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
  std::vector<uint32_t> data(4, 0);
  ASSERT_TRUE(ApplyMask(seed, MaskSign::kAdd, data).ok());
  EXPECT_EQ(data, (std::vector<uint32_t>{0x73df8cec, 0xb07c6098, 0x7516d2f2, 0xe4a19eea}));
}

TEST(ApplyMask, SubtractingTheSameSeedRestoresTheData) {
  std::vector<uint32_t> data(100003);
  std::iota(data.begin(), data.end(), 7u);
  const std::vector<uint32_t> original = data;
  const MaskSeed seed = RandomSeed();
  ASSERT_TRUE(ApplyMask(seed, MaskSign::kAdd, data).ok());
  EXPECT_NE(data, original);
  ASSERT_TRUE(ApplyMask(seed, MaskSign::kSubtract, data).ok());
  EXPECT_EQ(data, original);
}

// One pass with several masks (contexts interleaved block by block) must be
// the same as applying each mask over the whole vector in turn; the length is
// not a multiple of the block so the tail is covered.
TEST(ApplyMasks, OnePassEqualsEachMaskInTurn) {
  std::vector<uint32_t> data(3 * 2048 + 77);
  std::iota(data.begin(), data.end(), 11u);
  std::vector<SignedMask> masks;
  for (int m = 0; m < 5; ++m) {
    masks.push_back({RandomSeed(), m % 2 ? MaskSign::kSubtract : MaskSign::kAdd});
  }
  std::vector<uint32_t> in_turn = data;
  for (const SignedMask& mask : masks) {
    ASSERT_TRUE(ApplyMask(mask.seed, mask.sign, in_turn).ok());
  }
  ASSERT_TRUE(ApplyMasks(masks, data).ok());
  EXPECT_EQ(data, in_turn);
  WipeMasks(masks);
  EXPECT_TRUE(masks.empty());
}

// Three nodes with pairwise seeds: the lower-named node adds, the other
// subtracts, so the masks cancel in the sum modulo 2^32 and only the sum of
// the inputs is left.
TEST(ApplyMask, PairwiseMasksCancelInTheSum) {
  constexpr size_t kWords = 50000;
  const MaskSeed s01 = RandomSeed(), s02 = RandomSeed(), s12 = RandomSeed();
  std::vector<std::vector<uint32_t>> inputs(3, std::vector<uint32_t>(kWords));
  for (size_t node = 0; node < 3; ++node) {
    for (size_t i = 0; i < kWords; ++i) inputs[node][i] = static_cast<uint32_t>(i * (node + 1));
  }
  auto masked = inputs;
  ASSERT_TRUE(ApplyMask(s01, MaskSign::kAdd, masked[0]).ok());
  ASSERT_TRUE(ApplyMask(s02, MaskSign::kAdd, masked[0]).ok());
  ASSERT_TRUE(ApplyMask(s01, MaskSign::kSubtract, masked[1]).ok());
  ASSERT_TRUE(ApplyMask(s12, MaskSign::kAdd, masked[1]).ok());
  ASSERT_TRUE(ApplyMask(s02, MaskSign::kSubtract, masked[2]).ok());
  ASSERT_TRUE(ApplyMask(s12, MaskSign::kSubtract, masked[2]).ok());
  for (size_t i = 0; i < kWords; ++i) {
    EXPECT_NE(masked[0][i], inputs[0][i]) << i;
    const uint32_t sum = masked[0][i] + masked[1][i] + masked[2][i];
    ASSERT_EQ(sum, inputs[0][i] + inputs[1][i] + inputs[2][i]) << i;
  }
}

// A masked vector of all zeros must look uniform: every bit position balanced
// and byte values spread evenly (chi-square, 255 degrees of freedom). Would
// fail for a biased or repeating mask.
TEST(ApplyMask, MaskOfZerosLooksUniform) {
  std::vector<uint32_t> data(1 << 20, 0);
  ASSERT_TRUE(ApplyMask(RandomSeed(), MaskSign::kAdd, data).ok());
  const double n = static_cast<double>(data.size());
  for (int bit = 0; bit < 32; ++bit) {
    double ones = 0;
    for (uint32_t w : data) ones += (w >> bit) & 1u;
    EXPECT_LT(std::abs(ones - n / 2), 5 * std::sqrt(n / 4)) << "bit " << bit;
  }
  std::vector<double> counts(256, 0);
  const auto* bytes = reinterpret_cast<const uint8_t*>(data.data());
  for (size_t i = 0; i < data.size() * 4; ++i) counts[bytes[i]] += 1;
  const double expected = n * 4 / 256;
  double chi2 = 0;
  for (double c : counts) chi2 += (c - expected) * (c - expected) / expected;
  EXPECT_LT(chi2, 255 + 6 * std::sqrt(2.0 * 255)) << chi2;
}

// RFC 5869 test case 3 (empty salt and info), first 32 bytes of the OKM.
TEST(HkdfSha256, MatchesRfc5869TestCase3) {
  const std::vector<uint8_t> ikm(22, 0x0b);
  auto key = HkdfSha256(ikm, "");
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(absl::BytesToHexString(
                absl::string_view(reinterpret_cast<const char*>(key->data()), key->size())),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d");
}

TEST(X25519KeyPair, BothSidesAgreeAndContextsSeparateKeys) {
  auto a = X25519KeyPair::Generate();
  auto b = X25519KeyPair::Generate();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->public_key(), b->public_key());
  auto ab = a->Agree(b->public_key(), "mask round 1");
  auto ba = b->Agree(a->public_key(), "mask round 1");
  auto other = a->Agree(b->public_key(), "mask round 2");
  ASSERT_TRUE(ab.ok() && ba.ok() && other.ok());
  EXPECT_EQ(*ab, *ba);
  EXPECT_NE(*ab, *other);
}

TEST(X25519KeyPair, RebuiltFromItsPrivateBytesAgreesTheSame) {
  auto a = X25519KeyPair::Generate();
  auto b = X25519KeyPair::Generate();
  ASSERT_TRUE(a.ok() && b.ok());
  auto secret = a->PrivateBytes();
  ASSERT_TRUE(secret.ok());
  auto rebuilt = X25519KeyPair::FromPrivate(*secret);
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.status();
  EXPECT_EQ(rebuilt->public_key(), a->public_key());
  EXPECT_EQ(*rebuilt->Agree(b->public_key(), "x"), *a->Agree(b->public_key(), "x"));
}

TEST(X25519KeyPair, RefusesBadKeys) {
  auto a = X25519KeyPair::Generate();
  ASSERT_TRUE(a.ok());
  // The all-zero point has low order: the shared secret would be zero.
  absl::StatusOr<SharedKey> zero = a->Agree(X25519PublicKey{}, "x");
  EXPECT_FALSE(zero.ok());
  EXPECT_THAT(std::string(zero.status().message()), testing::HasSubstr("X25519"));
  absl::StatusOr<X25519KeyPair> short_key = X25519KeyPair::FromPrivate(std::vector<uint8_t>(31, 1));
  EXPECT_EQ(std::string(short_key.status().message()),
            "X25519 private key has 31 bytes, expected 32");
}

class ShareCipherTest : public testing::Test {
 protected:
  void SetUp() override {
    auto a = X25519KeyPair::Generate();
    auto b = X25519KeyPair::Generate();
    ASSERT_TRUE(a.ok() && b.ok());
    key_ = *a->Agree(b->public_key(), "share");
  }
  SharedKey key_{};
  const std::string aad_ = ShareAssociatedData("risk", 7, "EE", "FI", "u1");
};

TEST_F(ShareCipherTest, RoundTripsWithAFreshNonceEachTime) {
  auto one = SealShare(key_, "shares of EE for FI", aad_);
  auto two = SealShare(key_, "shares of EE for FI", aad_);
  ASSERT_TRUE(one.ok() && two.ok());
  EXPECT_NE(*one, *two);
  EXPECT_EQ(one->size(), kNonceBytes + 19 + kTagBytes);
  EXPECT_EQ(*OpenShare(key_, *one, aad_), "shares of EE for FI");
  EXPECT_EQ(*OpenShare(key_, *two, aad_), "shares of EE for FI");
}

TEST_F(ShareCipherTest, RefusesTamperingReplayRedirectionAndTheWrongKey) {
  auto sealed = SealShare(key_, "secret share", aad_);
  ASSERT_TRUE(sealed.ok());
  std::string tampered = *sealed;
  tampered[kNonceBytes + 3] ^= 1;
  EXPECT_TRUE(absl::IsDataLoss(OpenShare(key_, tampered, aad_).status()));
  // Replayed into another round, or redirected to another receiver.
  EXPECT_TRUE(absl::IsDataLoss(
      OpenShare(key_, *sealed, ShareAssociatedData("risk", 8, "EE", "FI", "u1")).status()));
  EXPECT_TRUE(absl::IsDataLoss(
      OpenShare(key_, *sealed, ShareAssociatedData("risk", 7, "EE", "LV", "u1")).status()));
  SharedKey other = key_;
  other[0] ^= 1;
  absl::Status wrong_key = OpenShare(other, *sealed, aad_).status();
  EXPECT_TRUE(absl::IsDataLoss(wrong_key));
  EXPECT_THAT(std::string(wrong_key.message()), testing::HasSubstr("failed authentication"));
  EXPECT_EQ(std::string(OpenShare(key_, "short", aad_).status().message()),
            "share message has 5 bytes, fewer than nonce and tag (28)");
}

TEST(ShareAssociatedData, DifferentTuplesNeverCollide) {
  EXPECT_NE(ShareAssociatedData("a", 1, "b|c", "d", "u"),
            ShareAssociatedData("a", 1, "b", "c|d", "u"));
  EXPECT_NE(ShareAssociatedData("a", 1, "b", "c", "u1"),
            ShareAssociatedData("a", 1, "b", "c", "u2"));
  EXPECT_NE(ShareAssociatedData("risk", 1, "EE", "FI", "u"),
            ShareAssociatedData("risk", 1, "FI", "EE", "u"));
}

}  // namespace
}  // namespace fedcustoms::secagg
