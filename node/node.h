#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/crypto/ed25519.h"
#include "fedcustoms/v1/config.pb.h"
#include "fedcustoms/v1/node_service.pb.h"
#include "node/backoff/backoff.h"
#include "node/boosting/boosting_participant.h"
#include "node/client/coordinator_client.h"
#include "node/learner/local_learner.h"
#include "node/privacy/privacy_budget.h"
#include "node/secure/secure_aggregation_session.h"

namespace fedcustoms::node {

// A customs administration's node: loads its declarations once, dials out to
// the coordinator, and loops — join, long-poll, train or evaluate, upload —
// reconnecting with exponential backoff and jitter whenever the coordinator is
// away. Sends only the weight update (masked, with its sample count, in mode
// secure; see SecureAggregationSession) and hold-out metrics; logs sizes,
// rounds and versions, never rows or weights.
class Node {
 public:
  // Loads data and credentials named in a finalized config (LoadNodeConfig).
  static absl::StatusOr<std::unique_ptr<Node>> Create(v1::NodeConfig config);

  // Runs until Stop(), a fatal error (bad credentials, schema mismatch, a task
  // of another kind than the node's config says), or —
  // with exit_when_finished — the task's last round.
  absl::Status Run();
  // Asks Run() to return at its next step. Thread-safe.
  void Stop() { stop_ = true; }

  // The task's local learner (data, training, evaluation).
  const LocalLearner& learner() const { return *learner_; }

 private:
  Node(v1::NodeConfig config, std::unique_ptr<LocalLearner> learner,
       std::unique_ptr<CoordinatorClient> client, std::unique_ptr<crypto::Ed25519Verifier> verifier,
       std::unique_ptr<SecureAggregationSession> secure,
       std::unique_ptr<BoostingParticipant> boosting, PrivacyBudget budget);

  // What Run does with one assignment: `status` goes through Classify, unless
  // `exit`, when Run returns it (the task finished and exit_when_finished,
  // or an assignment of another task kind: a config error).
  struct Outcome {
    absl::Status status;
    bool exit = false;
  };
  Outcome Handle(const v1::TaskAssignment& assignment);
  absl::Status Join(const v1::DataSummary& summary);
  // After a failed step, per Classify: backs off and retries (reconnecting
  // when the coordinator is unreachable, one warning per outage), or waits
  // for the next round.
  void WaitAfterFailure(const absl::Status& status, Backoff& backoff);
  // Logs the end of an outage, if one was going on.
  void EndOutage();

  // One assignment; Classify(error) says whether to retry, sit out or stop.
  absl::Status Train(const v1::TaskAssignment& assignment);
  absl::Status Evaluate(const v1::TaskAssignment& assignment);
  // ADVERTISE_KEYS, SHARE_KEYS, CONFIRM_SURVIVORS or UNMASK. A refusal by
  // this node's own checks comes back as FailedPrecondition: the node sits
  // the round out.
  absl::Status SecureStep(const v1::TaskAssignment& assignment);
  // A BOOST step: the participant's key or vector parts, sent. A refusal by
  // this node (or a malformed step) is FailedPrecondition: the node sits
  // the round out.
  absl::Status BoostStep(const v1::TaskAssignment& assignment);
  // Verifies the assignment's manifest and downloads its model; returns the
  // path of the downloaded, hash-checked tensor file and its signed SHA-256.
  struct FetchedModel {
    std::string path;
    std::string wire_sha256;
  };
  absl::StatusOr<FetchedModel> FetchModel(const v1::TaskAssignment& assignment);
  // Removes the downloaded models of `task` older than the version before
  // `newest` (the global and candidate models of the current round stay).
  void PruneModels(const std::string& task, uint64_t newest) const;
  // The error for an assignment of another task kind than this node's.
  absl::Status KindMismatch(const v1::TaskAssignment& assignment) const;
  absl::Status RecordMetrics(const v1::TaskAssignment& assignment,
                             const v1::EvaluationMetrics& metrics);
  void SleepUnlessStopped(std::chrono::milliseconds duration);

  const v1::NodeConfig config_;
  const std::unique_ptr<LocalLearner> learner_;
  std::unique_ptr<CoordinatorClient> client_;
  std::unique_ptr<crypto::Ed25519Verifier> verifier_;
  std::unique_ptr<SecureAggregationSession> secure_;
  // Risk nodes: the boosting sessions' side (null for other task kinds).
  std::unique_ptr<BoostingParticipant> boosting_;
  std::atomic<bool> stop_{false};

  // Run's thread only.
  // What this administration has spent of its rows' privacy on the task.
  PrivacyBudget budget_;
  // Non-empty once the budget allows no more training: sent with every poll
  // so the coordinator stops selecting the node, which still evaluates.
  std::string training_declined_;
  // The warning about a DP task without a node budget was logged.
  bool warned_no_budget_ = false;
  // Whether the task's privacy terms allow this node to train now (see
  // PrivacyBudget::Check); a budget that one more round would pass also
  // sets training_declined_.
  absl::StatusOr<std::optional<privacy::DpSgdPlan>> CheckPrivacy(const v1::TaskAssignment& a);

  // Run's thread only.
  // A round this node sits out (its training or a secure step was refused
  // for a reason retrying cannot fix): not retrained.
  std::optional<uint64_t> refused_round_;
  // While the coordinator cannot be reached: since when.
  std::optional<std::chrono::steady_clock::time_point> outage_since_;
};

}  // namespace fedcustoms::node
