// One secure-aggregation round among five nodes in one process: the unmasked
// sum equals the plain sum with and without dropouts at each phase, too many
// dropouts abort, a single masked input looks uniform, and the malicious
// coordinator behaviours the active-adversary variant must stop are refused:
// swapped keys, replayed shares, a lowered threshold, split survivor lists,
// bad shares caught by the seed commitment.
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
      // t = 3 of 5 is the protocol's minimum (t > n/2); these nodes accept
      // it (threshold_fraction 0.5) so that dropouts down to t can be tested.
      SecAggNodeRound::Params params{"risk", 7, node, kThreshold, 3, 0.5};
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
    ShareAllThenMaskedInputOfEach(std::set<std::string>{node});
  }
  void ShareAllThenMaskedInputOfEach(const std::set<std::string>& nodes) {
    const std::vector<SignedAdvertisement> u1 = Advertisements();
    std::map<std::string, std::vector<SealedShares>> to;
    for (const std::string& sender : kNodes) {
      auto shares = rounds_[sender]->ShareKeys(u1);
      ASSERT_TRUE(shares.ok()) << shares.status();
      for (const SealedShares& share : *shares) to[share.to].push_back(share);
    }
    for (const std::string& node : nodes) {
      ASSERT_TRUE(rounds_[node]->MaskedInput(to[node], updates_[node]).ok()) << node;
    }
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
      EXPECT_TRUE(masked->complaints.empty()) << node;
      masked_inputs_[node] = masked->masked;
      for (size_t i = 0; i < kDim; ++i) {
        masked_sum[i] += masked->masked[i];
        (*expected)[i] += updates_[node][i];
      }
      u3.insert(node);
    }
    std::map<std::string, std::string> signatures;
    for (const std::string& node : u3) {
      auto signature = rounds_[node]->ConfirmSurvivors(u3);
      if (!signature.ok()) return signature.status();
      signatures[node] = *signature;
    }
    std::map<std::string, UnmaskShares> responses;
    for (const std::string& node : u3) {
      auto response = rounds_[node]->Unmask(u3, signatures);
      if (!response.ok()) return response.status();
      responses[node] = *response;
    }
    responses_ = responses;
    signatures_ = signatures;
    u1_keys_ = u1_keys;
    u2_ = u2;
    u3_ = u3;
    masked_sum_ = masked_sum;
    return UnmaskSum("risk", 7, kThreshold, u1_keys, u2, u3, masked_sum, responses);
  }

  // Every node confirms the survivor list `u3` (after ShareAllThenMaskedInputOf
  // for each of them); returns the signatures by signer.
  std::map<std::string, std::string> SignaturesOn(const std::set<std::string>& u3,
                                                  const std::set<std::string>& signers) {
    std::map<std::string, std::string> out;
    for (const std::string& node : signers) {
      auto signature = rounds_[node]->ConfirmSurvivors(u3);
      EXPECT_TRUE(signature.ok()) << node << ": " << signature.status();
      if (signature.ok()) out[node] = *signature;
    }
    return out;
  }

  std::unique_ptr<KeyAdvertisementVerifier> verifier_;
  std::map<std::string, std::unique_ptr<KeyAdvertisementSigner>> signers_;
  std::map<std::string, std::unique_ptr<SecAggNodeRound>> rounds_;
  std::map<std::string, std::vector<uint32_t>> updates_;
  std::map<std::string, std::vector<uint32_t>> masked_inputs_;
  // The last Run's unmasking inputs, for tests that tamper with them.
  std::map<std::string, UnmaskShares> responses_;
  std::map<std::string, std::string> signatures_;
  std::map<std::string, AdvertisedKeys> u1_keys_;
  std::set<std::string> u2_, u3_;
  std::vector<uint32_t> masked_sum_;
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
              HasSubstr("only 2 nodes sent masked input in round 7; FI needs at least 3"));
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
        *SecAggNodeRound::Create({"risk", 8, node, kThreshold, 3, 0.5}, *signers_[node], *verifier_,
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
  // The sender's signature binds the round: the coordinator replayed it.
  auto masked = rounds_["EE"]->MaskedInput(replayed, updates_["EE"]);
  EXPECT_TRUE(absl::IsPermissionDenied(masked.status())) << masked.status();
  EXPECT_THAT(std::string(masked.status().message()), HasSubstr("share from DK to EE"));
}

TEST_F(SecAggRoundTest, ANodeRevealsOnceAndOnlyForSurvivorsItKnows) {
  std::vector<uint32_t> expected;
  // A full round first, so every node is at the unmasking phase and answered.
  ASSERT_TRUE(Run({}, {}, &expected).ok());
  // Asked again (e.g. with another survivor list to learn the other secret).
  auto again = rounds_["EE"]->Unmask({"DK", "EE", "FI"}, {});
  EXPECT_TRUE(absl::IsFailedPrecondition(again.status()));
  EXPECT_THAT(std::string(again.status().message()), HasSubstr("never both secrets"));
  auto resigned = rounds_["EE"]->ConfirmSurvivors({"DK", "EE", "FI"});
  EXPECT_TRUE(absl::IsFailedPrecondition(resigned.status()));
  EXPECT_THAT(std::string(resigned.status().message()), HasSubstr("never two lists"));
}

TEST_F(SecAggRoundTest, ASurvivorListWithAStrangerIsRefused) {
  ASSERT_NO_FATAL_FAILURE(ShareAllThenMaskedInputOf("EE"));
  auto response = rounds_["EE"]->ConfirmSurvivors({"DK", "EE", "FI", "XX"});
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
              HasSubstr("only 2 nodes shared keys in round 7; DK needs at least 3"));
}

TEST_F(SecAggRoundTest, ANodeLeftOutOfTheSurvivorsRevealsNothing) {
  ASSERT_NO_FATAL_FAILURE(ShareAllThenMaskedInputOf("EE"));
  // Asked to confirm a list that drops it: its own mask key share would go.
  auto response = rounds_["EE"]->ConfirmSurvivors({"DK", "FI", "LV"});
  EXPECT_TRUE(absl::IsPermissionDenied(response.status()));
  EXPECT_THAT(std::string(response.status().message()), HasSubstr("leaves out EE"));
}

// The attacks of a malicious coordinator on the threshold and the survivor
// list (the consistency check of Bonawitz et al. §4, active model).

// A coordinator that announces t below the node's own floor (here t = 3 of
// 5 against a node requiring 2/3, i.e. 4) is refused before any share leaves.
TEST_F(SecAggRoundTest, ALoweredThresholdIsRefusedByTheNodesOwnFloor) {
  auto strict =
      SecAggNodeRound::Create({"risk", 7, "EE", kThreshold, 3, 2.0 / 3.0}, *signers_["EE"],
                              *verifier_, *io::ReadFile(*root_ + "/EE.pem"));
  ASSERT_TRUE(strict.ok());
  rounds_["EE"] = *std::move(strict);
  auto shares = rounds_["EE"]->ShareKeys(Advertisements());
  EXPECT_TRUE(absl::IsFailedPrecondition(shares.status()));
  EXPECT_THAT(std::string(shares.status().message()),
              HasSubstr("announces threshold 3 for 5 nodes; EE requires at least 4"));
}

// Another W shown to EE only (so that EE's weighted update would dominate the
// sum): EE signed its keys with those terms, so the others cannot verify
// them, and EE cannot verify theirs. The round stops before any masked input.
TEST_F(SecAggRoundTest, TermsShownToOneNodeOnlyStopTheRoundBeforeAnyMaskedInput) {
  RoundTerms skewed;
  skewed.total_weight = 1;  // the others were given 0 (the fixture's terms)
  auto ee = SecAggNodeRound::Create({"risk", 7, "EE", kThreshold, 3, 0.5, skewed}, *signers_["EE"],
                                    *verifier_, *io::ReadFile(*root_ + "/EE.pem"));
  ASSERT_TRUE(ee.ok());
  rounds_["EE"] = *std::move(ee);
  const std::vector<SignedAdvertisement> u1 = Advertisements();
  auto dk = rounds_["DK"]->ShareKeys(u1);
  EXPECT_TRUE(absl::IsPermissionDenied(dk.status())) << dk.status();
  EXPECT_THAT(std::string(dk.status().message()),
              HasSubstr("keys advertised for EE: the signature does not cover these keys"));
  auto own = rounds_["EE"]->ShareKeys(u1);
  EXPECT_TRUE(absl::IsPermissionDenied(own.status())) << own.status();
  EXPECT_THAT(std::string(own.status().message()), HasSubstr("keys advertised for DK"));
}

// A shrunken U1: the coordinator shows a node only itself and one other (with
// t = 2 the target's secrets would be one colluder away). min_peers refuses.
TEST_F(SecAggRoundTest, AShrunkenRoundIsRefusedBelowMinPeers) {
  auto round = SecAggNodeRound::Create({"risk", 7, "EE", 2, 3, 0.5}, *signers_["EE"], *verifier_,
                                       *io::ReadFile(*root_ + "/EE.pem"));
  ASSERT_TRUE(round.ok());
  std::vector<SignedAdvertisement> two = {rounds_["DK"]->advertisement(),
                                          (*round)->advertisement()};
  auto shares = (*round)->ShareKeys(two);
  EXPECT_TRUE(absl::IsFailedPrecondition(shares.status()));
  EXPECT_THAT(std::string(shares.status().message()),
              HasSubstr("only 2 nodes advertised keys in round 7; EE needs at least 3"));
}

// Split views: the coordinator shows EE the list {DK, EE, FI} (FI "dropped"
// for the others, so it would get FI's self-mask share from EE and FI's mask
// key share from the rest) and the others {DK, EE, FI, LV, SE}. EE holds no t
// signatures on its list, and signatures on the other list do not verify
// for EE's: EE reveals nothing.
TEST_F(SecAggRoundTest, SplitSurvivorListsGetNoShares) {
  ASSERT_NO_FATAL_FAILURE(
      ShareAllThenMaskedInputOfEach(std::set<std::string>(kNodes.begin(), kNodes.end())));
  const std::set<std::string> full(kNodes.begin(), kNodes.end());
  const std::set<std::string> shown_to_ee = {"DK", "EE", "FI"};
  auto ee_signature = rounds_["EE"]->ConfirmSurvivors(shown_to_ee);
  ASSERT_TRUE(ee_signature.ok()) << ee_signature.status();
  std::map<std::string, std::string> others = SignaturesOn(full, {"DK", "FI", "LV", "SE"});
  // The others' signatures relabelled as if on EE's list: they do not verify.
  std::map<std::string, std::string> forged = {{"DK", others["DK"]}, {"FI", others["FI"]}};
  forged["EE"] = *ee_signature;
  auto reveal = rounds_["EE"]->Unmask(shown_to_ee, forged);
  EXPECT_TRUE(absl::IsPermissionDenied(reveal.status())) << reveal.status();
  EXPECT_THAT(std::string(reveal.status().message()),
              HasSubstr("survivor list signed by DK: the signature does not cover this list"));
}

// The same round id run twice (fresh keys): the first run's signatures on the
// same list do not count in the second, because they cover the first run's
// keys.
TEST_F(SecAggRoundTest, SignaturesFromAnotherRunOfTheRoundDoNotCount) {
  std::vector<uint32_t> expected;
  ASSERT_TRUE(Run({}, {}, &expected).ok());
  const std::map<std::string, std::string> first_run = signatures_;
  for (const std::string& node : kNodes) {
    rounds_[node] =
        *SecAggNodeRound::Create({"risk", 7, node, kThreshold, 3, 0.5}, *signers_[node], *verifier_,
                                 *io::ReadFile(*root_ + "/" + node + ".pem"));
  }
  ASSERT_NO_FATAL_FAILURE(
      ShareAllThenMaskedInputOfEach(std::set<std::string>(kNodes.begin(), kNodes.end())));
  const std::set<std::string> all(kNodes.begin(), kNodes.end());
  ASSERT_TRUE(rounds_["EE"]->ConfirmSurvivors(all).ok());
  auto reveal = rounds_["EE"]->Unmask(all, first_run);
  EXPECT_TRUE(absl::IsPermissionDenied(reveal.status())) << reveal.status();
  EXPECT_THAT(std::string(reveal.status().message()), HasSubstr("replayed another run"));
}

TEST_F(SecAggRoundTest, TooFewSignaturesOnTheListGetNoShares) {
  ASSERT_NO_FATAL_FAILURE(
      ShareAllThenMaskedInputOfEach(std::set<std::string>(kNodes.begin(), kNodes.end())));
  const std::set<std::string> full(kNodes.begin(), kNodes.end());
  std::map<std::string, std::string> two = SignaturesOn(full, {"DK", "EE"});
  auto reveal = rounds_["EE"]->Unmask(full, two);
  EXPECT_TRUE(absl::IsFailedPrecondition(reveal.status())) << reveal.status();
  EXPECT_THAT(
      std::string(reveal.status().message()),
      HasSubstr("only 2 nodes confirmed the survivor list in round 7; EE needs at least 3"));
  // Asked to unmask another list than the one it confirmed.
  auto other = rounds_["DK"]->Unmask({"DK", "EE", "FI"}, two);
  EXPECT_TRUE(absl::IsPermissionDenied(other.status())) << other.status();
  EXPECT_THAT(std::string(other.status().message()), HasSubstr("other than the one DK confirmed"));
}

// A node that dealt shares of another seed than the one it committed to (or
// revealers that agree on wrong shares): the shares reconstruct cleanly, but
// the seed does not match its commitment, and unmasking names whose seed
// failed instead of returning a wrong sum.
TEST_F(SecAggRoundTest, SharesOfAnotherSeedAreCaughtByTheCommitment) {
  std::vector<uint32_t> expected;
  ASSERT_TRUE(Run({}, {}, &expected).ok());
  std::vector<uint8_t> other_seed(32, 0x5a);
  auto other = SplitSecret(other_seed, kThreshold, static_cast<uint32_t>(kNodes.size()));
  ASSERT_TRUE(other.ok()) << other.status();
  std::map<std::string, UnmaskShares> bad = responses_;
  for (auto& [responder, response] : bad) {
    ShamirShare& share = response.self_mask_seeds["FI"];
    share = (*other)[share.x - 1];
  }
  auto sum = UnmaskSum("risk", 7, kThreshold, u1_keys_, u2_, u3_, masked_sum_, bad);
  EXPECT_TRUE(absl::IsDataLoss(sum.status())) << sum.status();
  EXPECT_THAT(std::string(sum.status().message()),
              HasSubstr("the self-mask seed of FI does not match its commitment"));
}

// Revealers that lie about their shares are outvoted while t good shares of
// each secret remain, and named: here FI and LV both send a wrong share of
// DK's seed (two liars in the first t), FI of EE's seed too.
TEST_F(SecAggRoundTest, LyingRevealersAreOutvotedAndNamed) {
  std::vector<uint32_t> expected;
  ASSERT_TRUE(Run({}, {}, &expected).ok());
  std::map<std::string, UnmaskShares> lies = responses_;
  lies["FI"].self_mask_seeds.at("DK").y[0] ^= 1;
  lies["LV"].self_mask_seeds.at("DK").y[3] ^= 1;
  lies["FI"].self_mask_seeds.at("EE").y[1] ^= 1;
  std::set<std::string> inconsistent;
  auto sum = UnmaskSum("risk", 7, kThreshold, u1_keys_, u2_, u3_, masked_sum_, lies, &inconsistent);
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_EQ(*sum, expected);
  EXPECT_EQ(inconsistent, (std::set<std::string>{"FI", "LV"}));

  // Three liars leave two good shares of DK's seed, fewer than t = 3.
  lies["SE"].self_mask_seeds.at("DK").y[0] ^= 1;
  auto failed = UnmaskSum("risk", 7, kThreshold, u1_keys_, u2_, u3_, masked_sum_, lies);
  EXPECT_TRUE(absl::IsDataLoss(failed.status())) << failed.status();
  EXPECT_THAT(std::string(failed.status().message()),
              HasSubstr("the self-mask seed of DK does not match its commitment: no 3 of the 5"));
}

// Review finding: a coordinator that shows a sender a U1 without one node
// shifts every share index the sender deals; if receivers then revealed the
// keys of those "bad" messages, the coordinator would read genuine shares of
// both the sender's secrets. A message that does not open is checked against
// its sender's signature, which covers the digest of the sender's U1, before
// anything is revealed: a receiver shown another U1 finds the signature does
// not verify and refuses the round. No complaint, no key.
TEST_F(SecAggRoundTest, ASenderShownAnotherU1GetsTheRoundRefusedNotAKeyRevealed) {
  std::vector<SignedAdvertisement> u1 = Advertisements();
  std::vector<SignedAdvertisement> without_dk;
  for (const SignedAdvertisement& ad : u1) {
    if (ad.keys.node != "DK") without_dk.push_back(ad);
  }
  // SE, shown U1 without DK, deals EE the share at x = 1; EE's own U1 puts it
  // at x = 2, so the message does not open as EE's.
  auto from_se = rounds_["SE"]->ShareKeys(without_dk);
  ASSERT_TRUE(from_se.ok()) << from_se.status();
  ASSERT_TRUE(rounds_["EE"]->ShareKeys(u1).ok());
  std::vector<SealedShares> to_ee;
  for (const SealedShares& s : *from_se) {
    if (s.to == "EE") to_ee.push_back(s);
  }
  ASSERT_EQ(to_ee.size(), 1u);
  auto masked = rounds_["EE"]->MaskedInput(to_ee, updates_["EE"]);
  EXPECT_TRUE(absl::IsPermissionDenied(masked.status())) << masked.status();
  EXPECT_THAT(std::string(masked.status().message()),
              HasSubstr("the two nodes were shown different keys"));
}

// The same lie where it leaves the index in place: DK shown U1 without SE
// still deals EE its share at x = 2. The sealed share's associated data
// binds the digest of the U1 its sender dealt for, so the message does not
// open for EE either, and the signature check refuses the round (review
// finding: without the digest in the associated data the message opened,
// and the two views were only caught if the coordinator relayed DK's
// confirmation).
TEST_F(SecAggRoundTest, ASenderShownAnotherU1ThatKeepsTheIndexGetsTheRoundRefusedToo) {
  std::vector<SignedAdvertisement> u1 = Advertisements();
  std::vector<SignedAdvertisement> without_se;
  for (const SignedAdvertisement& ad : u1) {
    if (ad.keys.node != "SE") without_se.push_back(ad);
  }
  std::map<std::string, std::vector<SealedShares>> to;
  for (const std::string& sender : kNodes) {
    auto shares = rounds_[sender]->ShareKeys(sender == "DK" ? without_se : u1);
    ASSERT_TRUE(shares.ok()) << shares.status();
    for (const SealedShares& share : *shares) to[share.to].push_back(share);
  }
  auto masked = rounds_["EE"]->MaskedInput(to["EE"], updates_["EE"]);
  EXPECT_TRUE(absl::IsPermissionDenied(masked.status())) << masked.status();
  EXPECT_THAT(std::string(masked.status().message()),
              HasSubstr("share from DK to EE for task risk round 7: the signature of DK"));
  // FI and LV see the same; the honest senders' messages alone still open.
  for (const std::string& node : {"FI", "LV"}) {
    EXPECT_TRUE(
        absl::IsPermissionDenied(rounds_[node]->MaskedInput(to[node], updates_[node]).status()))
        << node;
  }
}

}  // namespace
}  // namespace fedcustoms::secagg
