#include "coordinator/rounds/task_runner.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/boosting/masked_vector.h"
#include "common/io/atomic_file.h"
#include "common/log/logging.h"
#include "common/metrics/binary_metrics.h"
#include "common/models/boosted_trees_state.h"
#include "common/privacy/privacy_config.h"
#include "common/secagg/secagg_messages.h"
#include "common/task/risk_task.h"
#include "common/tensor/tensor_codec.h"
#include "coordinator/aggregation/mean_update.h"
#include "coordinator/rounds/assignment.h"
#include "coordinator/rounds/metrics_check.h"
#include "coordinator/rounds/privacy_block.h"
#include "coordinator/rounds/round_history.h"
#include "coordinator/rounds/update_header_check.h"

namespace fedcustoms::coordinator {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// How often a round that storage could not record is tried again.
constexpr seconds kStorageRetry(10);

double UnixNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

absl::StatusOr<std::unique_ptr<TaskRunner>> TaskRunner::Create(
    Options options, ModelRegistry* registry, RoundLedger* ledger,
    const crypto::Ed25519Signer* signer) {
  const std::string& task = options.config.name();
  absl::StatusOr<tensor::NamedTensors> fresh = task::InitialState(
      task::SpecOf(options.config, options.schema), options.config.training().seed());
  if (!fresh.ok()) return fresh.status();
  UpdateSpec spec = UpdateSpec::Of(*fresh);
  const uint64_t model_bytes = tensor::TensorEncoder(*fresh).TotalBytes();

  std::error_code ec;
  std::filesystem::create_directories(options.models_dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot create ", options.models_dir, ": ", ec.message()));
  }
  std::unique_ptr<TaskRunner> runner(
      new TaskRunner(std::move(options), registry, ledger, signer, std::move(spec), model_bytes));

  absl::StatusOr<std::shared_ptr<const ModelSnapshot>> global =
      runner->model_.Open(*fresh, runner->manifests_.For(0));
  if (!global.ok()) return global.status();

  absl::StatusOr<RoundHistory> history = RecoverRoundHistory(task, **global, *ledger, *registry);
  if (!history.ok()) return history.status();
  absl::MutexLock lock(&runner->mu_);
  runner->SetGlobal(*std::move(global));
  runner->round_.id = history->last_round_id;
  runner->rounds_completed_ = history->rounds_completed;
  runner->rounds_aborted_ = history->rounds_aborted;
  runner->latest_metrics_ = std::move(history->latest_metrics);
  runner->latest_selection_evaluations_ = std::move(history->latest_selection_evaluations);
  return runner;
}

TaskRunner::TaskRunner(Options options, ModelRegistry* registry, RoundLedger* ledger,
                       const crypto::Ed25519Signer* signer, UpdateSpec spec, uint64_t model_bytes)
    : options_(std::move(options)),
      registry_(registry),
      ledger_(ledger),
      spec_(std::move(spec)),
      model_bytes_(model_bytes),
      model_spec_(task::SpecOf(options_.config, options_.schema)),
      owned_clock_(options_.clock == nullptr ? std::make_unique<SteadyClock>() : nullptr),
      clock_(options_.clock == nullptr ? owned_clock_.get() : options_.clock),
      model_(options_.config, spec_, options_.models_dir, registry, signer),
      manifests_(options_.config, model_spec_, options_.mode, model_.strategy()),
      roster_(options_.config.max_train_rows(), {options_.config.max_train_rows_by_node().begin(),
                                                 options_.config.max_train_rows_by_node().end()}) {}

TaskRunner::~TaskRunner() { Stop(); }

void TaskRunner::Start() {
  driver_ = std::thread([this] { DriverLoop(); });
}

void TaskRunner::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  changed_.SignalAll();
  if (driver_.joinable()) driver_.join();
}

absl::Status TaskRunner::Join(const std::string& node, uint64_t train_rows, uint64_t holdout_rows) {
  {
    absl::MutexLock lock(&mu_);
    if (absl::Status s = roster_.Join(node, train_rows, clock_->Now(), holdout_rows); !s.ok()) {
      return s;
    }
  }
  changed_.SignalAll();
  return absl::OkStatus();
}

bool TaskRunner::HasJoined(const std::string& node) const {
  absl::MutexLock lock(&mu_);
  return roster_.HasJoined(node);
}

std::set<std::string> TaskRunner::AvailableNodes() const {
  absl::MutexLock lock(&mu_);
  return roster_.Available(clock_->Now());
}

bool TaskRunner::RoundsDone() const {
  return (options_.config.rounds() > 0 && rounds_completed_ >= options_.config.rounds()) ||
         EarlyStopped();
}

bool TaskRunner::EarlyStopped() const {
  const uint32_t patience = options_.config.early_stopping_rounds();
  return patience > 0 && release_.released_version() > 0 &&
         release_.rounds_without_improvement() >= patience;
}

void TaskRunner::DriverLoop() {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    if (RoundsDone()) {
      round_.phase = RoundPhase::kFinished;
      changed_.SignalAll();
      if (EarlyStopped()) {
        spdlog::info(
            "task {}: early stopping: version {} is still the best on validation after {} more "
            "rounds with validation figures; it stays released",
            name(), release_.released_version(), release_.rounds_without_improvement());
      } else {
        spdlog::info("task {}: all {} rounds done", name(), options_.config.rounds());
      }
      while (!stopping_) changed_.Wait(&mu_);
      break;
    }
    Gather();
    if (stopping_) break;
    // An exception in a round (allocation failure, a torch error) aborts the
    // round, never the coordinator; the global model stays as it was.
    try {
      if (boosted_trees()) {
        Boost();
      } else {
        if (secure() && !ExchangeKeys()) continue;
        Train();
      }
      if (stopping_ || round_.phase != RoundPhase::kEvaluating) continue;
      Evaluate();
    } catch (const std::exception& e) {
      AbortRound(absl::StrCat("internal error: ", e.what()));
    }
  }
}

void TaskRunner::Gather() {
  round_.phase = RoundPhase::kGathering;
  changed_.SignalAll();
  const uint32_t min_nodes = options_.config.min_nodes();
  while (!stopping_) {
    // Availability also ends by time (kAvailableWindow): look again soon.
    clock_->WaitUntil(changed_, mu_, clock_->Now() + milliseconds(250),
                      [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
                        return stopping_ || roster_.Available(clock_->Now()).size() >= min_nodes;
                      });
    if (stopping_ || roster_.Available(clock_->Now()).size() < min_nodes) continue;
    // Give nodes that are about to poll a moment to be counted too.
    clock_->WaitUntil(changed_, mu_, clock_->Now() + seconds(options_.config.gather_seconds()),
                      [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; });
    if (stopping_) return;
    std::set<std::string> available =
        roster_.Select(roster_.Available(clock_->Now()), options_.config.max_nodes());
    if (available.size() < min_nodes) continue;
    RoundRecord record;
    record.task = name();
    record.round_id = round_.id + 1;
    record.base_version = global_->version;
    record.mode = AggregationModeName(options_.mode);
    record.strategy = model_.strategy();
    record.selected_nodes = static_cast<uint32_t>(available.size());
    record.opened_at = UnixNow();
    // A round opens only where it can be recorded: space for its version in
    // the registry, its uploads and candidate in the state directory, and
    // its row in the ledger. Otherwise nothing changes and it is tried again.
    absl::Status recordable = CheckStorage(available.size());
    if (recordable.ok()) {
      recordable =
          ledger_->OpenRecord(record, RoundPhaseName(boosted_trees() ? RoundPhase::kBoosting
                                                     : secure()      ? RoundPhase::kAdvertising
                                                                     : RoundPhase::kTraining));
    }
    if (!recordable.ok()) {
      if (blocked_reason_ != recordable.message()) {
        spdlog::error(
            "task {}: round {} not opened, the model stays at version {}: {}; trying "
            "again every {} s",
            name(), record.round_id, global_->version, recordable.message(), kStorageRetry.count());
      }
      blocked_reason_ = std::string(recordable.message());
      clock_->WaitUntil(changed_, mu_, clock_->Now() + kStorageRetry,
                        [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; });
      continue;
    }
    if (!blocked_reason_.empty()) {
      spdlog::info("task {}: storage can record rounds again", name());
      blocked_reason_.clear();
    }
    // Under DP-SGD too each administration weighs its training rows: the
    // count it declared at join, which also sets its sampling rate; the
    // accountant takes it as public, as Opacus and TF-Privacy do (see
    // docs/privacy.md). Equal weights would let the noisiest update, the
    // smallest administration's, count as much as the largest's.
    std::map<std::string, uint64_t> weights = roster_.RowsOf(available);
    round_.Open(std::move(weights), std::move(record));
    return;
  }
}

absl::Status TaskRunner::CheckStorage(size_t nodes) const {
  if (absl::Status s = model_.store().CheckSpaceForVersion(model_bytes_); !s.ok()) return s;
  constexpr uint64_t kMargin = 1 << 20;
  if (absl::Status s = io::CheckWritableSpace(options_.spool_dir, nodes * model_bytes_ + kMargin);
      !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("upload spool: ", s.message()));
  }
  return absl::OkStatus();
}

void TaskRunner::EnterPhase(RoundPhase phase) {
  round_.phase = phase;
  changed_.SignalAll();
  if (absl::Status s = ledger_->SetPhase(name(), round_.id, RoundPhaseName(phase)); !s.ok()) {
    spdlog::error("task {}: {}", name(), s.message());
  }
}

void TaskRunner::Train() {
  if (!OpenTraining()) return;
  const auto opened = clock_->Now();
  spdlog::info("task {}: round {} open with {} nodes on model version {}, deadline {} s", name(),
               round_.id, round_.selected.size(), global_->version,
               options_.config.round_deadline_seconds());
  clock_->WaitUntil(changed_, mu_, round_.deadline, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ ||
           (round_.submitted.size() == round_.selected.size() && round_.uploading.empty());
  });
  if (stopping_) return;
  EnterPhase(RoundPhase::kAggregating);
  round_.record.train_seconds = std::chrono::duration<double>(clock_->Now() - opened).count();

  // Wait for a fold that began before the close; it still counts.
  std::shared_ptr<Aggregator> aggregator;
  mu_.Unlock();  // fold_mu_ is taken before mu_
  {
    absl::MutexLock fold_lock(&fold_mu_);
    mu_.Lock();
    aggregator = std::move(aggregator_);
  }
  round_.uploading.clear();
  if (secure()) {
    absl::Status taken =
        aggregator ? TakeOutDroppedInputs(*aggregator) : absl::InternalError("no aggregator");
    DiscardKeptInputs();
    if (!taken.ok()) {
      AbortRound(std::string(taken.message()));
      return;
    }
  }
  const uint32_t min_nodes = options_.config.min_nodes();
  round_.record.participants = static_cast<uint32_t>(round_.submitted.size());
  round_.record.dropped = round_.record.selected_nodes - round_.record.participants;
  round_.record.rejected_updates = round_.rejected_updates;
  if (round_.submitted.size() < min_nodes) {
    AbortRound(absl::StrCat("only ", round_.submitted.size(), " of ", round_.selected.size(),
                            " selected nodes sent a valid update by the deadline; min_nodes is ",
                            min_nodes));
    return;
  }
  if (secure()) {
    if (absl::Status s = CollectUnmaskingShares(); !s.ok()) {
      if (!stopping_) AbortRound(std::string(s.message()));
      return;
    }
  }
  Aggregate(std::move(aggregator));
}

bool TaskRunner::OpenTraining() {
  AggregatorOptions options;
  options.spec = spec_;
  options.robust = options_.config.robust_aggregation();
  options.capacity = static_cast<uint32_t>(round_.selected.size());
  if (secure()) {
    options.secure_params = round_.secure_params;
    // Called by Finish on the driver thread, before the round is replaced.
    const SecureRound* round = round_.secure.get();
    options.unmask = [round](std::vector<uint32_t> sum) { return round->Unmask(std::move(sum)); };
  }
  aggregator_.reset();  // the old sum goes first: never two in memory
  // The running sum (one model of float32; all updates for a robust rule) is
  // allocated before the round opens, here where a failure aborts the round.
  // No fold can run outside the training phase; fold_mu_ is still taken in
  // its documented order.
  absl::StatusOr<std::unique_ptr<Aggregator>> made = Unlocked([&] {
    absl::MutexLock fold_lock(&fold_mu_);
    return MakeAggregator(AggregatorKindOf(options_.mode, options_.config.robust_aggregation()),
                          std::move(options));
  });
  if (!made.ok()) {
    AbortRound(std::string(made.status().message()));
    return false;
  }
  aggregator_ = *std::move(made);
  EnterPhase(RoundPhase::kTraining);
  round_.deadline = clock_->Now() + seconds(options_.config.round_deadline_seconds());
  changed_.SignalAll();
  return true;
}

void TaskRunner::Aggregate(std::shared_ptr<Aggregator> aggregator) {
  const auto aggregate_start = clock_->Now();
  std::shared_ptr<const ModelSnapshot> base = global_;
  manifest::ModelManifest m = manifests_.For(base->version + 1);
  m.round_id = round_.id;
  m.contributing_nodes = round_.record.participants;
  std::map<std::string, v1::PrivacySpent> reports;
  for (const auto& [node, samples] : round_.submitted) {
    if (auto it = round_.privacy_reports.find(node); it != round_.privacy_reports.end()) {
      reports.insert(*it);
    }
  }
  m.privacy_json =
      PrivacyBlock(options_.config.privacy(), base->version, global_privacy_json_, reports);
  // No upload can reach the aggregator any more (the phase moved on) and only
  // this thread replaces the round: the heavy part runs without the lock.
  absl::StatusOr<std::shared_ptr<const ModelSnapshot>> candidate = Unlocked([&] {
    absl::StatusOr<std::shared_ptr<const ModelSnapshot>> made =
        model_.MakeCandidate(*aggregator, *base, m);
    aggregator.reset();
    return made;
  });
  round_.record.aggregate_seconds =
      std::chrono::duration<double>(clock_->Now() - aggregate_start).count();
  round_.record.samples = m.total_samples;
  if (!candidate.ok()) {
    AbortRound(std::string(candidate.status().message()));
    return;
  }
  round_.secure.reset();  // the revealed shares go with it
  candidate_ = *std::move(candidate);
  spdlog::info("task {}: round {} aggregated {} updates ({} samples) into candidate version {}",
               name(), round_.id, round_.record.participants, round_.record.samples,
               candidate_->version);
  OpenEvaluation();
}

void TaskRunner::OpenEvaluation() {
  round_.evaluators.clear();
  for (const auto& [node, samples] : round_.submitted) round_.evaluators.insert(node);
  for (const std::string& node : roster_.EvaluatingOnly(clock_->Now())) {
    round_.evaluators.insert(node);
  }
  EnterPhase(RoundPhase::kEvaluating);
  round_.deadline = clock_->Now() + seconds(options_.config.eval_deadline_seconds());
  changed_.SignalAll();
}

void TaskRunner::Boost() {
  BoostingSession::Options o;
  o.task = name();
  o.round_id = round_.id;
  o.secure = secure();
  o.config = model_spec_.risk.trees();
  int64_t numeric = 0;
  task::FeatureWidths(model_spec_.schema, &numeric, &o.categorical_buckets);
  o.numeric_width = static_cast<size_t>(numeric);
  o.verifier = options_.key_verifier;
  o.min_members = std::max<uint32_t>(options_.config.min_nodes(), 1);
  if (round_.selected.size() > boosting::kMaxMembers) {
    AbortRound(absl::StrCat(round_.selected.size(),
                            " nodes selected; a boosting session sums at most ",
                            boosting::kMaxMembers));
    return;
  }
  round_.boosting = std::make_unique<BoostingSession>(o, round_.selected);
  round_.boosting_crl_pem = options_.crl_pem ? options_.crl_pem() : "";
  const auto opened = clock_->Now();
  spdlog::info("task {}: round {} boosting with {} nodes, mode {}", name(), round_.id,
               round_.selected.size(), AggregationModeName(options_.mode));
  EnterPhase(RoundPhase::kBoosting);
  const seconds step_time(o.config.step_deadline_seconds());
  while (!round_.boosting->done()) {
    round_.deadline = clock_->Now() + step_time;
    changed_.SignalAll();
    clock_->WaitUntil(changed_, mu_, round_.deadline, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stopping_ || round_.boosting->StepComplete();
    });
    if (stopping_) return;
    BoostingSession& session = *round_.boosting;
    absl::Status s = session.StepComplete() ? session.Advance() : session.CloseStepIncomplete();
    if (!s.ok()) {
      AbortRound(absl::StrCat("boosting session: ", s.message()));
      return;
    }
    if (!session.ended_early().empty()) {
      spdlog::warn("task {}: round {}: {}", name(), round_.id, session.ended_early());
      round_.record.reason = session.ended_early();
    }
  }
  round_.record.train_seconds = std::chrono::duration<double>(clock_->Now() - opened).count();
  const BoostingSession& session = *round_.boosting;
  for (const std::string& node : session.members()) round_.submitted[node] = round_.RowsOf(node);
  round_.record.participants = static_cast<uint32_t>(session.members().size());
  round_.record.dropped = round_.record.selected_nodes - round_.record.participants;
  manifest::ModelManifest m = manifests_.For(global_->version + 1);
  m.round_id = round_.id;
  m.contributing_nodes = round_.record.participants;
  for (const auto& [node, rows] : round_.submitted) m.total_samples += rows;
  round_.record.samples = m.total_samples;
  tensor::NamedTensors state = models::BoostedTreesState(session.ensemble());
  const size_t trees = session.ensemble().trees.size();
  round_.boosting.reset();
  absl::StatusOr<std::shared_ptr<const ModelSnapshot>> candidate =
      Unlocked([&] { return model_.MakeCandidateFromState(std::move(state), m); });
  if (!candidate.ok()) {
    AbortRound(std::string(candidate.status().message()));
    return;
  }
  candidate_ = *std::move(candidate);
  spdlog::info("task {}: round {} grew {} trees with {} nodes into candidate version {}", name(),
               round_.id, trees, round_.record.participants, candidate_->version);
  OpenEvaluation();
}

absl::Status TaskRunner::BoostingStep(const std::string& node, uint64_t round_id,
                                      const std::function<absl::Status(BoostingSession&)>& step) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = round_.CheckPhase(name(), round_id, RoundPhase::kBoosting); !s.ok()) {
    return s;
  }
  if (!round_.boosting) return absl::FailedPreconditionError("the round has no boosting session");
  absl::Status s = step(*round_.boosting);
  if (s.ok()) changed_.SignalAll();
  return s;
}

absl::Status TaskRunner::AdvertiseBoostingKey(const std::string& node,
                                              const v1::AdvertiseBoostingKeyRequest& request) {
  return BoostingStep(node, request.round_id(), [&](BoostingSession& session) {
    return session.AdvertiseKey(node, request.key());
  });
}

absl::Status TaskRunner::SubmitBoostingVector(const std::string& node,
                                              const v1::SubmitBoostingVectorRequest& request) {
  return BoostingStep(node, request.round_id(),
                      [&](BoostingSession& session) { return session.Submit(node, request); });
}

void TaskRunner::Evaluate() {
  const auto start = clock_->Now();
  // The contributors' reports decide; nodes that only evaluate (their
  // privacy budget is spent) get a few more seconds, and their reports are
  // information only: a node that stopped training cannot sway the gate, nor
  // hold the round by staying silent.
  auto contributors_reported = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (const auto& [node, samples] : round_.submitted) {
      if (!round_.reported.contains(node)) return false;
    }
    return true;
  };
  clock_->WaitUntil(changed_, mu_, round_.deadline, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || contributors_reported();
  });
  if (stopping_) return;
  clock_->WaitUntil(changed_, mu_, std::min(round_.deadline, clock_->Now() + seconds(5)),
                    [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
                      return stopping_ || round_.reported.size() == round_.evaluators.size();
                    });
  if (stopping_) return;
  round_.record.eval_seconds = std::chrono::duration<double>(clock_->Now() - start).count();
  std::map<std::string, v1::EvaluationMetrics> contributors;
  for (const auto& [node, m] : round_.reported) {
    if (round_.submitted.contains(node)) {
      contributors.emplace(node, m);
    } else {
      spdlog::info("task {}: round {}: {} (evaluating only) reports PR-AUC {:.4f} on {} rows",
                   name(), round_.id, node, m.pr_auc(), m.examples());
    }
  }
  RoundMetrics metrics = SummarizeReports(round_.id, contributors);
  if (absl::Status s = CheckEvaluation(metrics, contributors.size(), round_.submitted.size(),
                                       published_median_pr_auc_, options_.config.publish_gate());
      !s.ok()) {
    AbortRound(absl::StrCat("candidate v", candidate_->version, " not published: ", s.message()));
    return;
  }
  round_.record.metrics_json = metrics.mean_json;
  round_.record.selection_evaluations = metrics.selection_records;
  Publish(std::move(metrics));
}

void TaskRunner::Publish(RoundMetrics metrics) {
  std::shared_ptr<const ModelSnapshot> candidate = candidate_;
  const uint64_t round_id = round_.id;
  const std::optional<double> validation_pr_auc = metrics.median_validation_pr_auc;
  const ReleaseChoice::Decision release = release_.Decide(candidate->version, validation_pr_auc);
  absl::StatusOr<std::shared_ptr<const ModelSnapshot>> published = Unlocked([&] {
    if (absl::Status s = ledger_->SetPhase(name(), round_id, "publishing"); !s.ok()) {
      spdlog::error("task {}: {}", name(), s.message());
    }
    return model_.Publish(*candidate, metrics.mean_json, release.release_json);
  });

  if (!published.ok()) {
    AbortRound(absl::StrCat("cannot publish version ", candidate->version, ": ",
                            published.status().message()));
    return;
  }
  {
    absl::StatusOr<manifest::ModelManifest> m =
        manifest::ParseManifest((*published)->manifest.json, "published manifest");
    release_.Accept(release, (*published)->version, m.ok() ? m->weights_sha256 : "");
  }
  SetGlobal(*std::move(published));
  latest_metrics_ = std::move(metrics.mean);
  published_median_pr_auc_ = metrics.median_pr_auc;
  latest_selection_evaluations_ = std::move(metrics.selection_evaluations);
  candidate_.reset();
  round_.record.result_version = global_->version;
  spdlog::info(
      "task {}: round {} published version {} ({} of {} nodes reported metrics); released: "
      "version {}",
      name(), round_.id, global_->version, round_.reported.size(), round_.evaluators.size(),
      release_.released_version());
  CloseRound("completed");
}

void TaskRunner::CloseRound(const char* status) {
  round_.record.status = status;
  if (absl::Status s = ledger_->Record(round_.record); !s.ok()) {
    spdlog::error("task {}: round {}: {}", name(), round_.id, s.message());
  }
  if (round_.record.status == "completed") {
    ++rounds_completed_;
  } else {
    ++rounds_aborted_;
  }
  round_.phase = RoundPhase::kGathering;
  changed_.SignalAll();
}

void TaskRunner::AbortRound(const std::string& reason) {
  // Evaluations of a model that was never published are not kept.
  round_.record.selection_evaluations.clear();
  spdlog::warn("task {}: round {} aborted: {}; model stays at version {}", name(), round_.id,
               reason, global_->version);
  candidate_.reset();
  round_.secure.reset();
  round_.boosting.reset();  // its running sum goes with it
  DiscardKeptInputs();
  model_.Discard(global_->version);
  // Nodes dropped earlier in the round stay on record after the cause.
  round_.record.reason =
      round_.record.reason.empty() ? reason : absl::StrCat(reason, "; ", round_.record.reason);
  CloseRound("aborted");
}

v1::TaskAssignment TaskRunner::NextAssignment(const std::string& node, milliseconds wait,
                                              const std::string& training_declined) {
  absl::MutexLock lock(&mu_);
  roster_.Seen(node, clock_->Now());
  roster_.SetTrainingDeclined(node, training_declined);
  changed_.SignalAll();
  v1::TaskAssignment a;
  clock_->WaitUntil(changed_, mu_, clock_->Now() + wait, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    a = AssignmentFor(
        round_, node,
        AssignmentContext{options_.config, model_spec_, *global_, candidate_.get(), clock_->Now()});
    return stopping_ || a.kind() != v1::TaskAssignment::WAIT;
  });
  if (options_.assignment_tap) options_.assignment_tap(node, a);
  return a;
}

absl::Status TaskRunner::CheckRound(uint64_t round_id, uint64_t version, RoundPhase phase) const {
  if (absl::Status s = round_.CheckPhase(name(), round_id, phase); !s.ok()) return s;
  const uint64_t expected =
      phase == RoundPhase::kEvaluating ? candidate_->version : global_->version;
  if (version != expected) {
    return absl::FailedPreconditionError(absl::StrCat("round ", round_id, " of task ", name(),
                                                      " uses model version ", expected, ", not ",
                                                      version));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const ModelSnapshot>> TaskRunner::ModelForDownload(
    const std::string& node, uint64_t round_id, uint64_t version) {
  absl::MutexLock lock(&mu_);
  roster_.Seen(node, clock_->Now());
  if (round_.phase == RoundPhase::kEvaluating) {
    if (absl::Status s = CheckRound(round_id, version, RoundPhase::kEvaluating); !s.ok()) return s;
    if (!round_.evaluators.count(node)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "node ", node, " is not an evaluator of round ", round_id, " and does not evaluate it"));
    }
    return candidate_;
  }
  if (absl::Status s = CheckRound(round_id, version, RoundPhase::kTraining); !s.ok()) return s;
  if (!round_.selected.count(node)) {
    return absl::FailedPreconditionError(
        absl::StrCat("node ", node, " is not selected for round ", round_id));
  }
  return global_;
}

absl::Status TaskRunner::BeginUpload(const std::string& node, const v1::UpdateHeader& header) {
  absl::MutexLock lock(&mu_);
  roster_.Seen(node, clock_->Now());
  // A duplicate is named as such even after the round has moved on to
  // aggregation or evaluation, so the node's log says what really happened.
  const bool round_open = round_.phase == RoundPhase::kTraining ||
                          round_.phase == RoundPhase::kAggregating ||
                          round_.phase == RoundPhase::kEvaluating;
  if (round_open && header.round_id() == round_.id && round_.submitted.count(node)) {
    return absl::AlreadyExistsError(
        absl::StrCat("node ", node, " already sent its update for round ", header.round_id()));
  }
  if (round_open && header.round_id() == round_.id && round_.secure != nullptr) {
    if (auto it = round_.secure->dropped().find(node); it != round_.secure->dropped().end()) {
      return absl::PermissionDeniedError(
          absl::StrCat("node ", node, " was dropped from round ", round_.id, ": ", it->second));
    }
  }
  if (absl::Status s = CheckRound(header.round_id(), header.model_version(), RoundPhase::kTraining);
      !s.ok()) {
    return s;
  }
  if (!round_.selected.count(node)) {
    return absl::FailedPreconditionError(
        absl::StrCat("node ", node, " is not selected for round ", header.round_id()));
  }
  if (round_.uploading.count(node)) {
    // ABORTED, not ALREADY_EXISTS: the earlier stream may still break (its
    // connection died unseen until the watchdog cuts it), so the node must
    // retry rather than take its update for delivered.
    return absl::AbortedError(absl::StrCat("an upload from node ", node, " for round ",
                                           header.round_id(),
                                           " is already in progress; retry later"));
  }
  absl::Status claims = CheckUpdateHeader(
      name(), node, header, {secure(), options_.config.max_sample_count(), round_.RowsOf(node)});
  if (claims.ok() && privacy::IsDpSgd(options_.config.privacy()))
    claims = CheckPrivacy(node, header);
  if (claims.ok() && !privacy::IsDpSgd(options_.config.privacy()) && header.has_privacy()) {
    claims = CheckPrivacyReport(options_.config.privacy(), node, header);
  }
  if (absl::IsInvalidArgument(claims)) ++round_.rejected_updates;
  if (!claims.ok()) return claims;
  if (header.complaints_size() > 0) {
    if (absl::Status s = JudgeComplaints(node, header); !s.ok()) return s;
  }
  round_.uploading.insert(node);
  if (header.has_privacy()) round_.privacy_reports[node] = header.privacy();
  return absl::OkStatus();
}

absl::Status TaskRunner::JudgeComplaints(const std::string& node, const v1::UpdateHeader& header) {
  if (!secure() || round_.secure == nullptr) {
    return absl::InvalidArgumentError("share complaints belong to secure rounds only");
  }
  // At most one per other member of U2.
  if (static_cast<size_t>(header.complaints_size()) >= round_.secure->u2().size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("node ", node, " sent ", header.complaints_size(),
                     " share complaints; U2 has ", round_.secure->u2().size(), " nodes"));
  }
  for (const v1::ShareComplaint& proto : header.complaints()) {
    absl::StatusOr<secagg::ShareComplaint> complaint = secagg::FromProto(proto);
    if (!complaint.ok()) return complaint.status();
    absl::StatusOr<SecureRound::Verdict> verdict = round_.secure->JudgeComplaint(node, *complaint);
    if (!verdict.ok()) return verdict.status();
    switch (verdict->outcome) {
      case SecureRound::Verdict::kUnproven:
        spdlog::warn("task {}: round {}: {}", name(), round_.id, verdict->reason);
        break;
      case SecureRound::Verdict::kFalse:
        spdlog::warn("task {}: round {}: {}; {} is dropped from the round", name(), round_.id,
                     verdict->reason, node);
        round_.selected.erase(node);
        changed_.SignalAll();
        return absl::PermissionDeniedError(absl::StrCat(
            "round ", round_.id, ": upload refused and ", node, " dropped: ", verdict->reason));
      case SecureRound::Verdict::kProven:
        spdlog::warn("task {}: round {}: {}; {} is dropped from the round", name(), round_.id,
                     verdict->reason, verdict->sender);
        // One that has not uploaded is no longer waited for; one whose input
        // is in the sum is taken out when masking closes.
        if (!round_.submitted.contains(verdict->sender) &&
            !round_.uploading.contains(verdict->sender)) {
          round_.selected.erase(verdict->sender);
        }
        changed_.SignalAll();
        break;
    }
  }
  return absl::OkStatus();
}

void TaskRunner::KeepMaskedInput(const std::string& node, uint64_t round_id,
                                 const std::string& spool_path) {
  const std::string kept = spool_path + ".kept";
  std::error_code ec;
  std::filesystem::rename(spool_path, kept, ec);
  if (ec) {
    // Without it a node dropped later cannot be taken out: that round aborts.
    spdlog::error("task {}: cannot keep the masked input of {}: {}", name(), node, ec.message());
    return;
  }
  absl::MutexLock lock(&mu_);
  // Aggregating too: the driver enters it before it waits for this fold
  // (it holds fold_mu_) and only then takes dropped inputs out.
  if (round_id == round_.id &&
      (round_.phase == RoundPhase::kTraining || round_.phase == RoundPhase::kAggregating)) {
    round_.kept_inputs[node] = kept;
  } else {
    std::filesystem::remove(kept, ec);
  }
}

absl::Status TaskRunner::TakeOutDroppedInputs(Aggregator& aggregator) {
  std::string dropped_text;
  for (const auto& [dropped, reason] : round_.secure->dropped()) {
    absl::StrAppend(&dropped_text, dropped_text.empty() ? "dropped: " : "; ", reason);
    auto submitted = round_.submitted.find(dropped);
    if (submitted == round_.submitted.end()) continue;
    auto kept = round_.kept_inputs.find(dropped);
    if (kept == round_.kept_inputs.end()) {
      return absl::InternalError(absl::StrCat("the masked input of ", dropped,
                                              " was folded before it was dropped and cannot be "
                                              "taken out (it was not kept)"));
    }
    TensorFile input(kept->second);
    if (absl::Status s = aggregator.Remove(input, submitted->second); !s.ok()) {
      return absl::Status(
          s.code(), absl::StrCat("taking out the masked input of ", dropped, ": ", s.message()));
    }
    round_.submitted.erase(submitted);
  }
  round_.record.reason = dropped_text;
  return absl::OkStatus();
}

void TaskRunner::DiscardKeptInputs() {
  for (const auto& [node, path] : round_.kept_inputs) {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
  round_.kept_inputs.clear();
}

std::chrono::steady_clock::time_point TaskRunner::UploadDeadline(uint64_t round_id) const {
  absl::MutexLock lock(&mu_);
  const auto now = std::chrono::steady_clock::now();
  if (round_id != round_.id || round_.phase != RoundPhase::kTraining) return now;
  // In the runner's clock (a fake one in tests): what is left, from now.
  return now + std::max(Clock::time_point::duration::zero(), round_.deadline - clock_->Now());
}

void TaskRunner::AbortUpload(const std::string& node, const v1::UpdateHeader& header) {
  EndUpload(node, header.round_id(), UploadEnd::kRoundClosed);
}

void TaskRunner::EndUpload(const std::string& node, uint64_t round_id, UploadEnd end,
                           uint64_t samples) {
  {
    absl::MutexLock lock(&mu_);
    if (round_id == round_.id) {
      round_.uploading.erase(node);
      if (end == UploadEnd::kRejected) ++round_.rejected_updates;
      if (end == UploadEnd::kFolded) round_.submitted[node] = samples;
      // A node dropped while this upload was in flight is no longer waited
      // for once it ends without its input in the sum.
      if (end != UploadEnd::kFolded && round_.secure != nullptr &&
          round_.secure->dropped().contains(node)) {
        round_.selected.erase(node);
      }
    }
  }
  changed_.SignalAll();
}

absl::Status TaskRunner::FinishUpload(const std::string& node, const v1::UpdateHeader& header,
                                      const std::string& spool_path) {
  TensorFile update(spool_path);
  const uint64_t round_id = header.round_id();
  auto closed = [&] {
    EndUpload(node, round_id, UploadEnd::kRoundClosed);
    return absl::FailedPreconditionError(absl::StrCat(
        "round ", round_id, " closed before the update from ", node, " could be aggregated"));
  };
  std::shared_ptr<Aggregator> aggregator;
  {
    absl::MutexLock lock(&mu_);
    aggregator = aggregator_;
  }
  if (!aggregator) return closed();
  const auto validate_start = std::chrono::steady_clock::now();
  absl::Status valid = aggregator->Validate(update);
  const double validate_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - validate_start).count();
  if (!valid.ok()) {
    EndUpload(node, round_id, UploadEnd::kRejected);
    return absl::InvalidArgumentError(absl::StrCat("update from ", node, " for round ", round_id,
                                                   " rejected: ", valid.message()));
  }
  // The driver takes fold_mu_ before it takes the aggregator away, so while
  // it is held here the aggregator checked below keeps taking updates (an
  // abort after an exception drops it unfolded: the round's sum is lost).
  absl::MutexLock fold_lock(&fold_mu_);
  bool open;
  // The update's weight: its sample count (checked against the node's rows),
  // or in mode SECURE the node's rows as the round opened, public, so that
  // no node can rescale the mean through the count word it masks.
  uint64_t weight = header.sample_count();
  {
    absl::MutexLock lock(&mu_);
    open = CheckRound(round_id, header.model_version(), RoundPhase::kTraining).ok() &&
           aggregator_ == aggregator;
    if (secure()) weight = round_.RowsOf(node);
  }
  if (!open) return closed();
  const auto fold_start = std::chrono::steady_clock::now();
  if (options_.aggregator_input_tap) options_.aggregator_input_tap(node, update);
  absl::Status folded = aggregator->Add(update, weight);
  if (folded.ok() && secure()) KeepMaskedInput(node, round_id, spool_path);
  spdlog::info(
      "task {}: update from {} validated in {:.3f} s, folded in {:.3f} s", name(), node,
      validate_seconds,
      std::chrono::duration<double>(std::chrono::steady_clock::now() - fold_start).count());
  EndUpload(node, round_id, folded.ok() ? UploadEnd::kFolded : UploadEnd::kRejected, weight);
  return folded;
}

absl::Status TaskRunner::ReportMetrics(const std::string& node, uint64_t round_id, uint64_t version,
                                       const v1::EvaluationMetrics& metrics) {
  {
    absl::MutexLock lock(&mu_);
    roster_.Seen(node, clock_->Now());
    if (absl::Status s = CheckRound(round_id, version, RoundPhase::kEvaluating); !s.ok()) return s;
    if (!round_.evaluators.count(node)) {
      return absl::FailedPreconditionError(
          absl::StrCat("node ", node, " is not an evaluator of round ", round_id,
                       " (it neither contributed nor only evaluates) and cannot report on it"));
    }
    if (round_.reported.count(node)) {
      return absl::AlreadyExistsError(
          absl::StrCat("node ", node, " already reported metrics for round ", round_id));
    }
    if (absl::Status s = CheckMetrics(metrics); !s.ok()) return s;
    // The examples weight the round's mean metrics: no more than the node's
    // hold-out.
    if (const uint64_t holdout = roster_.DeclaredHoldout(node);
        holdout > 0 && metrics.examples() > holdout) {
      return absl::InvalidArgumentError(absl::StrCat("metrics: examples ", metrics.examples(),
                                                     " exceed the ", holdout, " hold-out rows ",
                                                     node, " declared at join"));
    }
    // The validation split is carved from the training rows (at most half
    // of them), so it cannot hold more rows than the node trains on.
    if (const std::optional<uint64_t> train = roster_.DeclaredRows(node);
        metrics.has_validation() && train && metrics.validation().examples() > *train) {
      return absl::InvalidArgumentError(
          absl::StrCat("metrics: validation.examples ", metrics.validation().examples(),
                       " exceed the ", *train, " training rows ", node, " declared at join"));
    }
    round_.reported[node] = metrics;
  }
  changed_.SignalAll();
  return absl::OkStatus();
}

void TaskRunner::RunPhase(RoundPhase phase, uint32_t seconds_left,
                          const std::function<bool()>& done) {
  EnterPhase(phase);
  round_.deadline = clock_->Now() + seconds(seconds_left);
  changed_.SignalAll();
  clock_->WaitUntil(changed_, mu_, round_.deadline,
                    [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || done(); });
}

bool TaskRunner::ExchangeKeys() {
  const v1::SecureAggregationConfig& config = options_.config.secure_aggregation();
  const auto n = static_cast<uint32_t>(round_.selected.size());
  // W, the weight every node divides its sample count by, from the training
  // rows declared at Join (selected nodes have all joined).
  absl::StatusOr<v1::SecureRound> params = SecureRoundParameters(config, n, round_.TotalRows());
  if (!params.ok()) {
    AbortRound(std::string(params.status().message()));
    return false;
  }
  round_.secure_params = *std::move(params);
  if (options_.crl_pem) round_.secure_params.set_crl_pem(options_.crl_pem());
  const uint32_t threshold = round_.secure_params.threshold();
  round_.secure = std::make_unique<SecureRound>(
      SecureRound::Params{name(), round_.id, round_.selected, threshold,
                          options_.config.min_nodes(), secagg::TermsOf(round_.secure_params)},
      *options_.key_verifier);
  spdlog::info("task {}: round {} secure aggregation with {} nodes, threshold {}", name(),
               round_.id, n, threshold);

  const uint32_t deadline = config.phase_deadline_seconds();
  RunPhase(RoundPhase::kAdvertising, deadline, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return round_.secure->advertised_count() == round_.selected.size();
  });
  if (stopping_) return false;
  if (absl::Status s = round_.secure->CloseAdvertising(); !s.ok()) {
    AbortRound(std::string(s.message()));
    return false;
  }
  const size_t u1 = round_.secure->advertisements().size();
  RunPhase(RoundPhase::kSharing, deadline, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return round_.secure->shared_count() == u1;
  });
  if (stopping_) return false;
  if (absl::Status s = round_.secure->CloseSharing(); !s.ok()) {
    AbortRound(std::string(s.message()));
    return false;
  }
  // Only nodes whose shares went out can contribute a masked input.
  round_.selected = round_.secure->u2();
  return true;
}

absl::Status TaskRunner::CollectUnmaskingShares() {
  std::set<std::string> u3;
  for (const auto& [node, samples] : round_.submitted) u3.insert(node);
  if (absl::Status s = round_.secure->CloseMasking(u3); !s.ok()) return s;
  const uint32_t deadline = options_.config.secure_aggregation().phase_deadline_seconds();
  // The consistency check: no node reveals before t nodes signed the U3 it
  // holds (so the coordinator cannot show nodes different survivor lists).
  RunPhase(RoundPhase::kConfirming, deadline, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return round_.secure->confirmed_count() == u3.size();
  });
  if (stopping_) return absl::CancelledError("stopping");
  if (absl::Status s = round_.secure->CloseConfirming(); !s.ok()) return s;
  const size_t u4 = round_.secure->confirmed_count();
  RunPhase(RoundPhase::kUnmasking, deadline, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return round_.secure->revealed_count() == u4;
  });
  if (stopping_) return absl::CancelledError("stopping");
  EnterPhase(RoundPhase::kAggregating);
  const uint32_t threshold = round_.secure_params.threshold();
  if (round_.secure->revealed_count() < threshold) {
    return absl::FailedPreconditionError(absl::StrCat(
        "only ", round_.secure->revealed_count(), " of ", u4,
        " nodes sent their unmasking shares by the deadline; the threshold is ", threshold));
  }
  return absl::OkStatus();
}

absl::Status TaskRunner::SecureStep(const std::string& node, uint64_t round_id, RoundPhase phase,
                                    const std::function<absl::Status(SecureRound&)>& step) {
  {
    absl::MutexLock lock(&mu_);
    roster_.Seen(node, clock_->Now());
    if (absl::Status s = round_.CheckPhase(name(), round_id, phase); !s.ok()) return s;
    if (absl::Status s = step(*round_.secure); !s.ok()) return s;
  }
  changed_.SignalAll();
  return absl::OkStatus();
}

absl::Status TaskRunner::AdvertiseKeys(const std::string& node,
                                       const v1::AdvertiseKeysRequest& request) {
  return SecureStep(node, request.round_id(), RoundPhase::kAdvertising,
                    [&](SecureRound& round) { return round.Handle(node, request); });
}

absl::Status TaskRunner::ShareKeys(const std::string& node, const v1::ShareKeysRequest& request) {
  std::vector<secagg::SealedShares> shares;
  shares.reserve(request.shares_size());
  for (const v1::SealedShare& share : request.shares()) shares.push_back(secagg::FromProto(share));
  // The n-1 signatures are verified outside the lock (SecureRound::SharesCheck).
  std::optional<SecureRound::SharesCheck> check;
  {
    absl::MutexLock lock(&mu_);
    if (round_.CheckPhase(name(), request.round_id(), RoundPhase::kSharing).ok()) {
      absl::StatusOr<SecureRound::SharesCheck> made = round_.secure->SharesCheckFor(node);
      if (made.ok()) check = *std::move(made);
    }
  }
  // Without a check, SecureStep refuses with the reason or verifies itself.
  if (check) check->Verify(shares);
  return SecureStep(node, request.round_id(), RoundPhase::kSharing, [&](SecureRound& round) {
    return check ? round.ShareKeys(node, std::move(shares), *check)
                 : round.ShareKeys(node, std::move(shares));
  });
}

absl::Status TaskRunner::ConfirmSurvivors(const std::string& node,
                                          const v1::ConfirmSurvivorsRequest& request) {
  return SecureStep(node, request.round_id(), RoundPhase::kConfirming,
                    [&](SecureRound& round) { return round.Handle(node, request); });
}

absl::Status TaskRunner::Unmask(const std::string& node, const v1::UnmaskRequest& request) {
  return SecureStep(node, request.round_id(), RoundPhase::kUnmasking,
                    [&](SecureRound& round) { return round.Handle(node, request); });
}

absl::Status TaskRunner::CheckPrivacy(const std::string& node, const v1::UpdateHeader& header) {
  const std::optional<uint64_t> rows = roster_.DeclaredRows(node);
  if (!rows) return absl::FailedPreconditionError(absl::StrCat("node ", node, " has not joined"));
  auto cached = plans_by_rows_.find(*rows);
  if (cached == plans_by_rows_.end()) {
    // σ calibration is a search over the accountant: once per row count.
    absl::StatusOr<privacy::DpSgdPlan> plan =
        privacy::PlanDpSgd(options_.config.privacy(), options_.config.training(), *rows);
    if (!plan.ok()) return plan.status();
    if (plans_by_rows_.size() > 4096) plans_by_rows_.clear();
    cached = plans_by_rows_.emplace(*rows, *plan).first;
  }
  return CheckPrivacyReport(options_.config.privacy(), node, header, &cached->second,
                            global_privacy_json_);
}

void TaskRunner::SetGlobal(std::shared_ptr<const ModelSnapshot> snapshot) {
  global_ = std::move(snapshot);
  absl::StatusOr<manifest::ModelManifest> m = manifest::ParseManifest(
      global_->manifest.json, absl::StrCat("manifest of v", global_->version));
  global_privacy_json_ = m.ok() ? m->privacy_json : std::string();
  if (m.ok()) release_.Restore(m->released_version, m->released_weights_sha256, m->release_json);
}

void TaskRunner::AddPrivacyStatus(v1::TaskStatus* status) const {
  const v1::PrivacyConfig& task = options_.config.privacy();
  const nlohmann::json block = nlohmann::json::parse(global_privacy_json_, nullptr, false);
  std::map<std::string, v1::NodePrivacyStatus> nodes;
  if (block.is_object() && block.contains("administrations") &&
      block["administrations"].is_object()) {
    for (const auto& [node, entry] : block["administrations"].items()) {
      v1::NodePrivacyStatus& s = nodes[node];
      if (entry.is_object() && entry.contains("epsilon") && entry["epsilon"].is_number()) {
        s.set_epsilon_spent(entry["epsilon"].get<double>());
      }
      if (entry.is_object() && entry.contains("rounds") && entry["rounds"].is_number_unsigned()) {
        s.set_rounds(entry["rounds"].get<uint64_t>());
      }
    }
  }
  for (const auto& [node, reason] : roster_.training_declined()) {
    nodes[node].set_training_declined(reason);
  }
  for (auto& [node, s] : nodes) {
    s.set_node(node);
    s.set_delta(task.delta());
    s.set_target_epsilon(task.target_epsilon());
    if (task.target_epsilon() > 0) {
      s.set_epsilon_left(std::max(0.0, task.target_epsilon() - s.epsilon_spent()));
    }
    *status->add_privacy() = std::move(s);
  }
}

v1::TaskStatus TaskRunner::Status() const {
  absl::MutexLock lock(&mu_);
  v1::TaskStatus status;
  status.set_task(name());
  status.set_latest_version(global_->version);
  status.set_released_version(release_.released_version());
  status.set_round_id(round_.id);
  status.set_phase(RoundPhaseName(round_.phase));
  status.set_rounds_completed(rounds_completed_);
  status.set_rounds_aborted(rounds_aborted_);
  status.set_blocked_reason(blocked_reason_);
  if (latest_metrics_) *status.mutable_latest_metrics() = *latest_metrics_;
  for (const v1::NodeSelectionEvaluation& e : latest_selection_evaluations_) {
    *status.add_selection_evaluations() = e;
  }
  if (privacy::IsDpSgd(options_.config.privacy())) AddPrivacyStatus(&status);
  return status;
}

}  // namespace fedcustoms::coordinator
