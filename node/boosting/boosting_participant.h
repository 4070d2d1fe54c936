#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/boosting/masked_vector.h"
#include "common/data/declaration_table.h"
#include "common/secagg/key_advertisement.h"
#include "common/trees/boosting_rows.h"
#include "fedcustoms/v1/config.pb.h"
#include "fedcustoms/v1/node_service.pb.h"
#include "node/boosting/boosting_record.h"

namespace fedcustoms::node {

// The node's side of a boosting session (a risk task of kind BOOSTED_TREES):
// turns each BOOST assignment into what the node sends, computed from its
// own rows (trees::BoostingRows), and keeps the guarantees that do not
// depend on the coordinator's honesty (docs/threat_model.md):
//   - in mode SECURE every vector leaves masked with pairwise masks agreed
//     with the session's members, whose keys must be signed by node
//     certificates of the federation CA (not revoked), at least min_peers of
//     them, this node's own key among them; the member list is pinned for
//     the session; the masks of a step are derived from its number and the
//     digest of its content (so members shown different steps get noise),
//     and a node takes each step number once;
//   - vectors of its rows are summed with one member list only, in every
//     session and task (BoostingRecord, durable);
//   - each level grows the last one by the children of its open nodes, all
//     of them open, and an open node holding fewer than min_cell_rows of
//     this node's rows is left out of its histogram with its sibling;
//   - the session's bins and base score cannot change once set, trees come
//     in order, every tree is checked against the bins before use, and a
//     step's length is checked before anything is allocated for it.
// The session's X25519 key lives in memory only and goes with the session.
// Not thread-safe: the node's loop uses it.
class BoostingParticipant {
 public:
  struct Options {
    std::string task;
    // Mode SECURE (masked vectors) or TRUSTED (plain vectors). A node in
    // mode SECURE never sends a plain vector, whatever the step says.
    bool secure = true;
    // The node's floors (NodeSecureAggregationConfig, finalized).
    uint32_t min_peers = 3;
    uint32_t min_cell_rows = 10;
    // BoostingRecordPath(work_dir); mode SECURE only.
    std::string record_path;
  };

  // Reads the node's certificate (its name) and key (to sign its session
  // keys) and the CA and CRL (to check the other members'). `table` and
  // `split` (labels required) must outlive the participant.
  static absl::StatusOr<std::unique_ptr<BoostingParticipant>> Create(
      const v1::TlsFiles& tls, Options options, const data::DeclarationTable& table,
      const data::Split& split);
  ~BoostingParticipant();

  // What to send for one BOOST assignment: the signed key (KEYS) or the
  // parts of the step's vector.
  struct Output {
    std::optional<v1::AdvertiseBoostingKeyRequest> key;
    std::vector<v1::SubmitBoostingVectorRequest> parts;
  };
  // FailedPrecondition when this node refuses the step (a member list below
  // its floor or with a bad signature, an input already summed with other
  // members, a step number already taken, bins that changed, a tree out of
  // order); InvalidArgument when the step is malformed (naming the field).
  // Either way nothing leaves.
  absl::StatusOr<Output> Step(const v1::TaskAssignment& assignment);

  // Open tree nodes left out of the last LEVEL histogram (small cells).
  size_t last_suppressed() const { return last_suppressed_; }

 private:
  struct Session;
  BoostingParticipant(std::string self, std::string cert_pem, Options options,
                      const data::DeclarationTable& table, const data::Split& split,
                      std::unique_ptr<secagg::KeyAdvertisementSigner> signer,
                      std::unique_ptr<secagg::KeyAdvertisementVerifier> verifier,
                      std::unique_ptr<BoostingRecord> record);

  // The session's masker for the step's members, verified (cached while the
  // member list stays the same); the sorted member names in `names`.
  absl::StatusOr<const boosting::PairwiseMasker*> MaskerFor(const v1::TaskAssignment& a,
                                                            std::vector<std::string>* names);
  // The step's vector, its announced length and every tree checked first.
  absl::StatusOr<std::vector<double>> Compute(const v1::BoostingStep& step,
                                              const v1::TaskAssignment& a);

  const std::string self_;
  const std::string cert_pem_;  // advertised with the session key
  const Options options_;
  const data::DeclarationTable& table_;
  const data::Split& split_;
  const std::unique_ptr<secagg::KeyAdvertisementSigner> signer_;
  const std::unique_ptr<secagg::KeyAdvertisementVerifier> verifier_;
  const std::unique_ptr<BoostingRecord> record_;  // mode SECURE
  // SHA-256 of the training and validation rows (features and labels),
  // computed at the first recorded vector: most risk nodes never boost, and
  // hashing every row is not start-up work.
  const std::string& RowsDigest();
  std::string rows_digest_;
  std::unique_ptr<Session> session_;
  size_t last_suppressed_ = 0;
};

}  // namespace fedcustoms::node
