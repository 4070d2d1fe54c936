// One secure-aggregation round among five nodes in one process: the unmasked
// sum equals the plain sum with and without dropouts at each phase, too many
// dropouts abort, a single masked input looks uniform, and the malicious
// coordinator behaviours the signed-key variant must stop are refused.
#include "common/secagg/secagg_round.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "common/io/atomic_file.h"
#include "common/pki/dev_pki.h"
#include "tests/support/federation_dir.h"
#include "tests/support/federation_suite.h"

namespace fedcustoms::secagg {
namespace {

namespace fs = std::filesystem;
using testing::HasSubstr;

const std::vector<std::string> kNodes = {"DK", "EE", "FI", "LV", "SE"};
constexpr uint32_t kThreshold = 3;
constexpr size_t kDim = 5000;

class SecAggRoundTest : public testing_support::FederationSuite<SecAggRoundTest> {
 protected:
  static void SetUpTestSuite() {
    MakeRoot(testing_support::MakeFederationDir("secagg-round", kNodes, /*pki_subdir=*/""));
  }
  void SetUp() override {
    verifier_ = *KeyAdvertisementVerifier::Create(*root_ + "/ca.pem");
    std::mt19937 rng(11);
    for (const std::string& node : kNodes) {
      signers_[node] = *KeyAdvertisementSigner::Create(*root_ + "/" + node + ".key");
      SecAggNodeRound::Params params{"risk", 7, node, kThreshold};
      auto round = SecAggNodeRound::Create(params, *signers_[node], *verifier_,
                                           *io::ReadFile(*root_ + "/" + node + ".pem"));
      ASSERT_TRUE(round.ok()) << round.status();
      rounds_[node] = *std::move(round);
      std::vector<uint32_t> update(kDim);
      for (uint32_t& w : update) w = rng();
      updates_[node] = update;
    }
  }

  // The advertisements of all nodes, as the coordinator relays them (U1).
  std::vector<SignedAdvertisement> Advertisements() {
    std::vector<SignedAdvertisement> u1;
    for (const std::string& node : kNodes) u1.push_back(rounds_[node]->advertisement());
    return u1;
  }

  // Every node shares its keys; then `node` sends its masked input from the
  // shares addressed to it.
  void ShareAllThenMaskedInputOf(const std::string& node) {
    const std::vector<SignedAdvertisement> u1 = Advertisements();
    std::vector<SealedShares> to_node;
    for (const std::string& sender : kNodes) {
      auto shares = rounds_[sender]->ShareKeys(u1);
      ASSERT_TRUE(shares.ok()) << shares.status();
      for (const SealedShares& share : *shares) {
        if (share.to == node) to_node.push_back(share);
      }
    }
    ASSERT_TRUE(rounds_[node]->MaskedInput(to_node, updates_[node]).ok());
  }

  // Runs the round. Nodes in `gone_before_sharing` advertise but never share
  // keys; nodes in `gone_before_input` share keys but send no masked input.
  // Returns the unmasked sum and, in *expected, the plain sum of U3's updates.
  absl::StatusOr<std::vector<uint32_t>> Run(const std::set<std::string>& gone_before_sharing,
                                            const std::set<std::string>& gone_before_input,
                                            std::vector<uint32_t>* expected) {
    std::vector<SignedAdvertisement> u1;
    std::map<std::string, AdvertisedKeys> u1_keys;
    for (const std::string& node : kNodes) {
      u1.push_back(rounds_[node]->advertisement());
      u1_keys[node] = rounds_[node]->advertisement().keys;
    }
    std::set<std::string> u2;
    std::vector<SealedShares> relayed;
    for (const std::string& node : kNodes) {
      if (gone_before_sharing.contains(node)) continue;
      auto shares = rounds_[node]->ShareKeys(u1);
      if (!shares.ok()) return shares.status();
      relayed.insert(relayed.end(), shares->begin(), shares->end());
      u2.insert(node);
    }
    std::set<std::string> u3;
    std::vector<uint32_t> masked_sum(kDim, 0);
    expected->assign(kDim, 0);
    for (const std::string& node : u2) {
      std::vector<SealedShares> mine;
      for (const SealedShares& s : relayed) {
        if (s.to == node) mine.push_back(s);
      }
      auto masked = rounds_[node]->MaskedInput(mine, updates_[node]);
      if (!masked.ok()) return masked.status();
      if (gone_before_input.contains(node)) continue;  // its input never arrives
      masked_inputs_[node] = *masked;
      for (size_t i = 0; i < kDim; ++i) {
        masked_sum[i] += (*masked)[i];
        (*expected)[i] += updates_[node][i];
      }
      u3.insert(node);
    }
    std::map<std::string, UnmaskShares> responses;
    for (const std::string& node : u3) {
      auto response = rounds_[node]->Unmask(u3);
      if (!response.ok()) return response.status();
      responses[node] = *response;
    }
    return UnmaskSum("risk", 7, kThreshold, u1_keys, u2, u3, masked_sum, responses);
  }

  std::unique_ptr<KeyAdvertisementVerifier> verifier_;
  std::map<std::string, std::unique_ptr<KeyAdvertisementSigner>> signers_;
  std::map<std::string, std::unique_ptr<SecAggNodeRound>> rounds_;
  std::map<std::string, std::vector<uint32_t>> updates_;
  std::map<std::string, std::vector<uint32_t>> masked_inputs_;
};

TEST_F(SecAggRoundTest, UnmaskedSumEqualsThePlainSum) {
  std::vector<uint32_t> expected;
  auto sum = Run({}, {}, &expected);
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_EQ(*sum, expected);
}

TEST_F(SecAggRoundTest, NodeDroppedAfterSharingKeysIsRecovered) {
  std::vector<uint32_t> expected;
  auto sum = Run({}, {"FI"}, &expected);
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_EQ(*sum, expected);
}

TEST_F(SecAggRoundTest, DropoutsAtBothPhasesDownToTheThreshold) {
  std::vector<uint32_t> expected;
  auto sum = Run({"SE"}, {"DK"}, &expected);  // U1 = 5, U2 = 4, U3 = 3 = t
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_EQ(*sum, expected);
}

TEST_F(SecAggRoundTest, FewerSurvivorsThanTheThresholdAbort) {
  std::vector<uint32_t> expected;
  auto sum = Run({"SE"}, {"DK", "EE"}, &expected);  // U3 = 2 < t
  ASSERT_FALSE(sum.ok());
  EXPECT_THAT(std::string(sum.status().message()),
              HasSubstr("only 2 nodes sent masked input in round 7; the threshold is 3"));
}

// What the coordinator receives from one node reveals nothing of its update:
// the masked input of an all-zero update is uniform over 32-bit words.
TEST_F(SecAggRoundTest, AMaskedInputLooksUniformEvenForAZeroUpdate) {
  updates_["EE"].assign(kDim, 0);
  std::vector<uint32_t> expected;
  ASSERT_TRUE(Run({}, {}, &expected).ok());
  const std::vector<uint32_t>& masked = masked_inputs_["EE"];
  const double n = static_cast<double>(masked.size());
  for (int bit = 0; bit < 32; ++bit) {
    double ones = 0;
    for (uint32_t w : masked) ones += (w >> bit) & 1u;
    EXPECT_LT(std::abs(ones - n / 2), 5 * std::sqrt(n / 4)) << "bit " << bit;
  }
  std::vector<double> counts(16, 0);  // top 4 bits
  for (uint32_t w : masked) counts[w >> 28] += 1;
  double chi2 = 0;
  for (double c : counts) chi2 += (c - n / 16) * (c - n / 16) / (n / 16);
  EXPECT_LT(chi2, 15 + 6 * std::sqrt(30.0)) << chi2;
}

TEST(UnmaskSum, RefusesInconsistentNodeSetsWithoutThrowing) {
  std::map<std::string, AdvertisedKeys> u1 = {{"DK", {}}, {"EE", {}}, {"FI", {}}};
  absl::StatusOr<std::vector<uint32_t>> sum =
      UnmaskSum("risk", 7, 2, u1, {"DK", "EE", "XX"}, {"DK", "EE"}, {0}, {{"DK", {}}, {"EE", {}}});
  EXPECT_EQ(std::string(sum.status().message()), "node XX shared keys but never advertised any");
  sum = UnmaskSum("risk", 7, 2, u1, {"DK", "EE"}, {"DK", "FI"}, {0}, {{"DK", {}}, {"EE", {}}});
  EXPECT_EQ(std::string(sum.status().message()), "survivor FI did not share keys");
  sum = UnmaskSum("risk", 7, 1, u1, {"DK", "EE"}, {"DK"}, {0}, {{"DK", {}}, {"EE", {}}});
  EXPECT_TRUE(absl::IsInvalidArgument(sum.status())) << sum.status();  // t <= n/2
}

TEST_F(SecAggRoundTest, ASwappedKeyStopsTheRound) {
  std::vector<SignedAdvertisement> u1 = Advertisements();
  u1[2].keys.mask_key = rounds_["EE"]->advertisement().keys.mask_key;  // FI's key swapped
  auto shares = rounds_["DK"]->ShareKeys(u1);
  EXPECT_TRUE(absl::IsPermissionDenied(shares.status()));
  EXPECT_THAT(std::string(shares.status().message()),
              HasSubstr("keys advertised for FI: the signature does not cover these keys"));
  // Having refused, the node does nothing more this round.
  EXPECT_TRUE(absl::IsFailedPrecondition(rounds_["DK"]->ShareKeys(u1).status()));
}

TEST_F(SecAggRoundTest, AShareReplayedFromAnotherRoundIsRefused) {
  // The same nodes in round 8 (fresh keys), whose shares are replayed into 7.
  std::map<std::string, std::unique_ptr<SecAggNodeRound>> round8;
  std::vector<SignedAdvertisement> u1_8, u1_7;
  for (const std::string& node : kNodes) {
    round8[node] =
        *SecAggNodeRound::Create({"risk", 8, node, kThreshold}, *signers_[node], *verifier_,
                                 *io::ReadFile(*root_ + "/" + node + ".pem"));
    u1_8.push_back(round8[node]->advertisement());
    u1_7.push_back(rounds_[node]->advertisement());
  }
  auto old = round8["DK"]->ShareKeys(u1_8);
  ASSERT_TRUE(old.ok());
  ASSERT_TRUE(rounds_["EE"]->ShareKeys(u1_7).ok());
  std::vector<SealedShares> replayed;
  for (const SealedShares& s : *old) {
    if (s.to == "EE") replayed.push_back(s);
  }
  auto masked = rounds_["EE"]->MaskedInput(replayed, updates_["EE"]);
  EXPECT_TRUE(absl::IsDataLoss(masked.status())) << masked.status();
  EXPECT_THAT(std::string(masked.status().message()), HasSubstr("shares from DK"));
}

TEST_F(SecAggRoundTest, ANodeRevealsOnceAndOnlyForSurvivorsItKnows) {
  std::vector<uint32_t> expected;
  // A full round first, so every node is at the unmasking phase and answered.
  ASSERT_TRUE(Run({}, {}, &expected).ok());
  // Asked again (e.g. with another survivor list to learn the other secret).
  auto again = rounds_["EE"]->Unmask({"DK", "EE", "FI"});
  EXPECT_TRUE(absl::IsFailedPrecondition(again.status()));
  EXPECT_THAT(std::string(again.status().message()), HasSubstr("never both secrets"));
}

TEST_F(SecAggRoundTest, ASurvivorListWithAStrangerIsRefused) {
  ASSERT_NO_FATAL_FAILURE(ShareAllThenMaskedInputOf("EE"));
  auto response = rounds_["EE"]->Unmask({"DK", "EE", "FI", "XX"});
  EXPECT_TRUE(absl::IsPermissionDenied(response.status()));
  EXPECT_THAT(std::string(response.status().message()), HasSubstr("names XX"));
}

// The node's own refusals, each with the rule it names.
TEST_F(SecAggRoundTest, ANodeRefusesInputThatBreaksTheProtocol) {
  std::vector<SignedAdvertisement> u1 = Advertisements();

  // Out of order: masked input before sharing keys.
  EXPECT_TRUE(absl::IsFailedPrecondition(rounds_["SE"]->MaskedInput({}, updates_["SE"]).status()));

  // A node advertised twice.
  std::vector<SignedAdvertisement> doubled = u1;
  doubled.push_back(u1[0]);
  EXPECT_THAT(std::string(rounds_["LV"]->ShareKeys(doubled).status().message()),
              HasSubstr("node DK is advertised twice"));

  // The node's own keys left out of the relayed set.
  std::vector<SignedAdvertisement> without_fi;
  for (const SignedAdvertisement& ad : u1) {
    if (ad.keys.node != "FI") without_fi.push_back(ad);
  }
  EXPECT_THAT(std::string(rounds_["FI"]->ShareKeys(without_fi).status().message()),
              HasSubstr("do not include FI's own, unaltered"));

  // Shares: one addressed to another node, then too few senders.
  std::map<std::string, std::vector<SealedShares>> to;
  for (const std::string node : {"DK", "EE"}) {
    auto shares = rounds_[node]->ShareKeys(u1);
    ASSERT_TRUE(shares.ok()) << shares.status();
    for (const SealedShares& share : *shares) to[share.to].push_back(share);
  }
  auto misaddressed = rounds_["EE"]->MaskedInput(to["FI"], updates_["EE"]);
  EXPECT_TRUE(absl::IsPermissionDenied(misaddressed.status()));
  EXPECT_THAT(std::string(misaddressed.status().message()), HasSubstr("is not for EE"));
  auto too_few = rounds_["DK"]->MaskedInput(to["DK"], updates_["DK"]);  // U2 = {DK, EE}
  EXPECT_THAT(std::string(too_few.status().message()),
              HasSubstr("only 2 nodes shared keys in round 7; the threshold is 3"));
}

TEST_F(SecAggRoundTest, ANodeLeftOutOfTheSurvivorsRevealsNothing) {
  ASSERT_NO_FATAL_FAILURE(ShareAllThenMaskedInputOf("EE"));
  // Asked to reveal while listed as dropped: its own mask key share would go.
  auto response = rounds_["EE"]->Unmask({"DK", "FI", "LV"});
  EXPECT_TRUE(absl::IsPermissionDenied(response.status()));
  EXPECT_THAT(std::string(response.status().message()), HasSubstr("leaves out EE"));
}

}  // namespace
}  // namespace fedcustoms::secagg
