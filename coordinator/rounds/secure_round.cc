#include "coordinator/rounds/secure_round.h"

#include <openssl/crypto.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log/logging.h"
#include "common/secagg/fixed_point.h"
#include "common/secagg/secagg_messages.h"
#include "common/secagg/shamir.h"
#include "common/secagg/share_cipher.h"

namespace fedcustoms::coordinator {
namespace {

// A sealed share message is 124 bytes (nonce, two shares of 32-byte secrets,
// tag); anything past this bound is refused.
constexpr size_t kMaxSealedBytes = 1024;
// RSA-4096 signatures are 512 bytes; ECDSA and Ed25519 are far smaller.
constexpr size_t kMaxSignatureBytes = 512;

const char* StageName(int stage) {
  static const char* const kNames[] = {"advertising keys", "sharing keys",
                                       "collecting masked input", "confirming survivors",
                                       "unmasking"};
  return kNames[stage];
}

// The rules `node`'s shares must follow before any signature is checked:
// one message from it to each other node of `u1`, within the size bounds.
absl::Status CheckSharesStructure(const std::string& node, const std::set<std::string>& u1,
                                  const std::vector<secagg::SealedShares>& shares) {
  std::set<std::string> receivers;
  for (const secagg::SealedShares& s : shares) {
    if (s.from != node) {
      return absl::PermissionDeniedError(
          absl::StrCat("node ", node, " sent shares labelled as from ", s.from));
    }
    // Two shares of 32-byte secrets sealed with AES-GCM are 124 bytes: a
    // larger blob would only make the coordinator store and relay junk.
    if (s.sealed.size() > kMaxSealedBytes) {
      return absl::InvalidArgumentError(absl::StrCat("node ", node, " sent a sealed share for ",
                                                     s.to, " of ", s.sealed.size(),
                                                     " bytes; at most ", kMaxSealedBytes));
    }
    if (s.to == node || !u1.contains(s.to) || !receivers.insert(s.to).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("node ", node, " sent shares for ", s.to,
                       ", which is itself, not in the round or addressed twice"));
    }
    if (s.key_commitment.size() != 32 || s.signature.size() > kMaxSignatureBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("node ", node, " sent a share for ", s.to, " whose key commitment is ",
                       s.key_commitment.size(), " bytes (expected 32) or whose signature is ",
                       s.signature.size(), " bytes (at most ", kMaxSignatureBytes, ")"));
    }
  }
  if (receivers.size() + 1 != u1.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "node ", node, " sent shares for ", receivers.size(), " nodes; expected ", u1.size() - 1));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status SecureRound::Expect(Stage stage, const std::string& node, const char* what) const {
  if (stage_ != stage) {
    return absl::FailedPreconditionError(absl::StrCat(
        what, " from ", node, " refused: round ", params_.round_id, " of task ", params_.task,
        " is ", StageName(static_cast<int>(stage_)), ", not ", StageName(static_cast<int>(stage))));
  }
  return absl::OkStatus();
}

absl::Status SecureRound::Advertise(const std::string& node,
                                    secagg::SignedAdvertisement advertisement) {
  if (absl::Status s = Expect(Stage::kAdvertising, node, "keys"); !s.ok()) return s;
  if (!params_.selected.contains(node)) {
    return absl::FailedPreconditionError(
        absl::StrCat("node ", node, " is not selected for round ", params_.round_id));
  }
  if (advertised_.contains(node)) {
    return absl::AlreadyExistsError(
        absl::StrCat("node ", node, " already advertised keys for round ", params_.round_id));
  }
  if (advertisement.keys.node != node || advertisement.keys.task != params_.task ||
      advertisement.keys.round_id != params_.round_id) {
    return absl::PermissionDeniedError(
        absl::StrCat("node ", node, " sent keys labelled for ", advertisement.keys.node));
  }
  advertisement.keys.terms = params_.terms;  // what the node was told
  crypto::X509Ptr certificate;
  if (absl::Status s = verifier_.Verify(advertisement.keys, advertisement.cert_pem,
                                        advertisement.signature, &certificate);
      !s.ok()) {
    return s;
  }
  certificates_[node] = std::move(certificate);
  advertised_.emplace(node, std::move(advertisement));
  return absl::OkStatus();
}

absl::Status SecureRound::CloseAdvertising() {
  stage_ = Stage::kSharing;
  for (auto& [node, advertisement] : advertised_) {
    u1_nodes_.insert(node);
    u1_.push_back(std::move(advertisement));
  }
  advertised_.clear();
  std::vector<secagg::AdvertisedKeys> by_node;  // u1_ is in node order
  for (const secagg::SignedAdvertisement& a : u1_) by_node.push_back(a.keys);
  u1_digest_ = secagg::AdvertisedKeysDigest(by_node);
  if (u1_.size() < params_.threshold) {
    return absl::FailedPreconditionError(absl::StrCat(
        "only ", u1_.size(), " of ", params_.selected.size(),
        " selected nodes advertised keys by the deadline; the threshold is ", params_.threshold));
  }
  if (u1_.size() < params_.min_nodes) {
    return absl::FailedPreconditionError(absl::StrCat(
        "only ", u1_.size(), " selected nodes advertised keys; min_nodes is ", params_.min_nodes));
  }
  return absl::OkStatus();
}

absl::Status SecureRound::ShareKeys(const std::string& node,
                                    std::vector<secagg::SealedShares> shares) {
  return AcceptShares(node, std::move(shares), nullptr);
}

absl::Status SecureRound::ShareKeys(const std::string& node,
                                    std::vector<secagg::SealedShares> shares,
                                    const SharesCheck& check) {
  return AcceptShares(node, std::move(shares), &check);
}

absl::StatusOr<SecureRound::SharesCheck> SecureRound::SharesCheckFor(
    const std::string& node) const {
  auto cert = certificates_.find(node);
  if (stage_ != Stage::kSharing || !u1_nodes_.contains(node) || cert == certificates_.end()) {
    return absl::NotFoundError(
        absl::StrCat("no shares from ", node, " are taken in round ", params_.round_id, " now"));
  }
  if (shared_.contains(node)) {
    return absl::AlreadyExistsError(
        absl::StrCat("node ", node, " already sent its shares for round ", params_.round_id));
  }
  X509_up_ref(cert->second.get());
  return SharesCheck{params_.task, params_.round_id,
                     node,         u1_nodes_,
                     u1_digest_,   std::shared_ptr<X509>(cert->second.get(), X509_free),
                     &verifier_,   {}};
}

void SecureRound::SharesCheck::Verify(const std::vector<secagg::SealedShares>& shares) {
  verified.assign(shares.size(), false);
  // The structure first, as AcceptShares checks it: a malformed request gets
  // its refusal from AcceptShares without a single signature checked here.
  if (!CheckSharesStructure(sender, u1, shares).ok()) return;
  for (size_t i = 0; i < shares.size(); ++i) {
    const secagg::SealedShares& s = shares[i];
    verified[i] = verifier
                      ->VerifySealedShare(task, round_id, s.from, s.to, u1_digest, s.sealed,
                                          s.key_commitment, certificate.get(), s.signature)
                      .ok();
    if (!verified[i]) return;  // AcceptShares refuses at this one
  }
}

absl::Status SecureRound::AcceptShares(const std::string& node,
                                       std::vector<secagg::SealedShares> shares,
                                       const SharesCheck* check) {
  if (absl::Status s = Expect(Stage::kSharing, node, "shares"); !s.ok()) return s;
  const bool check_applies = check != nullptr && check->round_id == params_.round_id &&
                             check->sender == node && check->u1_digest == u1_digest_ &&
                             check->verified.size() == shares.size();
  if (!u1_nodes_.contains(node)) {
    return absl::FailedPreconditionError(
        absl::StrCat("node ", node, " did not advertise keys for round ", params_.round_id));
  }
  if (shared_.contains(node)) {
    return absl::AlreadyExistsError(
        absl::StrCat("node ", node, " already sent its shares for round ", params_.round_id));
  }
  if (absl::Status s = CheckSharesStructure(node, u1_nodes_, shares); !s.ok()) return s;
  // The signatures last, once the structure holds (a malformed request costs
  // no verification here), and only those the check outside the lock did
  // not pass. Checked at all so that a receiver finding a bad signature
  // knows the coordinator altered the message, and a signed message is
  // evidence.
  for (size_t i = 0; i < shares.size(); ++i) {
    if (check_applies && check->verified[i]) continue;
    const secagg::SealedShares& s = shares[i];
    if (absl::Status v = verifier_.VerifySealedShare(params_.task, params_.round_id, s.from, s.to,
                                                     u1_digest_, s.sealed, s.key_commitment,
                                                     certificates_.at(node).get(), s.signature);
        !v.ok()) {
      return v;
    }
  }
  shared_.emplace(node, std::move(shares));
  return absl::OkStatus();
}

absl::Status SecureRound::CloseSharing() {
  stage_ = Stage::kMasking;
  for (const auto& [node, shares] : shared_) u2_.insert(node);
  if (u2_.size() < params_.threshold) {
    return absl::FailedPreconditionError(absl::StrCat("only ", u2_.size(), " of ", u1_.size(),
                                                      " nodes sent their shares by the deadline; "
                                                      "the threshold is ",
                                                      params_.threshold));
  }
  return absl::OkStatus();
}

absl::StatusOr<SecureRound::Verdict> SecureRound::JudgeComplaint(
    const std::string& complainant, const secagg::ShareComplaint& complaint) {
  if (absl::Status s = Expect(Stage::kMasking, complainant, "a share complaint"); !s.ok()) return s;
  const secagg::SealedShares& share = complaint.share;
  const std::string& sender = share.from;
  if (!u2_.contains(complainant) || share.to != complainant || !u2_.contains(sender)) {
    return absl::PermissionDeniedError(
        absl::StrCat("node ", complainant, " complains about a share from ", sender, " to ",
                     share.to, ", which was not relayed to it in round ", params_.round_id));
  }
  // The evidence must be the message relayed, as its sender signed it.
  const std::vector<secagg::SealedShares>& sent = shared_.at(sender);
  auto relayed = std::find_if(sent.begin(), sent.end(),
                              [&](const secagg::SealedShares& s) { return s.to == complainant; });
  if (relayed == sent.end() || relayed->sealed != share.sealed ||
      relayed->key_commitment != share.key_commitment || relayed->signature != share.signature) {
    return absl::PermissionDeniedError(absl::StrCat("node ", complainant,
                                                    " complains about a share from ", sender,
                                                    " other than the one relayed to it"));
  }
  Verdict verdict;
  verdict.sender = sender;
  // Either way the complainant holds no share from the sender: it may leave
  // that one out when it reveals.
  complaints_.insert({complainant, sender});
  if (complaint.share_key.empty()) {
    // The receiver says the commitment does not match the key it derives:
    // only its private key could show it, so nobody is dropped on its word.
    verdict.outcome = Verdict::kUnproven;
    verdict.reason = absl::StrCat(complainant, " reports that ", sender,
                                  " committed to a share key it cannot derive (unproven)");
    return verdict;
  }
  secagg::SharedKey key{};
  std::copy(complaint.share_key.begin(), complaint.share_key.end(), key.begin());
  if (secagg::CommitToShareKey(key) != share.key_commitment) {
    OPENSSL_cleanse(key.data(), key.size());
    verdict.outcome = Verdict::kFalse;
    verdict.reason = absl::StrCat(complainant, " revealed a key for the share from ", sender,
                                  " that is not the one ", sender, " committed to");
    dropped_.emplace(complainant, verdict.reason);
    return verdict;
  }
  absl::StatusOr<std::pair<secagg::ShamirShare, secagg::ShamirShare>> pair =
      secagg::OpenSharePair(params_.task, params_.round_id, u1_digest_, share, key,
                            secagg::ShareIndex(u1_nodes_, complainant));
  OPENSSL_cleanse(key.data(), key.size());
  if (pair.ok()) {
    // It opens and is a share pair for the complainant: the complaint is
    // false. The pair is wiped unread.
    for (secagg::ShamirShare* share : {&pair->first, &pair->second}) {
      OPENSSL_cleanse(share->y.data(), share->y.size() * sizeof(uint64_t));
    }
    verdict.outcome = Verdict::kFalse;
    verdict.reason = absl::StrCat(complainant, " complains about the share from ", sender,
                                  ", which opens and is well formed");
    dropped_.emplace(complainant, verdict.reason);
    return verdict;
  }
  verdict.outcome = Verdict::kProven;
  verdict.reason = absl::StrCat(sender, " sent ", complainant, " a bad share (",
                                pair.status().message(), "): proven by its signature");
  dropped_.emplace(sender, verdict.reason);
  return verdict;
}

std::vector<secagg::SealedShares> SecureRound::SharesFor(const std::string& node) const {
  std::vector<secagg::SealedShares> out;
  for (const auto& [sender, shares] : shared_) {
    for (const secagg::SealedShares& s : shares) {
      if (s.to == node) out.push_back(s);
    }
  }
  return out;
}

absl::Status SecureRound::CloseMasking(const std::set<std::string>& u3) {
  stage_ = Stage::kConfirming;
  shared_.clear();  // relayed; no longer needed
  for (const std::string& node : u3) {
    if (!u2_.contains(node)) {
      return absl::InternalError(absl::StrCat("masked input from ", node, ", which is not in U2"));
    }
    if (dropped_.contains(node)) {
      return absl::InternalError(
          absl::StrCat("masked input from ", node, ", which was dropped: ", dropped_.at(node)));
    }
  }
  u3_ = u3;
  if (u3_.size() < params_.threshold) {
    return absl::FailedPreconditionError(absl::StrCat(
        "only ", u3_.size(), " of ", u2_.size(),
        " nodes sent their masked input by the deadline; the threshold is ", params_.threshold));
  }
  return absl::OkStatus();
}

absl::Status SecureRound::Confirm(const std::string& node, std::string signature) {
  if (absl::Status s = Expect(Stage::kConfirming, node, "a survivor-list signature"); !s.ok()) {
    return s;
  }
  if (!u3_.contains(node)) {
    return absl::FailedPreconditionError(
        absl::StrCat("node ", node, " sent no masked input in round ", params_.round_id,
                     " and cannot confirm the survivors"));
  }
  if (confirmed_.contains(node)) {
    return absl::AlreadyExistsError(absl::StrCat(
        "node ", node, " already confirmed the survivors of round ", params_.round_id));
  }
  if (signature.size() > kMaxSignatureBytes) {
    return absl::InvalidArgumentError(absl::StrCat("node ", node, " sent a signature of ",
                                                   signature.size(), " bytes; at most ",
                                                   kMaxSignatureBytes));
  }
  auto advertised = std::find_if(u1_.begin(), u1_.end(), [&](const secagg::SignedAdvertisement& a) {
    return a.keys.node == node;
  });
  if (advertised == u1_.end()) {
    return absl::InternalError(absl::StrCat("node ", node, " is in U3 but not in U1"));
  }
  if (absl::Status s = verifier_.VerifySurvivorList(params_.task, params_.round_id, node,
                                                    {u3_, params_.terms, u1_digest_},
                                                    advertised->cert_pem, signature);
      !s.ok()) {
    return s;
  }
  confirmed_.emplace(node, std::move(signature));
  return absl::OkStatus();
}

absl::Status SecureRound::CloseConfirming() {
  stage_ = Stage::kUnmasking;
  if (confirmed_.size() < params_.threshold) {
    return absl::FailedPreconditionError(
        absl::StrCat("only ", confirmed_.size(), " of ", u3_.size(),
                     " nodes confirmed the survivor list by the deadline; the threshold is ",
                     params_.threshold));
  }
  return absl::OkStatus();
}

absl::Status SecureRound::Reveal(const std::string& node, secagg::UnmaskShares shares) {
  if (absl::Status s = Expect(Stage::kUnmasking, node, "unmasking shares"); !s.ok()) return s;
  if (!confirmed_.contains(node)) {
    return absl::FailedPreconditionError(
        absl::StrCat("node ", node, " did not confirm the survivor list of round ",
                     params_.round_id, " and cannot unmask"));
  }
  if (reveals_.contains(node)) {
    return absl::AlreadyExistsError(
        absl::StrCat("node ", node, " already revealed its shares for round ", params_.round_id));
  }
  // Exactly the secrets the protocol asks for: self-mask seeds of U3, mask
  // keys of U2 \ U3. UnmaskSum checks again; refusing here keeps a bad
  // response from spoiling the set used for reconstruction.
  for (const auto& [owner, share] : shares.self_mask_seeds) {
    if (!u3_.contains(owner)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "node ", node, " revealed a self-mask share of ", owner, ", which is not in U3"));
    }
  }
  for (const auto& [owner, share] : shares.mask_keys) {
    if (!u2_.contains(owner) || u3_.contains(owner)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "node ", node, " revealed a mask-key share of ", owner, ", which did not drop out"));
    }
  }
  // Complete, and all at the revealer's own x (its 1-based position in the
  // sorted U1): a share at another x would break the reconstruction of the
  // honest nodes' shares, and a missing one would leave a mask in the sum.
  // Missing are exactly the shares of the senders this node complained
  // about (it never had them).
  for (const std::string& owner : u2_) {
    const bool expected = !complaints_.contains({node, owner});
    const bool in_u3 = u3_.contains(owner);
    const bool present =
        in_u3 ? shares.self_mask_seeds.contains(owner) : shares.mask_keys.contains(owner);
    if (present != expected) {
      return absl::InvalidArgumentError(absl::StrCat(
          "node ", node, present ? " revealed a share of " : " revealed no share of ", owner,
          expected ? "; every share it holds is needed"
                   : ", whose share it complained it could not use"));
    }
  }
  const uint32_t x =
      static_cast<uint32_t>(std::distance(u1_nodes_.begin(), u1_nodes_.find(node))) + 1;
  for (const auto* revealed : {&shares.self_mask_seeds, &shares.mask_keys}) {
    for (const auto& [owner, share] : *revealed) {
      if (share.x != x) {
        return absl::InvalidArgumentError(absl::StrCat("node ", node, " revealed a share of ",
                                                       owner, " at x = ", share.x,
                                                       "; its own shares are at x = ", x));
      }
    }
  }
  reveals_.emplace(node, std::move(shares));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<uint32_t>> SecureRound::Unmask(std::vector<uint32_t> masked_sum) const {
  if (stage_ != Stage::kUnmasking) {
    return absl::FailedPreconditionError("unmasking before the masked input phase closed");
  }
  std::map<std::string, secagg::AdvertisedKeys> keys;
  for (const secagg::SignedAdvertisement& a : u1_) keys.emplace(a.keys.node, a.keys);
  std::set<std::string> inconsistent;
  absl::StatusOr<std::vector<uint32_t>> sum =
      secagg::UnmaskSum(params_.task, params_.round_id, params_.threshold, keys, u2_, u3_,
                        std::move(masked_sum), reveals_, &inconsistent);
  if (!inconsistent.empty()) {
    // Outvoted by the others; each of these lied, or was dealt a bad share.
    spdlog::warn("task {}: round {}: shares revealed by {} did not fit the other shares",
                 params_.task, params_.round_id, absl::StrJoin(inconsistent, ", "));
  }
  return sum;
}

absl::Status SecureRound::Handle(const std::string& node, const v1::AdvertiseKeysRequest& request) {
  absl::StatusOr<secagg::SignedAdvertisement> advertisement =
      secagg::FromProto(request.keys(), params_.task, params_.round_id);
  if (!advertisement.ok()) return advertisement.status();
  return Advertise(node, *std::move(advertisement));
}

absl::Status SecureRound::Handle(const std::string& node,
                                 const v1::ConfirmSurvivorsRequest& request) {
  return Confirm(node, request.signature());
}

absl::Status SecureRound::Handle(const std::string& node, const v1::UnmaskRequest& request) {
  absl::StatusOr<secagg::UnmaskShares> shares = secagg::FromProto(request);
  if (!shares.ok()) return shares.status();
  return Reveal(node, *std::move(shares));
}

absl::StatusOr<v1::SecureRound> SecureRoundParameters(const v1::SecureAggregationConfig& config,
                                                      uint32_t n, uint64_t total_weight) {
  const uint32_t threshold =
      std::min<uint32_t>(n, static_cast<uint32_t>(std::floor(config.threshold_fraction() * n)) + 1);
  if (absl::Status s = secagg::CheckThreshold(threshold, n); !s.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "secure aggregation needs at least 2 nodes with threshold > n/2: ", s.message()));
  }
  if (total_weight == 0 || total_weight > UINT32_MAX) {
    return absl::FailedPreconditionError(
        absl::StrCat("the selected nodes declared ", total_weight,
                     " training rows; secure aggregation needs 1..2^32-1"));
  }
  secagg::FixedPointCodec::Options codec{config.clip(), 0, 1.0, n};
  codec.scale = secagg::FixedPointCodec::LargestSafeScale(codec);
  if (codec.scale == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no fixed-point scale fits clip ", config.clip(), " and ", n, " nodes in 32 bits"));
  }
  v1::SecureRound params;
  params.set_threshold(threshold);
  params.set_clip(codec.clip);
  params.set_scale(codec.scale);
  params.set_max_nodes(n);
  params.set_total_weight(total_weight);
  return params;
}

}  // namespace fedcustoms::coordinator
