#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/secagg/key_advertisement.h"
#include "common/secagg/masked_update.h"
#include "common/secagg/secagg_round.h"
#include "fedcustoms/v1/config.pb.h"
#include "fedcustoms/v1/node_service.pb.h"
#include "node/secure/contribution_record.h"

namespace fedcustoms::node {

// The node's side of secure aggregation across rounds: turns each secure
// assignment into the request to send, keeping the open round's keys and
// secrets in memory only (a restarted node sits the round out). A request
// already built is returned again for the same assignment, so a call that
// failed on the wire is resent unchanged rather than recomputed (the
// protocol allows each step once). Refusals (a bad or revoked signature, a
// round below the node's own floor, two survivor lists, a second update on
// one model, a request to reveal both secrets of a node) come back as errors
// naming the rule; the round's secrets are then wiped.
class SecureAggregationSession {
 public:
  struct Options {
    // The node's own floor on every round (defaults filled in by the node
    // config: min_peers 3, threshold_fraction 2/3, two contributions per
    // model).
    v1::NodeSecureAggregationConfig guarantees;
    // Where the record of contributions lives (ContributionRecord).
    std::string record_path;
  };

  // Reads the node's certificate, key, the federation CA and the CRL (if
  // any) named in `tls`, and the contribution record.
  static absl::StatusOr<std::unique_ptr<SecureAggregationSession>> Create(const v1::TlsFiles& tls,
                                                                          Options options);

  // This node's administration code (its certificate CN).
  const std::string& self() const { return self_; }

  // ADVERTISE_KEYS: fresh keys for the round, signed.
  absl::StatusOr<v1::AdvertiseKeysRequest> AdvertiseKeys(const v1::TaskAssignment& assignment);
  // SHARE_KEYS: checks every advertised key; the sealed shares for the others.
  absl::StatusOr<v1::ShareKeysRequest> ShareKeys(const v1::TaskAssignment& assignment);
  // TRAIN: the update (the model's aggregatable tensors, in model order)
  // encoded as secagg::MaskedUpdate lays it out (P + 1 words: the weighted
  // fixed-point update, then the sample count), then masked. `update` is a
  // view the caller keeps alive during the call. FailedPrecondition (and the
  // round's secrets wiped) when `samples` is outside 1..W or the round's
  // parameters are unsafe; the encoder's error when a value cannot be encoded.
  //
  // `model_sha256` is the hex SHA-256 of the global model the update was
  // computed from (its signed manifest's wire_sha256). The contribution is
  // recorded durably before the masked words are returned; FailedPrecondition
  // when the record refuses it (ContributionRecord::CheckAllowed).
  using UpdatePiece = secagg::MaskedUpdate::Piece;
  struct MaskedUpdate {
    std::vector<uint32_t> words;
    uint64_t clipped = 0;  // coordinates that were clipped to ±clip
    // Shares this node could not use, with the evidence (UpdateHeader).
    std::vector<v1::ShareComplaint> complaints;
  };
  absl::StatusOr<MaskedUpdate> MaskUpdate(const v1::TaskAssignment& assignment,
                                          const std::string& model_sha256,
                                          std::span<const UpdatePiece> update, uint64_t samples);
  // Whether this node may still contribute an update computed from the
  // assignment's model (checked before training, to spare the work).
  absl::Status CheckMayContribute(const v1::TaskAssignment& assignment,
                                  const std::string& model_sha256) const;
  // CONFIRM_SURVIVORS: this node's signature on the announced survivors,
  // once the confirmation is on record (ContributionRecord: one list per
  // model).
  absl::StatusOr<v1::ConfirmSurvivorsRequest> ConfirmSurvivors(
      const v1::TaskAssignment& assignment);
  // UNMASK: the shares that remove the masks of the announced survivors,
  // once enough of them signed the list this node confirmed.
  absl::StatusOr<v1::UnmaskRequest> Unmask(const v1::TaskAssignment& assignment);

 private:
  SecureAggregationSession(std::string self, std::string cert_pem, Options options,
                           std::unique_ptr<secagg::KeyAdvertisementSigner> signer,
                           std::unique_ptr<secagg::KeyAdvertisementVerifier> verifier,
                           std::unique_ptr<ContributionRecord> record)
      : self_(std::move(self)),
        cert_pem_(std::move(cert_pem)),
        options_(std::move(options)),
        signer_(std::move(signer)),
        verifier_(std::move(verifier)),
        record_(std::move(record)) {}
  // The open round of the assignment's task and round, or FailedPrecondition;
  // PermissionDenied (and the round forgotten) when the assignment announces
  // other terms than the ones this node advertised with.
  absl::StatusOr<secagg::SecAggNodeRound*> RoundOf(const v1::TaskAssignment& assignment);
  void Forget();

  const std::string self_;
  const std::string cert_pem_;
  const Options options_;
  std::unique_ptr<secagg::KeyAdvertisementSigner> signer_;
  std::unique_ptr<secagg::KeyAdvertisementVerifier> verifier_;
  std::unique_ptr<ContributionRecord> record_;

  std::string task_;
  uint64_t round_id_ = 0;
  secagg::RoundTerms terms_;  // as advertised
  // The model this round's masked update came from (set by MaskUpdate).
  uint64_t model_version_ = 0;
  std::string model_sha256_;
  std::unique_ptr<secagg::SecAggNodeRound> round_;
  std::optional<v1::AdvertiseKeysRequest> advertised_;
  std::optional<v1::ShareKeysRequest> shared_;
  std::optional<v1::ConfirmSurvivorsRequest> confirmed_;
  std::optional<v1::UnmaskRequest> revealed_;
};

}  // namespace fedcustoms::node
