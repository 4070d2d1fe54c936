#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/privacy/privacy_config.h"
#include "common/task/task_model.h"
#include "coordinator/aggregation/aggregator.h"
#include "coordinator/aggregation/server_optimizer.h"
#include "coordinator/ledger/round_ledger.h"
#include "coordinator/registry/model_registry.h"
#include "coordinator/rounds/clock.h"
#include "coordinator/rounds/manifest_template.h"
#include "coordinator/rounds/metrics_check.h"
#include "coordinator/rounds/model_snapshot.h"
#include "coordinator/rounds/node_roster.h"
#include "coordinator/rounds/release_choice.h"
#include "coordinator/rounds/round_phase.h"
#include "coordinator/rounds/round_state.h"
#include "coordinator/rounds/secure_round.h"
#include "coordinator/rounds/server_model.h"
#include "fedcustoms/v1/admin_service.pb.h"
#include "fedcustoms/v1/config.pb.h"
#include "fedcustoms/v1/metrics.pb.h"
#include "fedcustoms/v1/node_service.pb.h"
#include "fedcustoms/v1/schema.pb.h"

namespace fedcustoms::coordinator {

// Runs the rounds of one task (see DESIGN.md "The round"):
//   gathering  → wait until min_nodes nodes are polling, select them
//   (mode SECURE: advertising keys → sharing keys, see SecureRound)
//   training   → selected nodes download model v, train, upload Δ; each valid
//                update is folded into the round's Aggregator as it arrives
//                (mode SECURE: masked inputs into a SecureAggregator, then
//                unmasking reveals only their sum); the aggregator finishes
//                into the mean update the server optimizer applies
//   evaluating → participants evaluate the candidate v+1 on their hold-out
//   publish    → v+1 goes to the registry with its signed manifest and metrics
// If fewer than min_nodes valid updates arrive by the deadline the round aborts
// and the global model is unchanged. Every finished round is in the ledger.
//
// The gRPC handlers call the public methods from any thread; a driver thread
// moves the phases along. Long-polls wait on a condition variable with a
// bounded timeout, so no dead node holds anything.
class TaskRunner {
 public:
  struct Options {
    v1::TaskConfig config;  // Defaults already applied.
    // The federation's declaration schema (risk and anomaly tasks).
    v1::DeclarationSchema schema;
    std::string spool_dir;
    // Holds the wire encodings of the global and the candidate model
    // (<models_dir>/v<N>.fct), which downloads stream and aggregation reads.
    // Derived from the registry: rebuilt from it when missing.
    std::string models_dir;
    v1::AggregationMode mode = v1::SECURE;
    // Checks the nodes' signed secure-aggregation keys (mode SECURE).
    const secagg::KeyAdvertisementVerifier* key_verifier = nullptr;
    // The coordinator's revocation list in force (PEM, empty if none),
    // relayed to the nodes with every secure round so they refuse revoked
    // peers' keys; unset for none.
    std::function<std::string()> crl_pem;
    // The time every deadline runs on, and the waits on it (null: a
    // SteadyClock of the runner's own). Must outlive the runner.
    Clock* clock = nullptr;
    // Tests only: sees every input handed to the aggregator, just before it
    // is folded (a masked vector in mode SECURE).
    std::function<void(const std::string& node, const TensorSource& input)> aggregator_input_tap;
    // Tests only: sees, and may change, every assignment before it goes to
    // `node`: how adversarial tests play a coordinator that lies to nodes
    // over the real protocol.
    std::function<void(const std::string& node, v1::TaskAssignment& assignment)> assignment_tap;
  };

  // Loads the latest published version of the task from `registry` (or
  // publishes a freshly initialized v0) and the last round id from `ledger`.
  // registry, ledger and signer must outlive the runner.
  static absl::StatusOr<std::unique_ptr<TaskRunner>> Create(Options options,
                                                            ModelRegistry* registry,
                                                            RoundLedger* ledger,
                                                            const crypto::Ed25519Signer* signer);
  ~TaskRunner();

  // Starts / stops the driver thread. Stop wakes every waiting long-poll.
  void Start();
  void Stop();

  const std::string& name() const { return options_.config.name(); }
  // Hex SHA-256 of the task's input (feature schema, or X-ray image format);
  // joining nodes must match it.
  const std::string& feature_schema_hash() const { return manifests_.feature_schema_hash(); }

  // A node joined (its feature schema already checked): it counts as
  // available for a while, and the training rows it declared weigh and bound
  // its updates from the next round on. Nodes join again after a coordinator
  // restart. INVALID_ARGUMENT naming the cap when the rows are 0 or above the
  // node's max_train_rows (NodeRoster::Join): the node is not enrolled.
  // `holdout_rows` (0: not declared) bound the examples of its metric
  // reports.
  absl::Status Join(const std::string& node, uint64_t train_rows, uint64_t holdout_rows = 0);
  // Whether `node` joined since this coordinator started.
  bool HasJoined(const std::string& node) const;

  // Long-poll: the node's next assignment, waiting up to `wait` for one.
  // A non-empty `training_declined` (the node's reason) keeps the node out of
  // the training rounds opened from now on; it still evaluates the rounds it
  // trained in.
  v1::TaskAssignment NextAssignment(const std::string& node, std::chrono::milliseconds wait,
                                    const std::string& training_declined = "");

  // The model `node` may download for (round, version): the round's global
  // model while training, the candidate while evaluating. FAILED_PRECONDITION
  // for any other round, version or phase, or when the node was
  // not selected.
  absl::StatusOr<std::shared_ptr<const ModelSnapshot>> ModelForDownload(const std::string& node,
                                                                        uint64_t round_id,
                                                                        uint64_t version);

  // Upload of one update, in three steps so nothing reaches the sum before it
  // is complete and valid: BeginUpload checks the header and reserves the
  // node's slot; FinishUpload validates the spooled file and folds it in;
  // AbortUpload releases the slot after a failed transfer (the node may retry
  // while the round is open).
  absl::Status BeginUpload(const std::string& node, const v1::UpdateHeader& header);
  absl::Status FinishUpload(const std::string& node, const v1::UpdateHeader& header,
                            const std::string& spool_path);
  void AbortUpload(const std::string& node, const v1::UpdateHeader& header);

  // Secure aggregation steps of the open round (mode SECURE): a selected
  // node's signed keys, its sealed shares for the other nodes, and its
  // unmasking shares. FAILED_PRECONDITION outside the step's phase.
  absl::Status AdvertiseKeys(const std::string& node, const v1::AdvertiseKeysRequest& request);
  absl::Status ShareKeys(const std::string& node, const v1::ShareKeysRequest& request);
  absl::Status ConfirmSurvivors(const std::string& node,
                                const v1::ConfirmSurvivorsRequest& request);
  absl::Status Unmask(const std::string& node, const v1::UnmaskRequest& request);

  // Boosting steps of the open round (risk tasks of kind BOOSTED_TREES): a
  // member's signed session key and the parts of its vectors
  // (BoostingSession). FAILED_PRECONDITION outside the round's session.
  absl::Status AdvertiseBoostingKey(const std::string& node,
                                    const v1::AdvertiseBoostingKeyRequest& request);
  absl::Status SubmitBoostingVector(const std::string& node,
                                    const v1::SubmitBoostingVectorRequest& request);

  // Metrics of the candidate on a participant's hold-out.
  absl::Status ReportMetrics(const std::string& node, uint64_t round_id, uint64_t version,
                             const v1::EvaluationMetrics& metrics);

  v1::TaskStatus Status() const;
  std::set<std::string> AvailableNodes() const;

  // Maximum bytes an upload for this task may have (derived from the model).
  // An upload is the update's encoding; anything much larger is hostile.
  uint64_t MaxUploadBytes() const { return model_bytes_ * 2 + (1 << 20); }
  // When an upload for `round_id` must be done by (steady_clock): the
  // round's training deadline, or now when that round is not training: an
  // upload that ends later would find it closed anyway.
  std::chrono::steady_clock::time_point UploadDeadline(uint64_t round_id) const;

 private:
  TaskRunner(Options options, ModelRegistry* registry, RoundLedger* ledger,
             const crypto::Ed25519Signer* signer, UpdateSpec spec, uint64_t model_bytes);

  void DriverLoop();
  // Runs `f` with mu_ released and holds mu_ again when `f` returns or
  // throws (the driver aborts the round after an exception, under mu_): the
  // driver's long steps (making the aggregator, the candidate, publishing)
  // run without the lock. `f` must not touch state guarded by mu_. Clang's
  // analysis does not follow exceptions, so this helper is unchecked; its
  // annotation is the contract the callers are checked against.
  template <typename F>
  auto Unlocked(F&& f) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    mu_.Unlock();
    try {
      auto result = f();
      mu_.Lock();
      return result;
    } catch (...) {
      mu_.Lock();
      throw;
    }
  }
  // Each returns with mu_ held, after the phase it drives is over.
  // The privacy part of Status(): each administration's spent ε from the
  // global model's manifest, with the task's target and the nodes that no
  // longer train.
  void AddPrivacyStatus(v1::TaskStatus* status) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Mode DP_SGD: `node`'s privacy report (CheckPrivacyReport) against its
  // plan for the rows it declared and the global model's privacy block.
  absl::Status CheckPrivacy(const std::string& node, const v1::UpdateHeader& header)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Makes `snapshot` the global model and reads its privacy block.
  void SetGlobal(std::shared_ptr<const ModelSnapshot> snapshot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Gather() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Mode SECURE, before training: the two key phases. False if the round
  // aborted (or the runner is stopping).
  bool ExchangeKeys() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Train() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Makes the round's aggregator and enters the training phase; false (the
  // round aborted) when the aggregator cannot be made.
  bool OpenTraining() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Mode SECURE, after training: the unmasking phase. Cancelled when the
  // runner stops; otherwise an error aborts the round.
  absl::Status CollectUnmaskingShares() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Finishes `aggregator` into the candidate v+1 and enters evaluation, or
  // aborts the round.
  void Aggregate(std::shared_ptr<Aggregator> aggregator) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool secure() const { return options_.mode == v1::SECURE; }
  // Waits for `done` until a deadline `seconds` from now, in `phase`.
  void RunPhase(RoundPhase phase, uint32_t seconds, const std::function<bool()>& done)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Boosted trees: runs the round's boosting session step by step (each
  // with the task's step deadline) and makes its ensemble the candidate,
  // then enters evaluation; or aborts the round.
  void Boost() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A boosting step of `node` for `round_id` while the round boosts; the
  // waiters wake when it succeeds.
  absl::Status BoostingStep(const std::string& node, uint64_t round_id,
                            const std::function<absl::Status(BoostingSession&)>& step)
      ABSL_LOCKS_EXCLUDED(mu_);
  bool boosted_trees() const { return task::IsBoostedTrees(model_spec_); }
  // With candidate_ set: the evaluators (the round's contributors and the
  // nodes that only evaluate) and the evaluation phase with its deadline.
  void OpenEvaluation() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Evaluate() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Publishes the candidate with the round's metrics and makes it the global
  // model, or aborts the round.
  void Publish(RoundMetrics metrics) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AbortRound(const std::string& reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Mode SECURE: judges the share complaints an upload header carries
  // (SecureRound::JudgeComplaint). A proven one drops the sender; a false
  // one refuses this upload (PermissionDenied) and drops the complainant.
  absl::Status JudgeComplaints(const std::string& node, const v1::UpdateHeader& header)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Mode SECURE: keeps a folded masked input's spool file until masking
  // closes, so that a node dropped after its input was folded can be taken
  // out again.
  void KeepMaskedInput(const std::string& node, uint64_t round_id, const std::string& spool_path);
  // At the close of masking: subtracts the inputs of dropped nodes from
  // `aggregator` and takes them out of the participants; the ledger reason
  // names them.
  absl::Status TakeOutDroppedInputs(Aggregator& aggregator) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Deletes the kept masked inputs.
  void DiscardKeptInputs() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records the round in the ledger as `status` ("completed" or "aborted"),
  // counts it and goes back to gathering.
  void CloseRound(const char* status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A secure step of `node` for `round_id`: `step` runs on the round's
  // SecureRound while the round is in `phase`; the waiters wake when it
  // succeeds.
  absl::Status SecureStep(const std::string& node, uint64_t round_id, RoundPhase phase,
                          const std::function<absl::Status(SecureRound&)>& step)
      ABSL_LOCKS_EXCLUDED(mu_);
  // How an upload ended: the round closed (or the transfer failed), the
  // update was rejected (counted), or folded in with `samples`.
  enum class UploadEnd { kRoundClosed, kRejected, kFolded };
  // Ends `node`'s upload for `round_id` if that is still the current round
  // id (open, or closed and not yet replaced), and wakes the waiters.
  void EndUpload(const std::string& node, uint64_t round_id, UploadEnd end, uint64_t samples = 0)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Sets the phase of the open round, wakes the waiters and follows it in
  // the ledger (so a restart knows where the round was interrupted).
  void EnterPhase(RoundPhase phase) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether the registry, the model directory and the upload spool can take
  // a round of `nodes` nodes (io::CheckWritableSpace).
  absl::Status CheckStorage(size_t nodes) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool RoundsDone() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // TaskConfig.early_stopping_rounds published versions since the released one.
  bool EarlyStopped() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // RoundState::CheckPhase, and `version` is the round's model in that
  // phase (the candidate while evaluating, else the global model).
  absl::Status CheckRound(uint64_t round_id, uint64_t version, RoundPhase phase) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction, but model_ (the driver thread's).
  const Options options_;
  ModelRegistry* const registry_;
  RoundLedger* const ledger_;
  const UpdateSpec spec_;
  const uint64_t model_bytes_;  // the model's wire encoding
  // The task's kind and model config, with the schema for declaration tasks.
  const task::ModelSpec model_spec_;
  const std::unique_ptr<Clock> owned_clock_;  // when Options::clock is null
  Clock* const clock_;
  // The wire files, the server strategy and the candidate's weights (driver
  // thread only; Create uses it before the driver starts).
  ServerModel model_;
  // What every manifest of the task states (after model_: it names the
  // strategy).
  const ManifestTemplate manifests_;

  mutable absl::Mutex mu_;
  absl::CondVar changed_;  // Signalled on every phase change.
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<const ModelSnapshot> global_ ABSL_GUARDED_BY(mu_);
  // The "privacy" block of global_'s manifest, read once per version
  // (SetGlobal): aggregation, every upload's privacy check and the status use it.
  std::string global_privacy_json_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const ModelSnapshot> candidate_ ABSL_GUARDED_BY(mu_);
  NodeRoster roster_ ABSL_GUARDED_BY(mu_);
  RoundState round_ ABSL_GUARDED_BY(mu_);
  uint32_t rounds_completed_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t rounds_aborted_ ABSL_GUARDED_BY(mu_) = 0;
  // Why no round opens (storage cannot record one); empty otherwise.
  std::string blocked_reason_ ABSL_GUARDED_BY(mu_);
  std::optional<v1::EvaluationMetrics> latest_metrics_ ABSL_GUARDED_BY(mu_);
  // The median reported PR-AUC of the version published by this process
  // (publish_gate.max_pr_auc_drop); none after a restart until a round
  // publishes.
  std::optional<double> published_median_pr_auc_ ABSL_GUARDED_BY(mu_);
  // Which version is released (the best on validation so far).
  ReleaseChoice release_ ABSL_GUARDED_BY(mu_);
  // Mode DP_SGD: each row count's DP-SGD plan (σ calibrated once).
  std::map<uint64_t, privacy::DpSgdPlan> plans_by_rows_ ABSL_GUARDED_BY(mu_);
  // Per administration, of the same round (by node).
  std::vector<v1::NodeSelectionEvaluation> latest_selection_evaluations_ ABSL_GUARDED_BY(mu_);

  // Serializes Add and Finish on the aggregator; taken before mu_ when both
  // are needed.
  absl::Mutex fold_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  // The open round's aggregator, from the start of training until it closes.
  // Shared so that an upload can be validated (Aggregator::Validate is
  // thread-safe) without holding either lock.
  std::shared_ptr<Aggregator> aggregator_ ABSL_GUARDED_BY(mu_);

  std::thread driver_;
};

}  // namespace fedcustoms::coordinator
