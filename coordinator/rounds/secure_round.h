#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/secagg/key_advertisement.h"
#include "common/secagg/secagg_round.h"
#include "fedcustoms/v1/config.pb.h"
#include "fedcustoms/v1/node_service.pb.h"

namespace fedcustoms::coordinator {

// The coordinator's part of one secure-aggregation round (see
// common/secagg/secagg_round.h for the protocol): it collects and relays
// signed keys and sealed shares, records who reached each phase (U1 ⊇ U2 ⊇
// U3 ⊇ U4), collects the signatures on U3 and the unmasking reveals, and
// finally removes the masks from the masked sum. It holds public keys, sealed shares it cannot
// open, and shares of secrets it may reconstruct — never a node's update. Every refusal names the
// node and the rule. Not thread-safe: TaskRunner serializes the calls.
class SecureRound {
 public:
  struct Params {
    std::string task;
    uint64_t round_id = 0;
    std::set<std::string> selected;
    uint32_t threshold = 0;  // t, already checked against |selected|
    // The task's min_nodes: advertising closes with at least this many (and
    // t) or aborts. TaskRunner always sets it; 0 leaves t as the only floor.
    uint32_t min_nodes = 0;
    // The public terms every assignment announces; the nodes sign them with
    // the survivor list.
    secagg::RoundTerms terms;
  };

  // `verifier` must outlive the round.
  SecureRound(Params params, const secagg::KeyAdvertisementVerifier& verifier)
      : params_(std::move(params)), verifier_(verifier) {}

  const Params& params() const { return params_; }

  // Phase 1. The advertisement is verified here too (nodes verify again), so
  // one node's bad signature is refused at once instead of making every
  // honest node refuse the whole round.
  absl::Status Advertise(const std::string& node, secagg::SignedAdvertisement advertisement);
  // Each step also from the node's request (parsed for this task and round;
  // InvalidArgument naming the field when it does not parse).
  absl::Status Handle(const std::string& node, const v1::AdvertiseKeysRequest& request);
  // Ends phase 1; FailedPrecondition if fewer than t (or min_nodes) nodes
  // advertised.
  absl::Status CloseAdvertising();
  const std::vector<secagg::SignedAdvertisement>& advertisements() const { return u1_; }
  // AdvertisedKeysDigest of U1 (after CloseAdvertising): what the senders
  // of sealed shares and the survivors sign.
  const std::string& u1_digest() const { return u1_digest_; }

  // Phase 2: exactly one sealed share pair from `node` to each other node of
  // U1, each signed by `node`.
  absl::Status ShareKeys(const std::string& node, std::vector<secagg::SealedShares> shares);
  // The signature check of phase 2, apart so that TaskRunner runs it without
  // its lock (one Ed25519 verification per receiver: a node that keeps
  // sending n-1 shares with the last one bad would otherwise hold every
  // other call of the round up). SharesCheckFor copies what the check needs
  // under the lock (NotFound when sharing is not open or `node` is not in
  // U1, AlreadyExists once its shares were taken); Verify runs anywhere;
  // ShareKeys then re-verifies only the messages that Verify did not pass,
  // for this round's U1 digest and sender.
  struct SharesCheck {
    std::string task;
    uint64_t round_id = 0;
    std::string sender;
    std::set<std::string> u1;  // the sender included
    std::string u1_digest;
    std::shared_ptr<X509> certificate;
    const secagg::KeyAdvertisementVerifier* verifier = nullptr;
    // After Verify: which of the shares (by position) carry a good signature.
    // Verify checks signatures only for a well-formed set (one message to
    // each other node of U1, within the size bounds) and stops at the first
    // bad one, so a request of junk costs at most one verification.
    std::vector<bool> verified;

    void Verify(const std::vector<secagg::SealedShares>& shares);
  };
  absl::StatusOr<SharesCheck> SharesCheckFor(const std::string& node) const;
  absl::Status ShareKeys(const std::string& node, std::vector<secagg::SealedShares> shares,
                         const SharesCheck& check);
  // Ends phase 2; FailedPrecondition if fewer than t nodes shared.
  absl::Status CloseSharing();
  // The shares addressed to `node` (all from U2).
  std::vector<secagg::SealedShares> SharesFor(const std::string& node) const;

  // Phase 3: a node of U2 reports that the share relayed to it from another
  // cannot be used (ShareComplaint). The evidence is checked here: the
  // message must be the one relayed, signed by its sender. With the key the
  // sender committed to, the coordinator opens that one message itself:
  // when it does not open or is not a share pair for the complainant, the
  // sender is proven to have cheated and is dropped (dropped()); when it is
  // fine, the complaint is false. Without a key (the complainant says the
  // commitment does not match what it derives) nothing can be proven and
  // nobody is dropped. PermissionDenied for evidence that is not the relayed
  // message.
  struct Verdict {
    enum Outcome { kProven, kUnproven, kFalse } outcome = kUnproven;
    std::string sender;
    std::string reason;  // for logs and the ledger; names both nodes
  };
  absl::StatusOr<Verdict> JudgeComplaint(const std::string& complainant,
                                         const secagg::ShareComplaint& complaint);
  // Senders proven to have sent a bad share, with the reason: their masked
  // input must not be in U3.
  const std::map<std::string, std::string>& dropped() const { return dropped_; }

  // Ends phase 3 with the nodes whose masked input was added to the sum;
  // FailedPrecondition if fewer than t; Internal for a node outside U2 or a
  // dropped one (the caller only keeps masked input from U2 and takes the
  // dropped ones' out, so that is a bug).
  absl::Status CloseMasking(const std::set<std::string>& u3);
  const std::set<std::string>& u2() const { return u2_; }
  const std::set<std::string>& u3() const { return u3_; }

  // Phase 4 (consistency): a node of U3 signs U3, once; the signature must
  // verify with the certificate the node advertised keys with, so one bad
  // signature is refused here rather than making honest nodes refuse.
  absl::Status Confirm(const std::string& node, std::string signature);
  absl::Status Handle(const std::string& node, const v1::ConfirmSurvivorsRequest& request);
  // Ends phase 4; FailedPrecondition if fewer than t nodes confirmed.
  absl::Status CloseConfirming();
  // The signatures on U3, by signer (U4), relayed with every UNMASK step.
  const std::map<std::string, std::string>& survivor_signatures() const { return confirmed_; }

  // Phase 5: a node of U4 reveals its shares, once.
  absl::Status Reveal(const std::string& node, secagg::UnmaskShares shares);
  absl::Status Handle(const std::string& node, const v1::UnmaskRequest& request);

  // Who has done what so far (for assignments and phase ends).
  bool Advertised(const std::string& node) const { return advertised_.contains(node); }
  bool InU1(const std::string& node) const { return u1_nodes_.contains(node); }
  bool Shared(const std::string& node) const { return shared_.contains(node); }
  bool InU2(const std::string& node) const { return u2_.contains(node); }
  bool InU3(const std::string& node) const { return u3_.contains(node); }
  bool Confirmed(const std::string& node) const { return confirmed_.contains(node); }
  bool Revealed(const std::string& node) const { return reveals_.contains(node); }
  size_t advertised_count() const { return advertised_.size(); }
  size_t shared_count() const { return shared_.size(); }
  size_t confirmed_count() const { return confirmed_.size(); }
  size_t revealed_count() const { return reveals_.size(); }

  // Σ_{u∈U3} x_u from the masked sum, once at least t nodes revealed.
  absl::StatusOr<std::vector<uint32_t>> Unmask(std::vector<uint32_t> masked_sum) const;

 private:
  enum class Stage { kAdvertising, kSharing, kMasking, kConfirming, kUnmasking };
  absl::Status Expect(Stage stage, const std::string& node, const char* what) const;
  // ShareKeys; `check` (may be null) tells which signatures are verified.
  absl::Status AcceptShares(const std::string& node, std::vector<secagg::SealedShares> shares,
                            const SharesCheck* check);

  const Params params_;
  const secagg::KeyAdvertisementVerifier& verifier_;
  Stage stage_ = Stage::kAdvertising;
  std::map<std::string, secagg::SignedAdvertisement> advertised_;
  std::map<std::string, crypto::X509Ptr> certificates_;  // parsed, by advertiser
  std::vector<secagg::SignedAdvertisement> u1_;
  std::string u1_digest_;  // what the survivors sign with U3
  std::set<std::string> u1_nodes_;
  std::map<std::string, std::vector<secagg::SealedShares>> shared_;  // by sender
  std::set<std::string> u2_;
  std::set<std::string> u3_;
  std::map<std::string, std::string> confirmed_;  // U4: signer -> signature on U3
  std::map<std::string, secagg::UnmaskShares> reveals_;
  std::map<std::string, std::string> dropped_;                // proven bad senders -> reason
  std::set<std::pair<std::string, std::string>> complaints_;  // (complainant, sender)
};

// The parameters of a secure round of `nodes` selected nodes that declared
// `total_weight` training rows (W), as every secure assignment carries them:
// the threshold t = floor(threshold_fraction x n) + 1 (at most n), the clip,
// the largest fixed-point scale that cannot overflow 32 bits for n nodes,
// n and W. FailedPrecondition, saying why, when no safe round exists: fewer
// than 2 nodes or t <= n/2, W outside 1..2^32-1, or no scale fits. The
// caller adds the revocation list it relays.
absl::StatusOr<v1::SecureRound> SecureRoundParameters(const v1::SecureAggregationConfig& config,
                                                      uint32_t nodes, uint64_t total_weight);

}  // namespace fedcustoms::coordinator
