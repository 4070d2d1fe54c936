#include "coordinator/rounds/secure_round.h"

#include <algorithm>
#include <cmath>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "common/secagg/fixed_point.h"
#include "common/secagg/secagg_messages.h"
#include "common/secagg/shamir.h"

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
  if (absl::Status s =
          verifier_.Verify(advertisement.keys, advertisement.cert_pem, advertisement.signature);
      !s.ok()) {
    return s;
  }
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
  if (absl::Status s = Expect(Stage::kSharing, node, "shares"); !s.ok()) return s;
  if (!u1_nodes_.contains(node)) {
    return absl::FailedPreconditionError(
        absl::StrCat("node ", node, " did not advertise keys for round ", params_.round_id));
  }
  if (shared_.contains(node)) {
    return absl::AlreadyExistsError(
        absl::StrCat("node ", node, " already sent its shares for round ", params_.round_id));
  }
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
    if (s.to == node || !u1_nodes_.contains(s.to) || !receivers.insert(s.to).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("node ", node, " sent shares for ", s.to,
                       ", which is itself, not in the round or addressed twice"));
    }
  }
  if (receivers.size() + 1 != u1_nodes_.size()) {
    return absl::InvalidArgumentError(absl::StrCat("node ", node, " sent shares for ",
                                                   receivers.size(), " nodes; expected ",
                                                   u1_nodes_.size() - 1));
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
  if (shares.self_mask_seeds.size() != u3_.size() ||
      shares.mask_keys.size() != u2_.size() - u3_.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("node ", node, " revealed ", shares.self_mask_seeds.size(), " self-mask and ",
                     shares.mask_keys.size(), " mask-key shares; expected ", u3_.size(), " and ",
                     u2_.size() - u3_.size()));
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
  return secagg::UnmaskSum(params_.task, params_.round_id, params_.threshold, keys, u2_, u3_,
                           std::move(masked_sum), reveals_);
}

absl::Status SecureRound::Handle(const std::string& node, const v1::AdvertiseKeysRequest& request) {
  absl::StatusOr<secagg::SignedAdvertisement> advertisement =
      secagg::FromProto(request.keys(), params_.task, params_.round_id);
  if (!advertisement.ok()) return advertisement.status();
  return Advertise(node, *std::move(advertisement));
}

absl::Status SecureRound::Handle(const std::string& node, const v1::ShareKeysRequest& request) {
  std::vector<secagg::SealedShares> shares;
  shares.reserve(request.shares_size());
  for (const v1::SealedShare& share : request.shares()) shares.push_back(secagg::FromProto(share));
  return ShareKeys(node, std::move(shares));
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
