// The coordinator's bookkeeping of one secure-aggregation round, driven by
// five real SecAggNodeRound nodes with real signed keys, sealed shares and
// reveals: the round gives back the plain sum of the masked inputs it
// collected, with and without dropouts, and refuses every share and reveal
// that breaks the protocol's rules, naming the node. Then the conversions of
// the node service's secure-aggregation messages and their refusals.
#include "coordinator/rounds/secure_round.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/io/atomic_file.h"
#include "common/pki/dev_pki.h"
#include "common/secagg/secagg_messages.h"
#include "common/secagg/secagg_round.h"
#include "tests/support/federation_dir.h"

namespace fedcustoms::coordinator {
namespace {

namespace fs = std::filesystem;
using secagg::SealedShares;
using secagg::SecAggNodeRound;
using secagg::SignedAdvertisement;
using secagg::UnmaskShares;
using testing::HasSubstr;

const std::vector<std::string> kNodes = {"DK", "EE", "FI", "LV", "SE"};  // x = 1 .. 5
const std::set<std::string> kAll(kNodes.begin(), kNodes.end());
constexpr uint32_t kThreshold = 3;
constexpr size_t kDim = 64;
const std::string kTask = "risk";
constexpr uint64_t kRound = 7;

std::string Message(const absl::Status& status) { return std::string(status.message()); }

class SecureRoundTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto dir = testing_support::MakeFederationDir("secround", kNodes, /*pki_subdir=*/"");
    ASSERT_TRUE(dir.ok()) << dir.status();
    root_ = new std::string(*dir);
  }
  static void TearDownTestSuite() {
    fs::remove_all(*root_);
    delete root_;
    root_ = nullptr;
  }

  void SetUp() override {
    auto verifier = secagg::KeyAdvertisementVerifier::Create(*root_ + "/ca.pem");
    ASSERT_TRUE(verifier.ok()) << verifier.status();
    verifier_ = *std::move(verifier);
    std::mt19937 rng(23);
    for (const std::string& node : kNodes) {
      auto signer = secagg::KeyAdvertisementSigner::Create(*root_ + "/" + node + ".key");
      ASSERT_TRUE(signer.ok()) << signer.status();
      signers_[node] = *std::move(signer);
      auto cert = io::ReadFile(*root_ + "/" + node + ".pem");
      ASSERT_TRUE(cert.ok()) << cert.status();
      // t = 3 of 5, the protocol's minimum, accepted by these nodes
      // (threshold_fraction 0.5) to test dropouts down to t.
      auto round = SecAggNodeRound::Create({kTask, kRound, node, kThreshold, 3, 0.5},
                                           *signers_[node], *verifier_, *cert);
      ASSERT_TRUE(round.ok()) << round.status();
      nodes_[node] = *std::move(round);
      std::vector<uint32_t> update(kDim);
      for (uint32_t& w : update) w = rng();
      updates_[node] = std::move(update);
    }
    round_ = std::make_unique<SecureRound>(SecureRound::Params{kTask, kRound, kAll, kThreshold},
                                           *verifier_);
  }

  // Phase 1: every node but those in `absent` advertises; the phase closes.
  void Advertise(const std::set<std::string>& absent = {}) {
    for (const std::string& node : kNodes) {
      if (absent.contains(node)) continue;
      absl::Status s = round_->Advertise(node, nodes_[node]->advertisement());
      ASSERT_TRUE(s.ok()) << node << ": " << s;
    }
    ASSERT_TRUE(round_->CloseAdvertising().ok());
  }

  // Phase 2, node side only: each node of U1 but those in `absent` computes
  // its sealed shares from the relayed advertisements (kept in sealed_).
  void ComputeShares(const std::set<std::string>& absent = {}) {
    for (const SignedAdvertisement& ad : round_->advertisements()) {
      const std::string& node = ad.keys.node;
      if (absent.contains(node)) continue;
      auto shares = nodes_[node]->ShareKeys(round_->advertisements());
      ASSERT_TRUE(shares.ok()) << node << ": " << shares.status();
      sealed_[node] = *std::move(shares);
    }
  }

  // Phase 2: the computed shares reach the coordinator; the phase closes.
  void Share(const std::set<std::string>& absent = {}) {
    ASSERT_NO_FATAL_FAILURE(ComputeShares(absent));
    for (const auto& [node, shares] : sealed_) {
      absl::Status s = round_->ShareKeys(node, shares);
      ASSERT_TRUE(s.ok()) << node << ": " << s;
    }
    ASSERT_TRUE(round_->CloseSharing().ok());
  }

  // Phase 3, node side: each node of U2 masks its update from the shares the
  // coordinator relays to it; the inputs of `u3` are summed into masked_sum_
  // and their plain updates into expected_ (both mod 2^32).
  void MaskInputs(const std::set<std::string>& u3) {
    masked_sum_.assign(kDim, 0);
    expected_.assign(kDim, 0);
    for (const auto& [node, unused] : sealed_) {
      auto masked = nodes_[node]->MaskedInput(round_->SharesFor(node), updates_[node]);
      ASSERT_TRUE(masked.ok()) << node << ": " << masked.status();
      if (!u3.contains(node)) continue;  // its masked input never arrives
      for (size_t i = 0; i < kDim; ++i) {
        masked_sum_[i] += masked->masked[i];
        expected_[i] += updates_[node][i];
      }
    }
  }

  // Phase 4: each node of `u3` signs it and the coordinator takes the
  // signature; the phase closes.
  void Confirm(const std::set<std::string>& u3) {
    for (const std::string& node : u3) {
      auto signature = nodes_[node]->ConfirmSurvivors(u3);
      ASSERT_TRUE(signature.ok()) << node << ": " << signature.status();
      signatures_[node] = *signature;
      absl::Status s = round_->Confirm(node, *signature);
      ASSERT_TRUE(s.ok()) << node << ": " << s;
    }
    ASSERT_TRUE(round_->CloseConfirming().ok());
  }

  // Phases 4 and 5, node side: the survivors confirm `u3`, then each computes
  // its reveal from the signatures the coordinator relays.
  void ComputeReveals(const std::set<std::string>& u3) {
    ASSERT_NO_FATAL_FAILURE(Confirm(u3));
    for (const std::string& node : u3) {
      auto reveal = nodes_[node]->Unmask(u3, round_->survivor_signatures());
      ASSERT_TRUE(reveal.ok()) << node << ": " << reveal.status();
      reveals_[node] = *std::move(reveal);
    }
  }

  // Everything up to the unmasking phase with survivors `u3` and the nodes'
  // reveals computed but not yet sent.
  void RunToUnmasking(const std::set<std::string>& u3) {
    ASSERT_NO_FATAL_FAILURE(Advertise());
    ASSERT_NO_FATAL_FAILURE(Share());
    ASSERT_NO_FATAL_FAILURE(MaskInputs(u3));
    ASSERT_TRUE(round_->CloseMasking(u3).ok());
    ASSERT_NO_FATAL_FAILURE(ComputeReveals(u3));
  }

  // A real reveal, converted to its request message.
  v1::UnmaskRequest RealUnmaskRequest(const std::string& node) {
    v1::UnmaskRequest request;
    secagg::ToProto(reveals_.at(node), &request);
    return request;
  }

  static std::string* root_;
  std::unique_ptr<secagg::KeyAdvertisementVerifier> verifier_;
  std::map<std::string, std::unique_ptr<secagg::KeyAdvertisementSigner>> signers_;
  std::map<std::string, std::unique_ptr<SecAggNodeRound>> nodes_;
  std::map<std::string, std::vector<uint32_t>> updates_;
  std::unique_ptr<SecureRound> round_;
  std::map<std::string, std::vector<SealedShares>> sealed_;  // by sender
  std::vector<uint32_t> masked_sum_;
  std::vector<uint32_t> expected_;
  std::map<std::string, UnmaskShares> reveals_;
  std::map<std::string, std::string> signatures_;  // on U3, by signer
};

std::string* SecureRoundTest::root_ = nullptr;

// The messages tests use the same PKI and nodes for real keys and shares.
using SecAggMessagesTest = SecureRoundTest;

TEST_F(SecureRoundTest, AllNodesSurviveAndTheUnmaskedSumIsThePlainSum) {
  ASSERT_NO_FATAL_FAILURE(Advertise());
  EXPECT_EQ(round_->advertisements().size(), kNodes.size());
  for (const std::string& node : kNodes) EXPECT_TRUE(round_->InU1(node)) << node;

  ASSERT_NO_FATAL_FAILURE(Share());
  EXPECT_EQ(round_->shared_count(), kNodes.size());
  for (const std::string& node : kNodes) {
    EXPECT_TRUE(round_->InU2(node)) << node;
    // Exactly the shares addressed to the node, one from each other node,
    // unaltered.
    std::vector<SealedShares> mine = round_->SharesFor(node);
    std::set<std::string> senders;
    for (const SealedShares& s : mine) {
      EXPECT_EQ(s.to, node);
      EXPECT_NE(s.from, node);
      EXPECT_TRUE(senders.insert(s.from).second) << "two shares from " << s.from;
      bool found = false;
      for (const SealedShares& sent : sealed_[s.from]) {
        if (sent.to == node) found = sent.sealed == s.sealed;
      }
      EXPECT_TRUE(found) << "share from " << s.from << " to " << node << " altered";
    }
    EXPECT_EQ(mine.size(), kNodes.size() - 1) << node;
  }
  EXPECT_TRUE(round_->SharesFor("XX").empty());

  ASSERT_NO_FATAL_FAILURE(MaskInputs(kAll));
  ASSERT_TRUE(round_->CloseMasking(kAll).ok());
  EXPECT_EQ(round_->u3(), kAll);
  ASSERT_NO_FATAL_FAILURE(ComputeReveals(kAll));

  for (const std::string& node : kNodes) {
    absl::Status s = round_->Reveal(node, reveals_[node]);
    ASSERT_TRUE(s.ok()) << node << ": " << s;
    EXPECT_TRUE(round_->Revealed(node));
  }
  EXPECT_EQ(round_->revealed_count(), kNodes.size());

  absl::StatusOr<std::vector<uint32_t>> sum = round_->Unmask(masked_sum_);
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_EQ(*sum, expected_);
  EXPECT_NE(masked_sum_, expected_);  // the masks were really there
}

TEST_F(SecureRoundTest, OneDropoutBeforeMaskedInputIsUnmaskedFromTheThresholdOfReveals) {
  const std::set<std::string> u3 = {"DK", "EE", "LV", "SE"};  // FI drops out
  ASSERT_NO_FATAL_FAILURE(RunToUnmasking(u3));
  EXPECT_FALSE(round_->InU3("FI"));
  EXPECT_TRUE(round_->InU2("FI"));
  // Each reveal holds U3's self-mask seeds and FI's mask key.
  EXPECT_EQ(reveals_["DK"].self_mask_seeds.size(), 4u);
  ASSERT_EQ(reveals_["DK"].mask_keys.size(), 1u);
  EXPECT_TRUE(reveals_["DK"].mask_keys.contains("FI"));

  // Fewer than t reveals cannot unmask.
  ASSERT_TRUE(round_->Reveal("DK", reveals_["DK"]).ok());
  ASSERT_TRUE(round_->Reveal("LV", reveals_["LV"]).ok());
  absl::StatusOr<std::vector<uint32_t>> early = round_->Unmask(masked_sum_);
  EXPECT_TRUE(absl::IsFailedPrecondition(early.status())) << early.status();

  ASSERT_TRUE(round_->Reveal("SE", reveals_["SE"]).ok());  // t = 3 reveals; EE stays silent
  absl::StatusOr<std::vector<uint32_t>> sum = round_->Unmask(masked_sum_);
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_EQ(*sum, expected_);
}

// U1 = 5, U2 = 4 (SE never shares), U3 = 3 (FI sends no input): the reveals
// stay at each node's position in U1, not in U2.
TEST_F(SecureRoundTest, DropoutsAtSharingAndMaskingDownToTheThreshold) {
  ASSERT_NO_FATAL_FAILURE(Advertise());
  ASSERT_NO_FATAL_FAILURE(Share({"SE"}));
  EXPECT_TRUE(round_->InU1("SE"));
  EXPECT_FALSE(round_->InU2("SE"));
  EXPECT_EQ(round_->SharesFor("DK").size(), 3u);
  const std::set<std::string> u3 = {"DK", "EE", "LV"};
  ASSERT_NO_FATAL_FAILURE(MaskInputs(u3));
  ASSERT_TRUE(round_->CloseMasking(u3).ok());
  ASSERT_NO_FATAL_FAILURE(ComputeReveals(u3));
  for (const std::string& node : u3) {
    absl::Status s = round_->Reveal(node, reveals_[node]);
    ASSERT_TRUE(s.ok()) << node << ": " << s;
  }
  absl::StatusOr<std::vector<uint32_t>> sum = round_->Unmask(masked_sum_);
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_EQ(*sum, expected_);
}

// Tests of the error paths follow.

TEST_F(SecureRoundTest, ShareKeysRefusesSharesThatBreakTheRules) {
  ASSERT_NO_FATAL_FAILURE(Advertise());
  ASSERT_NO_FATAL_FAILURE(ComputeShares());
  const std::vector<SealedShares>& real = sealed_["DK"];
  ASSERT_EQ(real.size(), 4u);

  std::vector<SealedShares> big = real;
  big[1].sealed.assign(1025, 'x');
  absl::Status s = round_->ShareKeys("DK", big);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(Message(s), HasSubstr("node DK sent a sealed share for " + big[1].to));
  EXPECT_THAT(Message(s), HasSubstr("of 1025 bytes; at most 1024"));

  std::vector<SealedShares> forged = real;
  forged[2].from = "EE";
  s = round_->ShareKeys("DK", forged);
  EXPECT_TRUE(absl::IsPermissionDenied(s)) << s;
  EXPECT_THAT(Message(s), HasSubstr("node DK sent shares labelled as from EE"));

  std::vector<SealedShares> to_self = real;
  to_self[0].to = "DK";
  s = round_->ShareKeys("DK", to_self);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(Message(s), HasSubstr("node DK sent shares for DK,"));

  std::vector<SealedShares> to_stranger = real;
  to_stranger[3].to = "XX";
  s = round_->ShareKeys("DK", to_stranger);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(Message(s), HasSubstr("node DK sent shares for XX,"));

  std::vector<SealedShares> twice = real;
  twice[1].to = twice[0].to;
  s = round_->ShareKeys("DK", twice);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(Message(s), HasSubstr("node DK sent shares for " + twice[0].to + ","));
  EXPECT_THAT(Message(s), HasSubstr("addressed twice"));

  std::vector<SealedShares> too_few(real.begin(), real.end() - 1);
  s = round_->ShareKeys("DK", too_few);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(Message(s), HasSubstr("node DK sent shares for 3 nodes; expected 4"));
  s = round_->ShareKeys("DK", {});
  EXPECT_THAT(Message(s), HasSubstr("node DK sent shares for 0 nodes; expected 4"));

  // None of the refusals counted; the real shares are accepted, once.
  EXPECT_FALSE(round_->Shared("DK"));
  EXPECT_EQ(round_->shared_count(), 0u);
  ASSERT_TRUE(round_->ShareKeys("DK", real).ok());
  EXPECT_TRUE(round_->Shared("DK"));
  s = round_->ShareKeys("DK", real);
  EXPECT_TRUE(absl::IsAlreadyExists(s)) << s;
  EXPECT_THAT(Message(s), HasSubstr("node DK already sent its shares"));
  EXPECT_EQ(round_->shared_count(), 1u);

  // A message altered after its sender signed it is refused here, so a
  // receiver that finds a bad signature knows the coordinator altered it.
  std::vector<SealedShares> altered = sealed_["EE"];
  altered[0].sealed[13] ^= 0x01;
  s = round_->ShareKeys("EE", altered);
  EXPECT_TRUE(absl::IsPermissionDenied(s)) << s;
  EXPECT_THAT(Message(s), HasSubstr("share from EE to " + altered[0].to));
  EXPECT_THAT(Message(s), HasSubstr("the signature of EE does not cover this message"));
  std::vector<SealedShares> no_commitment = sealed_["EE"];
  no_commitment[0].key_commitment.clear();
  s = round_->ShareKeys("EE", no_commitment);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(Message(s), HasSubstr("whose key commitment is 0 bytes (expected 32)"));

  // A sealed share of exactly the bound (signed by its sender) is not
  // refused for its size.
  std::vector<SealedShares> at_bound = sealed_["EE"];
  at_bound[0].sealed.assign(1024, 'x');
  auto signature = signers_["EE"]->SignPayload(
      secagg::SealedSharePayload(kTask, kRound, "EE", at_bound[0].to, round_->u1_digest(),
                                 at_bound[0].sealed, at_bound[0].key_commitment));
  ASSERT_TRUE(signature.ok());
  at_bound[0].signature = *signature;
  s = round_->ShareKeys("EE", at_bound);
  EXPECT_TRUE(s.ok()) << s;
}

// The signature check TaskRunner runs outside its lock: it passes only the
// messages whose signature verifies, ShareKeys verifies the others itself,
// and a check made for another sender, round or U1 spares nothing.
TEST_F(SecureRoundTest, TheShareCheckOutsideTheLockSparesOnlyWhatItVerified) {
  EXPECT_TRUE(absl::IsNotFound(round_->SharesCheckFor("DK").status()));  // not sharing yet
  ASSERT_NO_FATAL_FAILURE(Advertise());
  ASSERT_NO_FATAL_FAILURE(ComputeShares());
  EXPECT_TRUE(absl::IsNotFound(round_->SharesCheckFor("XX").status()));

  std::vector<SealedShares> altered = sealed_["DK"];
  altered[2].sealed[13] ^= 0x01;
  auto check = round_->SharesCheckFor("DK");
  ASSERT_TRUE(check.ok()) << check.status();
  check->Verify(altered);
  // It stops at the first bad signature: AcceptShares refuses there anyway.
  EXPECT_EQ(check->verified, (std::vector<bool>{true, true, false, false}));
  absl::Status s = round_->ShareKeys("DK", altered, *check);
  EXPECT_TRUE(absl::IsPermissionDenied(s)) << s;
  EXPECT_THAT(Message(s), HasSubstr("the signature of DK does not cover this message"));

  // A check that claims every signature of another sender, or of this
  // sender for another U1, does not spare the altered message.
  auto other = round_->SharesCheckFor("EE");
  ASSERT_TRUE(other.ok());
  other->verified.assign(altered.size(), true);
  s = round_->ShareKeys("DK", altered, *other);
  EXPECT_TRUE(absl::IsPermissionDenied(s)) << s;
  check->verified.assign(altered.size(), true);
  check->u1_digest[0] ^= 0x01;
  s = round_->ShareKeys("DK", altered, *check);
  EXPECT_TRUE(absl::IsPermissionDenied(s)) << s;
  EXPECT_FALSE(round_->Shared("DK"));

  // Review finding: a request of many junk entries (or one not addressed
  // to each other node once) gets no signature checked outside the lock;
  // AcceptShares refuses it on its structure.
  std::vector<SealedShares> junk(5000, sealed_["DK"][0]);
  auto junk_check = round_->SharesCheckFor("DK");
  ASSERT_TRUE(junk_check.ok());
  junk_check->Verify(junk);
  EXPECT_EQ(junk_check->verified, std::vector<bool>(junk.size(), false));
  s = round_->ShareKeys("DK", junk, *junk_check);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  std::vector<SealedShares> twice = sealed_["DK"];
  twice[1] = twice[0];
  junk_check->Verify(twice);
  EXPECT_EQ(junk_check->verified, std::vector<bool>(4, false));

  // The real shares, checked outside, are taken; after that no more checks
  // are handed out for DK.
  auto good = round_->SharesCheckFor("DK");
  ASSERT_TRUE(good.ok());
  good->Verify(sealed_["DK"]);
  EXPECT_EQ(good->verified, std::vector<bool>(4, true));
  EXPECT_TRUE(round_->ShareKeys("DK", sealed_["DK"], *good).ok());
  EXPECT_TRUE(round_->Shared("DK"));
  EXPECT_TRUE(absl::IsAlreadyExists(round_->SharesCheckFor("DK").status()));
}

// A receiver that cannot use a share reports it with the sender's signed
// message and key; the coordinator judges on that evidence alone.
TEST_F(SecureRoundTest, ComplaintsAreJudgedOnTheSignedEvidence) {
  ASSERT_NO_FATAL_FAILURE(Advertise());
  ASSERT_NO_FATAL_FAILURE(ComputeShares());
  // DK cheats: the share for EE is junk of the same size, signed by DK.
  for (SealedShares& share : sealed_["DK"]) {
    if (share.to != "EE") continue;
    share.sealed[20] ^= 0x01;
    auto signature = signers_["DK"]->SignPayload(secagg::SealedSharePayload(
        kTask, kRound, "DK", "EE", round_->u1_digest(), share.sealed, share.key_commitment));
    ASSERT_TRUE(signature.ok());
    share.signature = *signature;
  }
  for (const auto& [node, shares] : sealed_) ASSERT_TRUE(round_->ShareKeys(node, shares).ok());
  ASSERT_TRUE(round_->CloseSharing().ok());

  // EE masks anyway (the pairwise mask with DK needs no share) and complains
  // with the key DK committed to; the others have nothing to say.
  std::map<std::string, secagg::MaskedInputResult> inputs;
  for (const std::string& node : kNodes) {
    auto masked = nodes_[node]->MaskedInput(round_->SharesFor(node), updates_[node]);
    ASSERT_TRUE(masked.ok()) << node << ": " << masked.status();
    inputs[node] = *std::move(masked);
    EXPECT_EQ(inputs[node].complaints.size(), node == "EE" ? 1u : 0u) << node;
  }
  const secagg::ShareComplaint complaint = inputs["EE"].complaints.at(0);
  EXPECT_EQ(complaint.share.from, "DK");
  EXPECT_EQ(complaint.share_key.size(), 32u);
  EXPECT_THAT(complaint.reason, HasSubstr("shares from DK"));

  // Evidence that is not the relayed message, or about a share sent to
  // someone else, proves nothing and is refused.
  secagg::ShareComplaint doctored = complaint;
  doctored.share.sealed[5] ^= 0x01;
  auto refused = round_->JudgeComplaint("EE", doctored);
  EXPECT_TRUE(absl::IsPermissionDenied(refused.status())) << refused.status();
  EXPECT_THAT(Message(refused.status()), HasSubstr("other than the one relayed to it"));
  refused = round_->JudgeComplaint("FI", complaint);
  EXPECT_TRUE(absl::IsPermissionDenied(refused.status())) << refused.status();
  EXPECT_THAT(Message(refused.status()), HasSubstr("which was not relayed to it"));

  // Without the key nothing can be proven: nobody is dropped.
  secagg::ShareComplaint keyless = complaint;
  keyless.share_key.clear();
  auto unproven = round_->JudgeComplaint("EE", keyless);
  ASSERT_TRUE(unproven.ok()) << unproven.status();
  EXPECT_EQ(unproven->outcome, SecureRound::Verdict::kUnproven);
  EXPECT_TRUE(round_->dropped().empty());

  // With it, the coordinator opens that one message and sees junk: DK is
  // proven to have cheated and dropped.
  auto proven = round_->JudgeComplaint("EE", complaint);
  ASSERT_TRUE(proven.ok()) << proven.status();
  EXPECT_EQ(proven->outcome, SecureRound::Verdict::kProven);
  EXPECT_EQ(proven->sender, "DK");
  EXPECT_THAT(proven->reason, HasSubstr("DK sent EE a bad share"));
  EXPECT_EQ(round_->dropped().count("DK"), 1u);

  // A key that is not the committed one makes the complaint false: the
  // complainant is dropped instead.
  std::vector<SealedShares> to_lv = round_->SharesFor("LV");
  secagg::ShareComplaint lie{to_lv.at(0), std::string(32, '\x42'), ""};
  auto false_complaint = round_->JudgeComplaint("LV", lie);
  ASSERT_TRUE(false_complaint.ok()) << false_complaint.status();
  EXPECT_EQ(false_complaint->outcome, SecureRound::Verdict::kFalse);
  EXPECT_EQ(round_->dropped().count("LV"), 1u);

  // The round closes with the others; a dropped node in U3 would be a bug.
  EXPECT_TRUE(absl::IsInternal(round_->CloseMasking({"DK", "EE", "FI", "SE"})));
}

// With DK dropped before its masked input, unmasking needs DK's mask key
// from the survivors' shares. FI reveals wrong shares of DK's key and of
// SE's seed; the other three shares of each still reconstruct the right
// secrets (checked against DK's public key and SE's commitment), so the sum
// is exact.
TEST_F(SecureRoundTest, ALyingRevealerIsOutvotedByTheOtherShares) {
  ASSERT_NO_FATAL_FAILURE(Advertise());
  ASSERT_NO_FATAL_FAILURE(Share());
  const std::set<std::string> u3 = {"EE", "FI", "LV", "SE"};
  ASSERT_NO_FATAL_FAILURE(MaskInputs(u3));
  ASSERT_TRUE(round_->CloseMasking(u3).ok());
  ASSERT_NO_FATAL_FAILURE(Confirm(u3));
  for (const std::string& node : u3) {
    auto shares = nodes_[node]->Unmask(u3, round_->survivor_signatures());
    ASSERT_TRUE(shares.ok()) << node << ": " << shares.status();
    if (node == "FI") {
      // FI lies about its share of DK's mask key and of SE's seed.
      shares->mask_keys.at("DK").y[0] ^= 1;
      shares->self_mask_seeds.at("SE").y[2] ^= 1;
    }
    ASSERT_TRUE(round_->Reveal(node, *std::move(shares)).ok()) << node;
  }
  auto sum = round_->Unmask(masked_sum_);
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_EQ(*sum, expected_);
}

TEST_F(SecureRoundTest, ShareKeysRefusesAReceiverThatNeverAdvertised) {
  ASSERT_NO_FATAL_FAILURE(Advertise({"SE"}));  // SE is selected but not in U1
  EXPECT_FALSE(round_->InU1("SE"));
  ASSERT_NO_FATAL_FAILURE(ComputeShares());
  std::vector<SealedShares> shares = sealed_["DK"];
  ASSERT_EQ(shares.size(), 3u);
  shares[0].to = "SE";
  absl::Status s = round_->ShareKeys("DK", shares);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(Message(s), HasSubstr("node DK sent shares for SE,"));
  // One extra share for SE on top of the real ones is refused as well.
  shares = sealed_["DK"];
  shares.push_back({"DK", "SE", sealed_["DK"][0].sealed});
  s = round_->ShareKeys("DK", shares);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(Message(s), HasSubstr("node DK sent shares for SE,"));
  // And SE itself cannot share.
  s = round_->ShareKeys("SE", {});
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_THAT(Message(s), HasSubstr("node SE did not advertise keys"));
  EXPECT_TRUE(round_->ShareKeys("DK", sealed_["DK"]).ok());
}

TEST_F(SecureRoundTest, RevealRefusesSharesThatBreakTheRules) {
  const std::set<std::string> u3 = {"DK", "EE", "LV", "SE"};  // FI drops out
  ASSERT_NO_FATAL_FAILURE(Advertise());
  ASSERT_NO_FATAL_FAILURE(Share());
  ASSERT_NO_FATAL_FAILURE(MaskInputs(u3));

  // Before the masked-input phase closes.
  absl::Status s = round_->Reveal("DK", {});
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_THAT(Message(s), HasSubstr("unmasking shares from DK refused"));

  ASSERT_TRUE(round_->CloseMasking(u3).ok());
  ASSERT_NO_FATAL_FAILURE(ComputeReveals(u3));
  const UnmaskShares& real = reveals_["DK"];  // DK's shares are at x = 1
  ASSERT_EQ(real.self_mask_seeds.size(), 4u);
  ASSERT_EQ(real.mask_keys.size(), 1u);

  UnmaskShares missing_seed = real;
  missing_seed.self_mask_seeds.erase("EE");
  s = round_->Reveal("DK", missing_seed);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(Message(s),
              HasSubstr("node DK revealed no share of EE; every share it holds is needed"));

  UnmaskShares missing_key = real;
  missing_key.mask_keys.clear();
  s = round_->Reveal("DK", missing_key);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(Message(s), HasSubstr("node DK revealed no share of "));
  EXPECT_THAT(Message(s), HasSubstr("every share it holds is needed"));

  UnmaskShares wrong_x = real;
  wrong_x.self_mask_seeds["LV"].x = 2;  // EE's x
  s = round_->Reveal("DK", wrong_x);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(Message(s), HasSubstr("node DK revealed a share of LV at x = 2"));
  EXPECT_THAT(Message(s), HasSubstr("its own shares are at x = 1"));

  UnmaskShares wrong_key_x = real;
  wrong_key_x.mask_keys["FI"].x = 5;
  s = round_->Reveal("DK", wrong_key_x);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(Message(s), HasSubstr("node DK revealed a share of FI at x = 5"));

  UnmaskShares seed_of_dropped = real;
  seed_of_dropped.self_mask_seeds["FI"] = real.mask_keys.at("FI");
  s = round_->Reveal("DK", seed_of_dropped);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(Message(s),
              HasSubstr("node DK revealed a self-mask share of FI, which is not in U3"));

  UnmaskShares seed_of_stranger = real;
  seed_of_stranger.self_mask_seeds["XX"] = real.self_mask_seeds.at("EE");
  s = round_->Reveal("DK", seed_of_stranger);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(Message(s), HasSubstr("node DK revealed a self-mask share of XX"));

  // Both secrets of a survivor would give away its update.
  UnmaskShares key_of_survivor = real;
  key_of_survivor.mask_keys["EE"] = real.self_mask_seeds.at("EE");
  s = round_->Reveal("DK", key_of_survivor);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(Message(s), HasSubstr("node DK revealed a mask-key share of EE"));

  // FI sent no masked input, so it confirmed nothing.
  s = round_->Reveal("FI", real);
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_THAT(Message(s), HasSubstr("node FI did not confirm the survivor list"));
  EXPECT_FALSE(round_->Revealed("FI"));

  // None of the refusals counted; the real reveal is accepted, once.
  EXPECT_FALSE(round_->Revealed("DK"));
  EXPECT_EQ(round_->revealed_count(), 0u);
  ASSERT_TRUE(round_->Reveal("DK", real).ok());
  s = round_->Reveal("DK", real);
  EXPECT_TRUE(absl::IsAlreadyExists(s)) << s;
  EXPECT_THAT(Message(s), HasSubstr("node DK already revealed"));
  EXPECT_EQ(round_->revealed_count(), 1u);

  // The refused reveals spoiled nothing: the others complete the sum.
  for (const char* node : {"EE", "LV", "SE"}) {
    ASSERT_TRUE(round_->Reveal(node, reveals_[node]).ok()) << node;
  }
  absl::StatusOr<std::vector<uint32_t>> sum = round_->Unmask(masked_sum_);
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_EQ(*sum, expected_);
}

TEST_F(SecureRoundTest, ConfirmRefusesSignaturesThatBreakTheRules) {
  const std::set<std::string> u3 = {"DK", "EE", "LV", "SE"};  // FI drops out
  ASSERT_NO_FATAL_FAILURE(Advertise());
  ASSERT_NO_FATAL_FAILURE(Share());
  ASSERT_NO_FATAL_FAILURE(MaskInputs(u3));
  auto dk = nodes_["DK"]->ConfirmSurvivors(u3);
  ASSERT_TRUE(dk.ok()) << dk.status();

  // Before the masked-input phase closes.
  absl::Status s = round_->Confirm("DK", *dk);
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_THAT(Message(s), HasSubstr("a survivor-list signature from DK refused"));
  ASSERT_TRUE(round_->CloseMasking(u3).ok());

  // DK's signature offered as EE's, a signature on another list, and one
  // from FI, which sent no masked input.
  s = round_->Confirm("EE", *dk);
  EXPECT_TRUE(absl::IsPermissionDenied(s)) << s;
  EXPECT_THAT(Message(s), HasSubstr("survivor list signed by EE: the signature does not cover"));
  auto lv_other = nodes_["LV"]->ConfirmSurvivors(kAll);  // LV shown all five
  ASSERT_TRUE(lv_other.ok()) << lv_other.status();
  s = round_->Confirm("LV", *lv_other);
  EXPECT_TRUE(absl::IsPermissionDenied(s)) << s;
  s = round_->Confirm("FI", *dk);
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_THAT(Message(s), HasSubstr("node FI sent no masked input"));
  s = round_->Confirm("DK", std::string(513, 's'));
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(Message(s), HasSubstr("at most 512"));

  // The real one counts, once; two confirmations are below t = 3.
  ASSERT_TRUE(round_->Confirm("DK", *dk).ok());
  s = round_->Confirm("DK", *dk);
  EXPECT_TRUE(absl::IsAlreadyExists(s)) << s;
  auto ee = nodes_["EE"]->ConfirmSurvivors(u3);
  ASSERT_TRUE(ee.ok());
  ASSERT_TRUE(round_->Confirm("EE", *ee).ok());
  EXPECT_EQ(round_->confirmed_count(), 2u);
  s = round_->CloseConfirming();
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_THAT(Message(s), HasSubstr("only 2 of 4 nodes confirmed the survivor list"));
  // LV, whose signature the round refused, may not reveal.
  auto lv_reveal = nodes_["DK"]->Unmask(u3, round_->survivor_signatures());
  EXPECT_FALSE(lv_reveal.ok());  // DK itself needs t = 3 signatures
  s = round_->Reveal("LV", {});
  EXPECT_THAT(Message(s), HasSubstr("node LV did not confirm the survivor list"));
}

TEST_F(SecAggMessagesTest, SignedKeysRoundTripAndStillVerify) {
  const SignedAdvertisement& ad = nodes_["EE"]->advertisement();
  v1::SignedKeys proto = secagg::ToProto(ad);
  EXPECT_EQ(proto.node(), "EE");
  EXPECT_EQ(proto.mask_public_key().size(), 32u);
  absl::StatusOr<SignedAdvertisement> back = secagg::FromProto(proto, kTask, kRound);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->keys.node, "EE");
  EXPECT_EQ(back->keys.task, kTask);
  EXPECT_EQ(back->keys.round_id, kRound);
  EXPECT_EQ(back->keys.mask_key, ad.keys.mask_key);
  EXPECT_EQ(back->keys.cipher_key, ad.keys.cipher_key);
  EXPECT_EQ(back->keys.seed_commitment, ad.keys.seed_commitment);
  EXPECT_EQ(back->cert_pem, ad.cert_pem);
  EXPECT_EQ(back->signature, ad.signature);
  EXPECT_TRUE(verifier_->Verify(back->keys, back->cert_pem, back->signature).ok());
  // The task and round come from the receiver, so a replay into round 8 fails.
  absl::StatusOr<SignedAdvertisement> replayed = secagg::FromProto(proto, kTask, kRound + 1);
  ASSERT_TRUE(replayed.ok()) << replayed.status();
  EXPECT_FALSE(verifier_->Verify(replayed->keys, replayed->cert_pem, replayed->signature).ok());
}

TEST_F(SecAggMessagesTest, SignedKeysRefuseAnOversizedCertificateOrSignature) {
  v1::SignedKeys proto = secagg::ToProto(nodes_["EE"]->advertisement());

  v1::SignedKeys cert = proto;
  cert.set_certificate_pem(std::string(16384, 'c'));
  EXPECT_TRUE(secagg::FromProto(cert, kTask, kRound).ok());  // at the bound
  cert.set_certificate_pem(std::string(16385, 'c'));
  absl::Status s = secagg::FromProto(cert, kTask, kRound).status();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(Message(s), HasSubstr("keys of EE: certificate_pem has 16385 bytes, at most 16384"));

  v1::SignedKeys signature = proto;
  signature.set_signature(std::string(512, 's'));
  EXPECT_TRUE(secagg::FromProto(signature, kTask, kRound).ok());  // at the bound
  signature.set_signature(std::string(513, 's'));
  s = secagg::FromProto(signature, kTask, kRound).status();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(Message(s), HasSubstr("keys of EE: signature has 513 bytes, at most 512"));
}

TEST_F(SecAggMessagesTest, SignedKeysRefuseAPublicKeyOfTheWrongLength) {
  v1::SignedKeys proto = secagg::ToProto(nodes_["LV"]->advertisement());

  v1::SignedKeys short_mask = proto;
  short_mask.set_mask_public_key(proto.mask_public_key().substr(0, 31));
  absl::Status s = secagg::FromProto(short_mask, kTask, kRound).status();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(Message(s), HasSubstr("keys of LV: mask_public_key has 31 bytes, expected 32"));

  v1::SignedKeys long_cipher = proto;
  long_cipher.set_cipher_public_key(proto.cipher_public_key() + "x");
  s = secagg::FromProto(long_cipher, kTask, kRound).status();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(Message(s), HasSubstr("keys of LV: cipher_public_key has 33 bytes, expected 32"));

  v1::SignedKeys no_commitment = proto;
  no_commitment.clear_seed_commitment();
  s = secagg::FromProto(no_commitment, kTask, kRound).status();
  EXPECT_THAT(Message(s), HasSubstr("keys of LV: seed_commitment has 0 bytes, expected 32"));

  v1::SignedKeys no_cipher = proto;
  no_cipher.clear_cipher_public_key();
  s = secagg::FromProto(no_cipher, kTask, kRound).status();
  EXPECT_THAT(Message(s), HasSubstr("cipher_public_key has 0 bytes"));
}

TEST_F(SecAggMessagesTest, UnmaskRequestRoundTrip) {
  ASSERT_NO_FATAL_FAILURE(RunToUnmasking({"DK", "EE", "LV", "SE"}));
  v1::UnmaskRequest request = RealUnmaskRequest("EE");
  EXPECT_EQ(request.self_mask_seeds_size(), 4);
  EXPECT_EQ(request.mask_keys_size(), 1);
  absl::StatusOr<UnmaskShares> back = secagg::FromProto(request);
  ASSERT_TRUE(back.ok()) << back.status();
  const UnmaskShares& real = reveals_["EE"];
  ASSERT_EQ(back->self_mask_seeds.size(), real.self_mask_seeds.size());
  for (const auto& [owner, share] : real.self_mask_seeds) {
    ASSERT_TRUE(back->self_mask_seeds.contains(owner)) << owner;
    EXPECT_EQ(back->self_mask_seeds.at(owner).x, share.x);
    EXPECT_EQ(back->self_mask_seeds.at(owner).y, share.y);
  }
  ASSERT_TRUE(back->mask_keys.contains("FI"));
  EXPECT_EQ(back->mask_keys.at("FI").x, 2u);
  EXPECT_EQ(back->mask_keys.at("FI").y, real.mask_keys.at("FI").y);
  // What came back through the message is accepted by the round.
  EXPECT_TRUE(round_->Reveal("EE", *back).ok());
}

TEST_F(SecAggMessagesTest, UnmaskRequestRefusesMalformedShares) {
  ASSERT_NO_FATAL_FAILURE(RunToUnmasking({"DK", "EE", "LV", "SE"}));
  const v1::UnmaskRequest real = RealUnmaskRequest("DK");
  ASSERT_EQ(real.self_mask_seeds(0).y_size(), 5);  // LimbCount(32)
  ASSERT_EQ(real.self_mask_seeds(0).owner(), "DK");
  ASSERT_EQ(real.mask_keys(0).owner(), "FI");

  v1::UnmaskRequest too_few_y = real;
  too_few_y.mutable_self_mask_seeds(1)->mutable_y()->RemoveLast();
  absl::Status s = secagg::FromProto(too_few_y).status();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(Message(s), HasSubstr("self_mask_seeds: the share of EE has 4 y values, expected 5"));

  v1::UnmaskRequest too_many_y = real;
  too_many_y.mutable_mask_keys(0)->add_y(1);
  s = secagg::FromProto(too_many_y).status();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(Message(s), HasSubstr("mask_keys: the share of FI has 6 y values, expected 5"));

  v1::UnmaskRequest zero_x = real;
  zero_x.mutable_mask_keys(0)->set_x(0);
  s = secagg::FromProto(zero_x).status();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(Message(s), HasSubstr("mask_keys: every share needs an owner and x > 0"));

  v1::UnmaskRequest max_y = real;
  max_y.mutable_self_mask_seeds(2)->set_y(3, secagg::field::kPrime - 1);
  EXPECT_TRUE(secagg::FromProto(max_y).ok());  // the largest field element
  v1::UnmaskRequest outside = real;
  outside.mutable_self_mask_seeds(2)->set_y(3, secagg::field::kPrime);
  s = secagg::FromProto(outside).status();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(Message(s),
              HasSubstr("self_mask_seeds: the share of LV has a y value outside GF(2^61 - 1)"));
  outside = real;
  outside.mutable_mask_keys(0)->set_y(0, ~uint64_t{0});
  s = secagg::FromProto(outside).status();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(Message(s), HasSubstr("mask_keys: the share of FI has a y value outside"));

  v1::UnmaskRequest duplicate = real;
  *duplicate.add_self_mask_seeds() = real.self_mask_seeds(1);
  s = secagg::FromProto(duplicate).status();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(Message(s), HasSubstr("self_mask_seeds: two shares of EE"));
  duplicate = real;
  *duplicate.add_mask_keys() = real.mask_keys(0);
  s = secagg::FromProto(duplicate).status();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(Message(s), HasSubstr("mask_keys: two shares of FI"));
}

// Only a selected node may advertise, only its own keys, and only once; a
// refusal leaves nothing recorded.
TEST_F(SecureRoundTest, AdvertiseRefusesUnselectedMislabelledAndRepeatedKeys) {
  SecureRound narrow(SecureRound::Params{kTask, kRound, {"DK", "EE", "FI"}, 2}, *verifier_);
  absl::Status s = narrow.Advertise("SE", nodes_["SE"]->advertisement());
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_EQ(Message(s), "node SE is not selected for round 7");
  EXPECT_FALSE(narrow.Advertised("SE"));

  s = narrow.Advertise("DK", nodes_["EE"]->advertisement());  // EE's signed keys, sent by DK
  EXPECT_TRUE(absl::IsPermissionDenied(s)) << s;
  EXPECT_EQ(Message(s), "node DK sent keys labelled for EE");
  EXPECT_FALSE(narrow.Advertised("DK"));

  ASSERT_TRUE(narrow.Advertise("DK", nodes_["DK"]->advertisement()).ok());
  s = narrow.Advertise("DK", nodes_["DK"]->advertisement());
  EXPECT_TRUE(absl::IsAlreadyExists(s)) << s;
  EXPECT_EQ(Message(s), "node DK already advertised keys for round 7");
  EXPECT_EQ(narrow.advertised_count(), 1u);
}

}  // namespace
}  // namespace fedcustoms::coordinator
