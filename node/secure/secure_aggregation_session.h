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

namespace fedcustoms::node {

// The node's side of secure aggregation across rounds: turns each secure
// assignment into the request to send, keeping the open round's keys and
// secrets in memory only (a restarted node sits the round out). A request
// already built is returned again for the same assignment, so a call that
// failed on the wire is resent unchanged rather than recomputed (the
// protocol allows each step once). Refusals (a bad signature, a survivor set
// below the threshold, a request to reveal both secrets of a node) come back
// as errors naming the rule; the round's secrets are then wiped.
class SecureAggregationSession {
 public:
  // Reads the node's certificate, key and the federation CA named in `tls`.
  static absl::StatusOr<std::unique_ptr<SecureAggregationSession>> Create(const v1::TlsFiles& tls);

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
  using UpdatePiece = secagg::MaskedUpdate::Piece;
  struct MaskedUpdate {
    std::vector<uint32_t> words;
    uint64_t clipped = 0;  // coordinates that were clipped to ±clip
  };
  absl::StatusOr<MaskedUpdate> MaskUpdate(const v1::TaskAssignment& assignment,
                                          std::span<const UpdatePiece> update, uint64_t samples);
  // UNMASK: the shares that remove the masks of the announced survivors.
  absl::StatusOr<v1::UnmaskRequest> Unmask(const v1::TaskAssignment& assignment);

 private:
  SecureAggregationSession(std::string self, std::string cert_pem,
                           std::unique_ptr<secagg::KeyAdvertisementSigner> signer,
                           std::unique_ptr<secagg::KeyAdvertisementVerifier> verifier)
      : self_(std::move(self)),
        cert_pem_(std::move(cert_pem)),
        signer_(std::move(signer)),
        verifier_(std::move(verifier)) {}
  // The open round of the assignment's task and round, or FailedPrecondition.
  absl::StatusOr<secagg::SecAggNodeRound*> RoundOf(const v1::TaskAssignment& assignment);
  void Forget();

  const std::string self_;
  const std::string cert_pem_;
  std::unique_ptr<secagg::KeyAdvertisementSigner> signer_;
  std::unique_ptr<secagg::KeyAdvertisementVerifier> verifier_;

  std::string task_;
  uint64_t round_id_ = 0;
  std::unique_ptr<secagg::SecAggNodeRound> round_;
  std::optional<v1::AdvertiseKeysRequest> advertised_;
  std::optional<v1::ShareKeysRequest> shared_;
  std::optional<v1::UnmaskRequest> revealed_;
};

}  // namespace fedcustoms::node
