#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/secagg/key_advertisement.h"
#include "common/secagg/key_agreement.h"
#include "common/secagg/mask_generator.h"
#include "common/secagg/shamir.h"

namespace fedcustoms::secagg {

// One round of Practical Secure Aggregation (Bonawitz et al., CCS 2017, the
// active-adversary variant: signed keys and a consistency check) as plain
// library code: what a node computes in each phase and how the coordinator
// removes the masks. The gRPC round protocol carries these values; nothing
// here does I/O.
//
//   1 advertise keys   each node u: two X25519 key pairs (mask c_u, cipher e_u)
//                      and a commitment to its self-mask seed b_u, signed with
//                      its certificate key                     -> U1
//   2 share keys       u checks every advertisement, Shamir-shares b_u and its
//                      mask private key c_u^SK (t of |U1|),
//                      seals one share pair per peer           -> U2 (senders)
//   3 masked input     u opens the shares sent to it and sends
//                      y_u = x_u + PRG(b_u) + Σ_{v∈U2, v≠u} ±PRG(s_uv)  (mod 2^32)
//                      with s_uv = HKDF(X25519(c_u, c_v)), + if u < v else −
//                                                              -> U3 (senders)
//   4 consistency      u signs the survivor list U3 it is shown -> U4 (signers)
//   5 unmasking        once u holds t valid signatures of U4 on the same U3, it
//                      reveals, for each v in U2, v's share of b_v if v is in
//                      U3, or of c_v^SK if not — never both for one node; the
//                      coordinator reconstructs (checking each b_v against its
//                      commitment), removes the self masks of U3 and the
//                      pairwise masks between U3 and the dropped nodes.
// Every phase needs at least t nodes; t > |U1|/2 (CheckThreshold). The node
// also holds every phase to its own floor (Params::min_peers and
// threshold_fraction), whatever t the coordinator announced.

// A node's advertisement as relayed by the coordinator.
struct SignedAdvertisement {
  AdvertisedKeys keys;
  std::string cert_pem;   // the node's certificate, checked against the CA
  std::string signature;  // over AdvertisementPayload(keys)
};

// Sealed shares of one node's two secrets, for one receiver.
struct SealedShares {
  std::string from;
  std::string to;
  std::string sealed;          // SealShare under the from -> to key
  std::string key_commitment;  // CommitToShareKey of that key
  std::string signature;       // from's, over SealedSharePayload
};

// A receiver's report that a share message sent to it cannot be used: the
// message as relayed (signed by its sender), the from -> to key when it
// matches the sender's commitment (so the coordinator can open the message
// and see for itself; "" when it does not match, which the receiver cannot
// prove to anyone), and what was wrong.
struct ShareComplaint {
  SealedShares share;
  std::string share_key;
  std::string reason;
};

// What a node sends in phase 3.
struct MaskedInputResult {
  std::vector<uint32_t> masked;
  std::vector<ShareComplaint> complaints;
};

// What a node reveals in the unmasking phase.
struct UnmaskShares {
  std::map<std::string, ShamirShare> self_mask_seeds;  // for nodes in U3
  std::map<std::string, ShamirShare> mask_keys;        // for nodes in U2 \ U3
};

// The node side of one round. Each phase method may be called once, in order;
// a call out of order, a second call, or input that breaks the protocol's
// rules is refused with FailedPrecondition or PermissionDenied and a message
// naming the rule, and the node reveals nothing more for this round.
class SecAggNodeRound {
 public:
  struct Params {
    std::string task;
    uint64_t round_id = 0;
    std::string self;        // this node's certificate CN
    uint32_t threshold = 0;  // t as announced; checked against |U1| in ShareKeys
    // The node's own floor, from its config: every phase needs at least
    // min_peers nodes, and t must be at least floor(threshold_fraction x
    // |U1|) + 1.
    uint32_t min_peers = 3;
    double threshold_fraction = 2.0 / 3.0;
    // The round's public terms as announced; signed with the survivor list.
    RoundTerms terms;
  };

  // Phase 1: fresh key pairs and self-mask seed, signed with the seed's
  // commitment. `signer` and `verifier` must outlive the round.
  static absl::StatusOr<std::unique_ptr<SecAggNodeRound>> Create(
      Params params, const KeyAdvertisementSigner& signer, const KeyAdvertisementVerifier& verifier,
      std::string own_cert_pem);

  const SignedAdvertisement& advertisement() const { return advertisement_; }
  // AdvertisedKeysDigest of the U1 this node verified (after ShareKeys).
  const std::string& u1_digest() const { return u1_digest_; }

  // Phase 2: every advertisement the coordinator relays (U1, this node's
  // included, unaltered). Each is verified; returns one sealed share pair per
  // other node.
  absl::StatusOr<std::vector<SealedShares>> ShareKeys(std::span<const SignedAdvertisement> u1);

  // Phase 3: the sealed shares addressed to this node (their senders and this
  // node form U2) and the encoded update (already weighted and quantized).
  // Returns the masked input, and a complaint for each message signed by its
  // sender that this node cannot use (wrong key commitment, does not open,
  // not a share pair for this node): the round goes on without that share
  // (the pairwise mask with the sender needs only its public key). A message
  // whose sender's signature does not verify was altered by the coordinator
  // (which checks them on arrival): the round is refused.
  absl::StatusOr<MaskedInputResult> MaskedInput(std::span<const SealedShares> received,
                                                std::span<const uint32_t> encoded_update);

  // Phase 4: the nodes whose masked input reached the coordinator (U3), as
  // the coordinator shows them; returns this node's signature on the list,
  // the round's terms and its advertised keys (SurvivorList). Signed once
  // per round: a second call with any list is refused.
  absl::StatusOr<std::string> ConfirmSurvivors(const std::set<std::string>& u3);

  // Phase 5: the survivor list again and the signatures on it the
  // coordinator relays, by signer. The list must be the one this node
  // confirmed, and at least max(t, min_peers) signatures must come from
  // members of U3 and verify (an invalid one refuses the round).
  absl::StatusOr<UnmaskShares> Unmask(const std::set<std::string>& u3,
                                      const std::map<std::string, std::string>& signatures);

  // Wipes the self-mask seed and the shares held for others.
  ~SecAggNodeRound();
  SecAggNodeRound(const SecAggNodeRound&) = delete;
  SecAggNodeRound& operator=(const SecAggNodeRound&) = delete;

 private:
  enum class Phase { kAdvertised, kShared, kMasked, kConfirmed, kDone };
  SecAggNodeRound(Params params, const KeyAdvertisementSigner& signer,
                  const KeyAdvertisementVerifier& verifier, X25519KeyPair mask,
                  X25519KeyPair cipher, MaskSeed self_seed)
      : params_(std::move(params)),
        signer_(signer),
        verifier_(verifier),
        mask_(std::move(mask)),
        cipher_(std::move(cipher)),
        self_seed_(self_seed) {}
  absl::Status Refuse(absl::Status status);
  void ForgetHeldShares();
  // The fewest nodes any phase after advertising may have: t and min_peers.
  uint32_t Floor() const;
  // FailedPrecondition naming `what` when `count` is below Floor().
  absl::Status CheckFloor(size_t count, const char* what) const;

  const Params params_;
  const KeyAdvertisementSigner& signer_;
  const KeyAdvertisementVerifier& verifier_;
  X25519KeyPair mask_;
  X25519KeyPair cipher_;
  MaskSeed self_seed_;
  SignedAdvertisement advertisement_;
  Phase phase_ = Phase::kAdvertised;
  bool refused_ = false;
  std::map<std::string, AdvertisedKeys> u1_;                         // verified, by node
  std::map<std::string, crypto::X509Ptr> u1_certs_;                  // by node
  std::set<std::string> u2_;                                         // incl. self
  std::set<std::string> u3_;                                         // as confirmed
  std::string u1_digest_;                                            // AdvertisedKeysDigest
  std::map<std::string, std::pair<ShamirShare, ShamirShare>> held_;  // from v: (b_v, c_v^SK)
};

// x of `node`'s shares: its 1-based position in U1 in name order (0 if it
// is not in U1).
uint32_t ShareIndex(const std::set<std::string>& u1, const std::string& node);

// Opens one share message with `key` (the sender -> receiver key), dealt for
// the U1 whose digest is `u1_digest`, and checks
// that it holds a pair of shares with x = `receiver_x`: how a receiver and
// the coordinator judging its complaint decide alike. DataLoss when it does
// not open, InvalidArgument when it is not such a pair; the reason names the
// sender.
absl::StatusOr<std::pair<ShamirShare, ShamirShare>> OpenSharePair(
    const std::string& task, uint64_t round_id, std::string_view u1_digest,
    const SealedShares& message, const SharedKey& key, uint32_t receiver_x);

// The context string from which a pair's mask seed is derived.
std::string PairMaskContext(const std::string& task, uint64_t round_id, const std::string& a,
                            const std::string& b);

// The coordinator side of unmasking: from the sum of the masked inputs of U3
// (mod 2^32) and at least t nodes' UnmaskShares, reconstructs the self-mask
// seeds of U3 and the mask keys of U2 \ U3, checks each reconstructed seed
// against its commitment and each key against its advertised public key
// (DataLoss naming the node otherwise), and returns Σ_{u∈U3} x_u. `u1` are the
// advertisements of the round (public keys only are used). A revealed share
// that does not fit is outvoted while t good shares of that secret remain
// (other choices of t are tried, at most 20 000 in all per unmasking); the
// revealers of such shares go to `*inconsistent_revealers` (each lied, or
// was dealt a bad share by the secret's owner).
absl::StatusOr<std::vector<uint32_t>> UnmaskSum(
    const std::string& task, uint64_t round_id, uint32_t threshold,
    const std::map<std::string, AdvertisedKeys>& u1, const std::set<std::string>& u2,
    const std::set<std::string>& u3, std::vector<uint32_t> masked_sum,
    const std::map<std::string, UnmaskShares>& responses,
    std::set<std::string>* inconsistent_revealers = nullptr);

}  // namespace fedcustoms::secagg
