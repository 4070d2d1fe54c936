#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "common/task/task_model.h"
#include "coordinator/aggregation/fed_avg.h"
#include "coordinator/aggregation/masked_sum.h"
#include "coordinator/aggregation/robust_aggregator.h"
#include "coordinator/ledger/round_ledger.h"
#include "coordinator/registry/model_registry.h"
#include "coordinator/rounds/model_snapshot.h"
#include "coordinator/rounds/secure_round.h"
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
//                update is folded into FedAvg as it arrives (mode SECURE: the
//                masked input is added to a MaskedSum, then unmasking reveals
//                only the sum, which is decoded into FedAvg)
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
    // Tests only: sees every input handed to the aggregator, just before it
    // is folded (a masked vector in mode SECURE).
    std::function<void(const std::string& node, const TensorSource& input)> aggregator_input_tap;
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
  const std::string& feature_schema_hash() const { return feature_schema_hash_; }

  // A node joined (its feature schema already checked): it counts as
  // available for a while, and the training rows it declared bound the sample
  // count of its updates. Nodes join again after a coordinator restart.
  void Join(const std::string& node, uint64_t train_rows);
  // Whether `node` joined since this coordinator started.
  bool HasJoined(const std::string& node) const;

  // Long-poll: the node's next assignment, waiting up to `wait` for one.
  v1::TaskAssignment NextAssignment(const std::string& node, std::chrono::milliseconds wait);

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
  absl::Status Unmask(const std::string& node, const v1::UnmaskRequest& request);

  // Metrics of the candidate on a participant's hold-out.
  absl::Status ReportMetrics(const std::string& node, uint64_t round_id, uint64_t version,
                             const v1::EvaluationMetrics& metrics);

  v1::TaskStatus Status() const;
  std::set<std::string> AvailableNodes() const;

  // Maximum bytes an upload for this task may have (derived from the model).
  // An upload is the update's encoding; anything much larger is hostile.
  uint64_t MaxUploadBytes() const { return model_bytes_ * 2 + (1 << 20); }

 private:
  enum class Phase {
    kGathering,
    kAdvertising,
    kSharing,
    kTraining,
    kUnmasking,
    kAggregating,
    kEvaluating,
    kFinished
  };
  static const char* PhaseName(Phase phase);
  using Clock = std::chrono::steady_clock;

  TaskRunner(Options options, ModelRegistry* registry, RoundLedger* ledger,
             const crypto::Ed25519Signer* signer, UpdateSpec spec, uint64_t model_bytes);

  void DriverLoop();
  // Each returns with mu_ held, after the phase it drives is over.
  void Gather(std::unique_lock<std::mutex>& lock) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Mode SECURE, before training: the two key phases. False if the round
  // aborted (or the runner is stopping).
  bool ExchangeKeys(std::unique_lock<std::mutex>& lock) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Train(std::unique_lock<std::mutex>& lock) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Mode SECURE, after training: collects the unmasking shares, removes the
  // masks and decodes the weighted mean into a FedAvg.
  absl::StatusOr<std::unique_ptr<FedAvg>> UnmaskAndDecode(std::unique_lock<std::mutex>& lock,
                                                          std::unique_ptr<MaskedSum> masked)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool secure() const { return options_.mode == v1::SECURE; }
  // A rule that looks at each update (mode TRUSTED only; the config refuses
  // it in mode SECURE).
  bool robust() const {
    const v1::RobustAggregationConfig& r = options_.config.robust_aggregation();
    return !secure() && (r.kind() != v1::RobustAggregationConfig::MEAN || r.norm_bound() > 0);
  }
  // Waits for `done` until a deadline `seconds` from now, in `phase`.
  void RunPhase(std::unique_lock<std::mutex>& lock, Phase phase, uint32_t seconds,
                const std::function<bool()>& done) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Evaluate(std::unique_lock<std::mutex>& lock) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AbortRound(const std::string& reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sets the phase of the open round, wakes the waiters and follows it in
  // the ledger (so a restart knows where the round was interrupted).
  void EnterPhase(Phase phase) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether the registry, the model directory and the upload spool can take
  // a round of `nodes` nodes (crypto::CheckWritableSpace).
  absl::Status CheckStorage(size_t nodes) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records in the ledger what became of rounds a previous run opened and
  // never finished: completed when their version reached the registry,
  // aborted otherwise. Called by Create.
  absl::Status RecordInterruptedRounds() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::set<std::string> AvailableLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool RoundsDone() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckRound(uint64_t round_id, uint64_t version, Phase phase) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The round and phase part of CheckRound (secure steps carry no version).
  absl::Status CheckPhase(uint64_t round_id, Phase phase) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes the wire file of `tensors` as version manifest.version, then
  // publishes the version to the registry (publish) or only signs the manifest
  // (a candidate).
  absl::StatusOr<std::shared_ptr<const ModelSnapshot>> MakeSnapshot(
      manifest::ModelManifest manifest, const tensor::NamedTensors& tensors, bool publish);
  // The snapshot of registry version `version` (the latest), its wire file
  // reused when it still matches the signed manifest and rebuilt otherwise.
  absl::StatusOr<std::shared_ptr<const ModelSnapshot>> ResumeSnapshot(
      uint64_t version, const tensor::NamedTensors& fresh);
  std::string WirePath(uint64_t version) const;
  // Deletes every wire file but version `keep`'s (candidates of aborted
  // rounds, superseded globals, leftovers of a crash).
  void RemoveStaleWireFiles(uint64_t keep) const;
  manifest::ModelManifest ManifestTemplate(uint64_t version) const;
  // Puts the server strategy into the state saved with registry `version`
  // (its initial state when that version was made by another strategy or
  // saved none). Fails when the saved state is damaged or does not fit.
  absl::Status RestoreServerState(uint64_t version);

  // Constant after construction.
  const Options options_;
  ModelRegistry* const registry_;
  RoundLedger* const ledger_;
  const crypto::Ed25519Signer* const signer_;
  const UpdateSpec spec_;
  const uint64_t model_bytes_;  // the model's wire encoding
  // The task's kind and model config, with the schema for declaration tasks.
  const task::ModelSpec model_spec_;
  // Hash of the model's input (task::InputHash); nodes must match it.
  const std::string feature_schema_hash_;

  mutable std::mutex mu_;
  std::condition_variable changed_;  // Signalled on every phase change.
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  Phase phase_ ABSL_GUARDED_BY(mu_) = Phase::kGathering;
  std::shared_ptr<const ModelSnapshot> global_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const ModelSnapshot> candidate_ ABSL_GUARDED_BY(mu_);
  uint64_t round_id_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, Clock::time_point> last_seen_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t> declared_train_rows_ ABSL_GUARDED_BY(mu_);  // by Join
  std::set<std::string> selected_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> uploading_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t> submitted_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, v1::EvaluationMetrics> reported_ ABSL_GUARDED_BY(mu_);
  uint32_t rejected_updates_ ABSL_GUARDED_BY(mu_) = 0;
  RoundRecord record_ ABSL_GUARDED_BY(mu_);
  uint32_t rounds_completed_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t rounds_aborted_ ABSL_GUARDED_BY(mu_) = 0;
  // Why no round opens (storage cannot record one); empty otherwise.
  std::string blocked_reason_ ABSL_GUARDED_BY(mu_);
  std::optional<v1::EvaluationMetrics> latest_metrics_ ABSL_GUARDED_BY(mu_);
  // Per administration, of the same round (reported_ is ordered by node).
  std::vector<v1::NodeSelectionEvaluation> latest_selection_evaluations_ ABSL_GUARDED_BY(mu_);
  Clock::time_point phase_deadline_ ABSL_GUARDED_BY(mu_);
  // Mode SECURE: the open round's protocol state and the parameters sent to
  // the nodes with every secure assignment.
  std::unique_ptr<SecureRound> secure_round_ ABSL_GUARDED_BY(mu_);
  v1::SecureRound secure_params_ ABSL_GUARDED_BY(mu_);

  // The candidate's tensors from aggregation until they are published or the
  // round aborts (driver thread only): the only full model the coordinator
  // holds in memory.
  tensor::NamedTensors candidate_tensors_;

  // The server strategy (driver thread only; Create before the driver
  // starts). optimizer_stepped_: it stepped for a candidate not yet published.
  std::unique_ptr<ServerOptimizer> optimizer_;
  bool optimizer_stepped_ = false;

  // Serializes folding into the sum; taken before mu_ when both are needed.
  std::mutex fold_mu_;
  std::unique_ptr<FedAvg> fed_avg_ ABSL_GUARDED_BY(fold_mu_);           // mode TRUSTED, MEAN
  std::unique_ptr<RobustAggregator> robust_ ABSL_GUARDED_BY(fold_mu_);  // mode TRUSTED, robust
  std::unique_ptr<MaskedSum> masked_sum_ ABSL_GUARDED_BY(fold_mu_);     // mode SECURE

  std::thread driver_;
};

}  // namespace fedcustoms::coordinator
