#include "coordinator/rounds/task_runner.h"

#include <google/protobuf/util/json_util.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <functional>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/crypto/sha256.h"
#include "common/data/declaration_schema.h"
#include "common/io/atomic_file.h"
#include "common/log/logging.h"
#include "common/metrics/binary_metrics.h"
#include "common/process/crash_point.h"
#include "common/secagg/fixed_point.h"
#include "common/secagg/masked_update.h"
#include "common/secagg/secagg_messages.h"
#include "common/secagg/shamir.h"
#include "common/task/risk_task.h"
#include "common/tensor/tensor_codec.h"
#include "coordinator/aggregation/mean_update.h"
#include "coordinator/aggregation/tensor_source.h"
#include "coordinator/rounds/metrics_check.h"
#include "coordinator/rounds/round_history.h"

namespace fedcustoms::coordinator {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// A node that has not called for this long is no longer counted as available.
constexpr seconds kAvailableWindow(25);
// How often a round that storage could not record is tried again.
constexpr seconds kStorageRetry(10);

double UnixNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string ToJsonText(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  if (!google::protobuf::util::MessageToJsonString(message, &out, options).ok()) return "{}";
  return out;
}

// The new model: the round's mean update on top of `base`, computed in the
// update's memory while the base is read from its wire file (one model in
// memory, not three). The file is checked against its hash first, so a file
// damaged on disk never becomes the base of a freshly signed version.
absl::StatusOr<tensor::NamedTensors> ApplyToBase(MeanUpdate& mean, const ModelSnapshot& base,
                                                 ServerOptimizer& optimizer) {
  absl::StatusOr<std::string> sha = crypto::Sha256File(base.wire_path);
  if (!sha.ok()) return sha.status();
  if (*sha != base.wire_sha256) {
    return absl::DataLossError(absl::StrCat(base.wire_path, " no longer hashes to version ",
                                            base.version, "'s ", base.wire_sha256));
  }
  return mean.Apply(TensorFile(base.wire_path), &optimizer);
}

// How manifests name the rule that combined the updates.
std::string AggregatorName(const v1::RobustAggregationConfig& r) {
  std::string name = absl::AsciiStrToLower(v1::RobustAggregationConfig::Kind_Name(r.kind()));
  if (r.norm_bound() > 0) name += "+norm_bound";
  return name;
}

// How the ledger and the manifests name a mode.
const char* ModeName(v1::AggregationMode mode) { return mode == v1::SECURE ? "secure" : "trusted"; }

}  // namespace

const char* TaskRunner::PhaseName(Phase phase) {
  switch (phase) {
    case Phase::kGathering:
      return "gathering";
    case Phase::kAdvertising:
      return "advertising keys";
    case Phase::kSharing:
      return "sharing keys";
    case Phase::kUnmasking:
      return "unmasking";
    case Phase::kTraining:
      return "training";
    case Phase::kAggregating:
      return "aggregating";
    case Phase::kEvaluating:
      return "evaluating";
    case Phase::kFinished:
      return "finished";
  }
  return "unknown";
}

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

  std::vector<uint64_t> versions = registry->Versions(task);
  absl::StatusOr<std::shared_ptr<const ModelSnapshot>> global;
  if (versions.empty()) {
    manifest::ModelManifest m = runner->ManifestTemplate(0);
    m.has_parent = false;
    global = runner->store_.Publish(std::move(m), *fresh, runner->optimizer_->State());
    if (global.ok()) spdlog::info("task {}: published initial model version 0", task);
  } else {
    global = runner->store_.Resume(versions.back(), *fresh, runner->feature_schema_hash_);
    if (global.ok())
      spdlog::info("task {}: resuming from registry version {}", task, versions.back());
  }
  if (!global.ok()) return global.status();
  if (!versions.empty()) {
    if (absl::Status s = runner->store_.RestoreServerState(versions.back(), *runner->optimizer_);
        !s.ok())
      return s;
  }
  runner->store_.RemoveStaleWireFiles((*global)->version);

  absl::StatusOr<RoundHistory> history = RecoverRoundHistory(task, **global, *ledger, *registry);
  if (!history.ok()) return history.status();
  absl::MutexLock lock(&runner->mu_);
  runner->global_ = *std::move(global);
  runner->round_id_ = history->last_round_id;
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
      feature_schema_hash_(task::InputHash(model_spec_)),
      owned_clock_(options_.clock == nullptr ? std::make_unique<SteadyClock>() : nullptr),
      clock_(options_.clock == nullptr ? owned_clock_.get() : options_.clock),
      store_(options_.config.name(), options_.models_dir, registry, signer),
      optimizer_(std::make_unique<ServerOptimizer>(options_.config.strategy(), spec_)) {}

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

manifest::ModelManifest TaskRunner::ManifestTemplate(uint64_t version) const {
  manifest::ModelManifest m;
  m.task = options_.config.name();
  m.version = version;
  m.has_parent = version > 0;
  m.parent = version > 0 ? version - 1 : 0;
  m.architecture = std::string(task::ArchitectureName(model_spec_.kind));
  m.hyperparameters_json = task::HyperparametersJson(model_spec_);
  m.training_json = ToJsonText(options_.config.training());
  m.feature_schema_json = task::InputSummaryJson(model_spec_);
  m.feature_schema_hash = feature_schema_hash_;
  m.aggregation_mode = ModeName(options_.mode);
  m.strategy = optimizer_->name();
  m.aggregator = AggregatorName(options_.config.robust_aggregation());
  m.created_at = manifest::NowRfc3339();
  return m;
}

void TaskRunner::Join(const std::string& node, uint64_t train_rows) {
  {
    absl::MutexLock lock(&mu_);
    last_seen_[node] = clock_->Now();
    declared_train_rows_[node] = train_rows;
  }
  changed_.SignalAll();
}

bool TaskRunner::HasJoined(const std::string& node) const {
  absl::MutexLock lock(&mu_);
  return declared_train_rows_.contains(node);
}

std::set<std::string> TaskRunner::AvailableLocked() const {
  std::set<std::string> out;
  const Clock::time_point now = clock_->Now();
  // Only nodes that joined (and declared their data) can be selected: a node
  // seen through another call after a coordinator restart joins again first.
  for (const auto& [node, seen] : last_seen_) {
    if (now - seen <= kAvailableWindow && declared_train_rows_.contains(node)) out.insert(node);
  }
  return out;
}

std::set<std::string> TaskRunner::AvailableNodes() const {
  absl::MutexLock lock(&mu_);
  return AvailableLocked();
}

bool TaskRunner::RoundsDone() const {
  return options_.config.rounds() > 0 && rounds_completed_ >= options_.config.rounds();
}

void TaskRunner::DriverLoop() {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    if (RoundsDone()) {
      phase_ = Phase::kFinished;
      changed_.SignalAll();
      spdlog::info("task {}: all {} rounds done", name(), options_.config.rounds());
      while (!stopping_) changed_.Wait(&mu_);
      break;
    }
    Gather();
    if (stopping_) break;
    // An exception in a round (allocation failure, a torch error) aborts the
    // round, never the coordinator; the global model stays as it was.
    try {
      if (secure() && !ExchangeKeys()) continue;
      Train();
      if (stopping_ || phase_ != Phase::kEvaluating) continue;
      Evaluate();
    } catch (const std::exception& e) {
      AbortRound(absl::StrCat("internal error: ", e.what()));
    }
  }
}

void TaskRunner::Gather() {
  phase_ = Phase::kGathering;
  changed_.SignalAll();
  const uint32_t min_nodes = options_.config.min_nodes();
  while (!stopping_) {
    // Availability also ends by time (kAvailableWindow): look again soon.
    clock_->WaitUntil(changed_, mu_, clock_->Now() + milliseconds(250),
                      [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
                        return stopping_ || AvailableLocked().size() >= min_nodes;
                      });
    if (stopping_ || AvailableLocked().size() < min_nodes) continue;
    // Give nodes that are about to poll a moment to be counted too.
    clock_->WaitUntil(changed_, mu_, clock_->Now() + seconds(options_.config.gather_seconds()),
                      [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; });
    if (stopping_) return;
    std::set<std::string> available = AvailableLocked();
    if (available.size() < min_nodes) continue;
    RoundRecord record;
    record.task = name();
    record.round_id = round_id_ + 1;
    record.base_version = global_->version;
    record.mode = ModeName(options_.mode);
    record.strategy = optimizer_->name();
    record.selected_nodes = static_cast<uint32_t>(available.size());
    record.opened_at = UnixNow();
    // A round opens only where it can be recorded: space for its version in
    // the registry, its uploads and candidate in the state directory, and
    // its row in the ledger. Otherwise nothing changes and it is tried again.
    absl::Status recordable = CheckStorage(available.size());
    if (recordable.ok()) {
      recordable =
          ledger_->OpenRecord(record, PhaseName(secure() ? Phase::kAdvertising : Phase::kTraining));
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
    selected_ = std::move(available);
    record_ = std::move(record);
    break;
  }
  if (stopping_) return;
  ++round_id_;
  submitted_.clear();
  uploading_.clear();
  reported_.clear();
  rejected_updates_ = 0;
}

absl::Status TaskRunner::CheckStorage(size_t nodes) const {
  constexpr uint64_t kMargin = 1 << 20;
  // A version: the weights and a server state of up to two model-sized
  // tensors per parameter (Adam's moments).
  if (absl::Status s = io::CheckWritableSpace(registry_->root(), 3 * model_bytes_ + kMargin);
      !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("model registry: ", s.message()));
  }
  if (absl::Status s = io::CheckWritableSpace(options_.models_dir, model_bytes_ + kMargin);
      !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("model directory: ", s.message()));
  }
  if (absl::Status s = io::CheckWritableSpace(options_.spool_dir, nodes * model_bytes_ + kMargin);
      !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("upload spool: ", s.message()));
  }
  return absl::OkStatus();
}

void TaskRunner::EnterPhase(Phase phase) {
  phase_ = phase;
  changed_.SignalAll();
  if (absl::Status s = ledger_->SetPhase(name(), round_id_, PhaseName(phase)); !s.ok()) {
    spdlog::error("task {}: {}", name(), s.message());
  }
}

void TaskRunner::Train() {
  if (!OpenTraining()) return;
  const auto opened = clock_->Now();
  spdlog::info("task {}: round {} open with {} nodes on model version {}, deadline {} s", name(),
               round_id_, selected_.size(), global_->version,
               options_.config.round_deadline_seconds());
  clock_->WaitUntil(changed_, mu_, phase_deadline_, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || (submitted_.size() == selected_.size() && uploading_.empty());
  });
  if (stopping_) return;
  EnterPhase(Phase::kAggregating);
  record_.train_seconds = std::chrono::duration<double>(clock_->Now() - opened).count();

  // Wait for a fold that began before the close; it still counts.
  std::shared_ptr<Aggregator> aggregator;
  mu_.Unlock();  // fold_mu_ is taken before mu_
  {
    absl::MutexLock fold_lock(&fold_mu_);
    mu_.Lock();
    aggregator = std::move(aggregator_);
  }
  uploading_.clear();
  const uint32_t min_nodes = options_.config.min_nodes();
  record_.participants = static_cast<uint32_t>(submitted_.size());
  record_.dropped = record_.selected_nodes - record_.participants;
  record_.rejected_updates = rejected_updates_;
  if (submitted_.size() < min_nodes) {
    AbortRound(absl::StrCat("only ", submitted_.size(), " of ", selected_.size(),
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
  options.capacity = static_cast<uint32_t>(selected_.size());
  if (secure()) {
    options.secure_params = secure_params_;
    // Called by Finish on the driver thread, before the round is replaced.
    const SecureRound* round = secure_round_.get();
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
  EnterPhase(Phase::kTraining);
  phase_deadline_ = clock_->Now() + seconds(options_.config.round_deadline_seconds());
  changed_.SignalAll();
  return true;
}

void TaskRunner::Aggregate(std::shared_ptr<Aggregator> aggregator) {
  const auto aggregate_start = clock_->Now();
  std::shared_ptr<const ModelSnapshot> base = global_;
  manifest::ModelManifest m = ManifestTemplate(base->version + 1);
  m.round_id = round_id_;
  m.contributing_nodes = record_.participants;
  // No upload can reach the aggregator any more (the phase moved on) and only
  // this thread replaces the round: the heavy part runs without the lock.
  absl::StatusOr<std::shared_ptr<const ModelSnapshot>> candidate = Unlocked([&] {
    absl::StatusOr<std::shared_ptr<const ModelSnapshot>> made =
        FinishCandidate(*aggregator, *base, m);
    aggregator.reset();
    return made;
  });
  record_.aggregate_seconds =
      std::chrono::duration<double>(clock_->Now() - aggregate_start).count();
  record_.samples = m.total_samples;
  if (!candidate.ok()) {
    AbortRound(std::string(candidate.status().message()));
    return;
  }
  secure_round_.reset();  // the revealed shares go with it
  candidate_ = *std::move(candidate);
  EnterPhase(Phase::kEvaluating);
  phase_deadline_ = clock_->Now() + seconds(options_.config.eval_deadline_seconds());
  spdlog::info("task {}: round {} aggregated {} updates ({} samples) into candidate version {}",
               name(), round_id_, record_.participants, record_.samples, candidate_->version);
  changed_.SignalAll();
}

absl::StatusOr<std::shared_ptr<const ModelSnapshot>> TaskRunner::FinishCandidate(
    Aggregator& aggregator, const ModelSnapshot& base, manifest::ModelManifest& m) {
  absl::StatusOr<tensor::NamedTensors> next;
  {
    absl::StatusOr<MeanUpdate> mean = aggregator.Finish();
    if (!mean.ok()) return mean.status();  // the rule's own message
    m.total_samples = mean->samples();
    optimizer_stepped_ = true;  // from here an abort must restore the saved state
    next = ApplyToBase(*mean, base, *optimizer_);
  }  // the update's memory goes before the snapshot is written
  absl::StatusOr<std::shared_ptr<const ModelSnapshot>> candidate =
      next.ok() ? store_.MakeCandidate(m, *next)
                : absl::StatusOr<std::shared_ptr<const ModelSnapshot>>(next.status());
  if (!candidate.ok()) {
    return absl::Status(candidate.status().code(),
                        absl::StrCat("aggregation failed: ", candidate.status().message()));
  }
  candidate_tensors_ = *std::move(next);
  process::CrashPoint("coordinator.aggregate");
  return candidate;
}

void TaskRunner::Evaluate() {
  const auto start = clock_->Now();
  clock_->WaitUntil(changed_, mu_, phase_deadline_, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || reported_.size() == submitted_.size();
  });
  if (stopping_) return;
  record_.eval_seconds = std::chrono::duration<double>(clock_->Now() - start).count();
  std::vector<v1::EvaluationMetrics> reports;
  for (const auto& [node, metrics] : reported_) reports.push_back(metrics);
  std::string metrics_json = "{}";
  std::optional<v1::EvaluationMetrics> mean_metrics;
  if (!reports.empty()) {
    mean_metrics = metrics::WeightedMeanMetrics(reports);
    metrics_json = ToJsonText(*mean_metrics);
  }
  record_.metrics_json = metrics_json;
  std::vector<v1::NodeSelectionEvaluation> selection_evaluations;
  record_.selection_evaluations.clear();
  for (const auto& [node, metrics] : reported_) {
    if (!metrics.has_selection()) continue;
    v1::NodeSelectionEvaluation& e = selection_evaluations.emplace_back();
    e.set_node(node);
    e.set_round_id(round_id_);
    *e.mutable_evaluation() = metrics.selection();
    record_.selection_evaluations.emplace_back(node, ToJsonText(metrics.selection()));
  }

  Publish(std::move(mean_metrics), std::move(selection_evaluations), metrics_json);
}

void TaskRunner::Publish(std::optional<v1::EvaluationMetrics> mean_metrics,
                         std::vector<v1::NodeSelectionEvaluation> selection_evaluations,
                         const std::string& metrics_json) {
  std::shared_ptr<const ModelSnapshot> candidate = candidate_;
  const uint64_t round_id = round_id_;
  absl::StatusOr<std::shared_ptr<const ModelSnapshot>> published = Unlocked([&] {
    if (absl::Status s = ledger_->SetPhase(name(), round_id, "publishing"); !s.ok()) {
      spdlog::error("task {}: {}", name(), s.message());
    }
    absl::StatusOr<std::shared_ptr<const ModelSnapshot>> made =
        store_.PublishCandidate(*candidate, metrics_json, candidate_tensors_, optimizer_->State());
    if (made.ok()) process::CrashPoint("coordinator.published");
    candidate_tensors_.clear();
    return made;
  });

  if (!published.ok()) {
    AbortRound(absl::StrCat("cannot publish version ", candidate->version, ": ",
                            published.status().message()));
    return;
  }
  global_ = *std::move(published);
  optimizer_stepped_ = false;  // its state is now the published version's
  latest_metrics_ = std::move(mean_metrics);
  latest_selection_evaluations_ = std::move(selection_evaluations);
  candidate_.reset();
  store_.RemoveStaleWireFiles(global_->version);
  record_.result_version = global_->version;
  record_.status = "completed";
  if (absl::Status s = ledger_->Record(record_); !s.ok()) {
    spdlog::error("task {}: round {}: {}", name(), round_id_, s.message());
  }
  ++rounds_completed_;
  spdlog::info("task {}: round {} published version {} ({} of {} nodes reported metrics)", name(),
               round_id_, global_->version, reported_.size(), submitted_.size());
  phase_ = Phase::kGathering;
  changed_.SignalAll();
}

void TaskRunner::AbortRound(const std::string& reason) {
  // Evaluations of a model that was never published are not kept.
  record_.selection_evaluations.clear();
  spdlog::warn("task {}: round {} aborted: {}; model stays at version {}", name(), round_id_,
               reason, global_->version);
  candidate_.reset();
  candidate_tensors_.clear();
  secure_round_.reset();
  if (optimizer_stepped_) {
    // The strategy stepped for a model that will not be published: back to
    // the state saved with the global version.
    if (absl::Status s = store_.RestoreServerState(global_->version, *optimizer_); !s.ok()) {
      spdlog::error("task {}: {}; the server strategy starts again from its initial state", name(),
                    s.message());
      optimizer_->Reset();
    }
    optimizer_stepped_ = false;
  }
  store_.RemoveStaleWireFiles(global_->version);
  record_.status = "aborted";
  record_.reason = reason;
  if (absl::Status s = ledger_->Record(record_); !s.ok()) {
    spdlog::error("task {}: round {}: {}", name(), round_id_, s.message());
  }
  ++rounds_aborted_;
  phase_ = Phase::kGathering;
  changed_.SignalAll();
}

v1::TaskAssignment TaskRunner::NextAssignment(const std::string& node, milliseconds wait) {
  absl::MutexLock lock(&mu_);
  last_seen_[node] = clock_->Now();
  changed_.SignalAll();
  const auto deadline = clock_->Now() + wait;
  auto compute = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    v1::TaskAssignment a;
    a.set_task(name());
    a.set_kind(v1::TaskAssignment::WAIT);
    const auto left = std::chrono::duration_cast<seconds>(phase_deadline_ - clock_->Now());
    if (phase_ == Phase::kFinished) {
      a.set_kind(v1::TaskAssignment::FINISHED);
    } else if (phase_ == Phase::kTraining && selected_.count(node) && !submitted_.count(node) &&
               !uploading_.count(node)) {
      a.set_kind(v1::TaskAssignment::TRAIN);
      a.set_round_id(round_id_);
      a.set_model_version(global_->version);
      *a.mutable_training() = options_.config.training();
      task::CopyModelConfig(model_spec_, &a);
      a.set_manifest_json(global_->manifest.json);
      a.set_manifest_signature(global_->manifest.signature);
      a.set_deadline_seconds(static_cast<uint32_t>(std::max<int64_t>(left.count(), 0)));
      if (secure()) {
        *a.mutable_secure() = secure_params_;
        for (const secagg::SealedShares& shares : secure_round_->SharesFor(node)) {
          *a.mutable_secure()->add_shares() = secagg::ToProto(shares);
        }
      }
    } else if (secure_round_ && (phase_ == Phase::kAdvertising || phase_ == Phase::kSharing ||
                                 phase_ == Phase::kUnmasking)) {
      const SecureRound& round = *secure_round_;
      if (phase_ == Phase::kAdvertising && selected_.count(node) && !round.Advertised(node)) {
        a.set_kind(v1::TaskAssignment::ADVERTISE_KEYS);
      } else if (phase_ == Phase::kSharing && round.InU1(node) && !round.Shared(node)) {
        a.set_kind(v1::TaskAssignment::SHARE_KEYS);
      } else if (phase_ == Phase::kUnmasking && round.InU3(node) && !round.Revealed(node)) {
        a.set_kind(v1::TaskAssignment::UNMASK);
      }
      if (a.kind() != v1::TaskAssignment::WAIT) {
        a.set_round_id(round_id_);
        a.set_model_version(global_->version);
        a.set_deadline_seconds(static_cast<uint32_t>(std::max<int64_t>(left.count(), 0)));
        *a.mutable_secure() = secure_params_;
      }
      if (a.kind() == v1::TaskAssignment::SHARE_KEYS) {
        for (const secagg::SignedAdvertisement& ad : round.advertisements()) {
          *a.mutable_secure()->add_advertisements() = secagg::ToProto(ad);
        }
      } else if (a.kind() == v1::TaskAssignment::UNMASK) {
        for (const std::string& u : round.u3()) a.mutable_secure()->add_masked_input_from(u);
      }
    } else if (phase_ == Phase::kEvaluating && submitted_.count(node) && !reported_.count(node)) {
      a.set_kind(v1::TaskAssignment::EVALUATE);
      a.set_round_id(round_id_);
      a.set_model_version(candidate_->version);
      task::CopyModelConfig(model_spec_, &a);
      a.set_manifest_json(candidate_->manifest.json);
      a.set_manifest_signature(candidate_->manifest.signature);
      a.set_deadline_seconds(static_cast<uint32_t>(std::max<int64_t>(left.count(), 0)));
    }
    return a;
  };
  v1::TaskAssignment a;
  clock_->WaitUntil(changed_, mu_, deadline, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    a = compute();
    return stopping_ || a.kind() != v1::TaskAssignment::WAIT;
  });
  return a;
}

absl::Status TaskRunner::CheckRound(uint64_t round_id, uint64_t version, Phase phase) const {
  if (absl::Status s = CheckPhase(round_id, phase); !s.ok()) return s;
  const uint64_t expected = phase == Phase::kEvaluating ? candidate_->version : global_->version;
  if (version != expected) {
    return absl::FailedPreconditionError(absl::StrCat("round ", round_id, " of task ", name(),
                                                      " uses model version ", expected, ", not ",
                                                      version));
  }
  return absl::OkStatus();
}

absl::Status TaskRunner::CheckPhase(uint64_t round_id, Phase phase) const {
  if (round_id == 0 || round_id > round_id_) {
    return absl::FailedPreconditionError(absl::StrCat("unknown round ", round_id, " of task ",
                                                      name(), " (current round ", round_id_, ")"));
  }
  if (round_id < round_id_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "round ", round_id, " of task ", name(), " is closed (current round ", round_id_, ")"));
  }
  if (phase_ != phase) {
    return absl::FailedPreconditionError(absl::StrCat("round ", round_id, " of task ", name(),
                                                      " is ", PhaseName(phase_), ", not ",
                                                      PhaseName(phase)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const ModelSnapshot>> TaskRunner::ModelForDownload(
    const std::string& node, uint64_t round_id, uint64_t version) {
  absl::MutexLock lock(&mu_);
  last_seen_[node] = clock_->Now();
  if (phase_ == Phase::kEvaluating) {
    if (absl::Status s = CheckRound(round_id, version, Phase::kEvaluating); !s.ok()) return s;
    if (!submitted_.count(node)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "node ", node, " did not contribute to round ", round_id, " and does not evaluate it"));
    }
    return candidate_;
  }
  if (absl::Status s = CheckRound(round_id, version, Phase::kTraining); !s.ok()) return s;
  if (!selected_.count(node)) {
    return absl::FailedPreconditionError(
        absl::StrCat("node ", node, " is not selected for round ", round_id));
  }
  return global_;
}

absl::Status TaskRunner::BeginUpload(const std::string& node, const v1::UpdateHeader& header) {
  absl::MutexLock lock(&mu_);
  last_seen_[node] = clock_->Now();
  // A duplicate is named as such even after the round has moved on to
  // aggregation or evaluation, so the node's log says what really happened.
  const bool round_open =
      phase_ == Phase::kTraining || phase_ == Phase::kAggregating || phase_ == Phase::kEvaluating;
  if (round_open && header.round_id() == round_id_ && submitted_.count(node)) {
    return absl::AlreadyExistsError(
        absl::StrCat("node ", node, " already sent its update for round ", header.round_id()));
  }
  if (absl::Status s = CheckRound(header.round_id(), header.model_version(), Phase::kTraining);
      !s.ok()) {
    return s;
  }
  if (!selected_.count(node)) {
    return absl::FailedPreconditionError(
        absl::StrCat("node ", node, " is not selected for round ", header.round_id()));
  }
  if (uploading_.count(node)) {
    // ABORTED, not ALREADY_EXISTS: the earlier stream may still break (its
    // connection died unseen until the watchdog cuts it), so the node must
    // retry rather than take its update for delivered.
    return absl::AbortedError(absl::StrCat("an upload from node ", node, " for round ",
                                           header.round_id(),
                                           " is already in progress; retry later"));
  }
  if (secure()) {
    // The sample count travels masked inside the update; a clear one would
    // tell the coordinator something about this node alone.
    if (header.sample_count() != 0 || header.train_loss() != 0) {
      ++rejected_updates_;
      return absl::InvalidArgumentError(
          "in mode secure the header carries no sample_count or train_loss (they are masked)");
    }
    uploading_.insert(node);
    return absl::OkStatus();
  }
  if (header.sample_count() == 0 || header.sample_count() > options_.config.max_sample_count()) {
    ++rejected_updates_;
    return absl::InvalidArgumentError(absl::StrCat("sample_count ", header.sample_count(),
                                                   " is outside 1..",
                                                   options_.config.max_sample_count()));
  }
  auto declared = declared_train_rows_.find(node);
  if (declared == declared_train_rows_.end()) {
    return absl::FailedPreconditionError(absl::StrCat("node ", node, " has not joined task ",
                                                      name(), " since the coordinator started"));
  }
  if (header.sample_count() > declared->second) {
    ++rejected_updates_;
    return absl::InvalidArgumentError(
        absl::StrCat("sample_count ", header.sample_count(), " exceeds the ", declared->second,
                     " training rows node ", node, " declared when it joined"));
  }
  if (!std::isfinite(header.train_loss())) {
    ++rejected_updates_;
    return absl::InvalidArgumentError("train_loss is NaN or Inf");
  }
  uploading_.insert(node);
  return absl::OkStatus();
}

void TaskRunner::AbortUpload(const std::string& node, const v1::UpdateHeader& header) {
  {
    absl::MutexLock lock(&mu_);
    if (header.round_id() == round_id_) uploading_.erase(node);
  }
  changed_.SignalAll();
}

absl::Status TaskRunner::FinishUpload(const std::string& node, const v1::UpdateHeader& header,
                                      const std::string& spool_path) {
  TensorFile update(spool_path);
  std::shared_ptr<Aggregator> aggregator;
  {
    absl::MutexLock lock(&mu_);
    aggregator = aggregator_;
  }
  auto closed = [&] {
    {
      absl::MutexLock lock(&mu_);
      if (header.round_id() == round_id_) uploading_.erase(node);
    }
    changed_.SignalAll();
    return absl::FailedPreconditionError(absl::StrCat("round ", header.round_id(),
                                                      " closed before the update from ", node,
                                                      " could be aggregated"));
  };
  if (!aggregator) return closed();
  const auto validate_start = std::chrono::steady_clock::now();
  absl::Status valid = aggregator->Validate(update);
  const double validate_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - validate_start).count();
  if (absl::Status s = valid; !s.ok()) {
    {
      absl::MutexLock lock(&mu_);
      if (header.round_id() == round_id_) {
        uploading_.erase(node);
        ++rejected_updates_;
      }
    }
    changed_.SignalAll();
    return absl::InvalidArgumentError(absl::StrCat("update from ", node, " for round ",
                                                   header.round_id(), " rejected: ", s.message()));
  }
  absl::MutexLock fold_lock(&fold_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (absl::Status s = CheckRound(header.round_id(), header.model_version(), Phase::kTraining);
        !s.ok() || aggregator_ != aggregator) {
      if (header.round_id() == round_id_) uploading_.erase(node);
      return absl::FailedPreconditionError(absl::StrCat("round ", header.round_id(),
                                                        " closed before the update from ", node,
                                                        " could be aggregated"));
    }
  }
  const auto fold_start = std::chrono::steady_clock::now();
  if (options_.aggregator_input_tap) options_.aggregator_input_tap(node, update);
  absl::Status folded = aggregator->Add(update, header.sample_count());
  spdlog::info(
      "task {}: update from {} validated in {:.3f} s, folded in {:.3f} s", name(), node,
      validate_seconds,
      std::chrono::duration<double>(std::chrono::steady_clock::now() - fold_start).count());
  {
    absl::MutexLock lock(&mu_);
    uploading_.erase(node);
    if (folded.ok()) {
      submitted_[node] = header.sample_count();
    } else {
      ++rejected_updates_;
    }
  }
  changed_.SignalAll();
  return folded;
}

absl::Status TaskRunner::ReportMetrics(const std::string& node, uint64_t round_id, uint64_t version,
                                       const v1::EvaluationMetrics& metrics) {
  {
    absl::MutexLock lock(&mu_);
    last_seen_[node] = clock_->Now();
    if (absl::Status s = CheckRound(round_id, version, Phase::kEvaluating); !s.ok()) return s;
    if (!submitted_.count(node)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "node ", node, " did not contribute to round ", round_id, " and cannot report on it"));
    }
    if (reported_.count(node)) {
      return absl::AlreadyExistsError(
          absl::StrCat("node ", node, " already reported metrics for round ", round_id));
    }
    if (absl::Status s = CheckMetrics(metrics); !s.ok()) return s;
    reported_[node] = metrics;
  }
  changed_.SignalAll();
  return absl::OkStatus();
}

void TaskRunner::RunPhase(Phase phase, uint32_t seconds_left, const std::function<bool()>& done) {
  EnterPhase(phase);
  phase_deadline_ = clock_->Now() + seconds(seconds_left);
  changed_.SignalAll();
  clock_->WaitUntil(changed_, mu_, phase_deadline_,
                    [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || done(); });
}

bool TaskRunner::ExchangeKeys() {
  const v1::SecureAggregationConfig& config = options_.config.secure_aggregation();
  const auto n = static_cast<uint32_t>(selected_.size());
  // W, the weight every node divides its sample count by, from the training
  // rows declared at Join (selected nodes have all joined).
  uint64_t total_weight = 0;
  for (const std::string& node : selected_) {
    auto declared = declared_train_rows_.find(node);
    if (declared != declared_train_rows_.end()) total_weight += declared->second;
  }
  absl::StatusOr<v1::SecureRound> params = SecureRoundParameters(config, n, total_weight);
  if (!params.ok()) {
    AbortRound(std::string(params.status().message()));
    return false;
  }
  secure_params_ = *std::move(params);
  const uint32_t threshold = secure_params_.threshold();
  secure_round_ = std::make_unique<SecureRound>(
      SecureRound::Params{name(), round_id_, selected_, threshold}, *options_.key_verifier);
  spdlog::info("task {}: round {} secure aggregation with {} nodes, threshold {}", name(),
               round_id_, n, threshold);

  const uint32_t deadline = config.phase_deadline_seconds();
  RunPhase(Phase::kAdvertising, deadline, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return secure_round_->advertised_count() == selected_.size();
  });
  if (stopping_) return false;
  absl::Status closed = secure_round_->CloseAdvertising();
  const size_t u1 = secure_round_->advertisements().size();
  if (closed.ok() && u1 < options_.config.min_nodes()) {
    closed = absl::FailedPreconditionError(
        absl::StrCat("only ", u1, " selected nodes advertised keys; min_nodes is ",
                     options_.config.min_nodes()));
  }
  if (!closed.ok()) {
    AbortRound(std::string(closed.message()));
    return false;
  }
  RunPhase(Phase::kSharing, deadline, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return secure_round_->shared_count() == u1;
  });
  if (stopping_) return false;
  if (absl::Status s = secure_round_->CloseSharing(); !s.ok()) {
    AbortRound(std::string(s.message()));
    return false;
  }
  // Only nodes whose shares went out can contribute a masked input.
  std::set<std::string> u2;
  for (const std::string& node : selected_) {
    if (secure_round_->InU2(node)) u2.insert(node);
  }
  selected_ = std::move(u2);
  return true;
}

absl::Status TaskRunner::CollectUnmaskingShares() {
  std::set<std::string> u3;
  for (const auto& [node, samples] : submitted_) u3.insert(node);
  if (absl::Status s = secure_round_->CloseMasking(u3); !s.ok()) return s;
  RunPhase(Phase::kUnmasking, options_.config.secure_aggregation().phase_deadline_seconds(),
           [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
             return secure_round_->revealed_count() == u3.size();
           });
  if (stopping_) return absl::CancelledError("stopping");
  EnterPhase(Phase::kAggregating);
  const uint32_t threshold = secure_params_.threshold();
  if (secure_round_->revealed_count() < threshold) {
    return absl::FailedPreconditionError(absl::StrCat(
        "only ", secure_round_->revealed_count(), " of ", u3.size(),
        " nodes sent their unmasking shares by the deadline; the threshold is ", threshold));
  }
  return absl::OkStatus();
}

absl::Status TaskRunner::AdvertiseKeys(const std::string& node,
                                       const v1::AdvertiseKeysRequest& request) {
  {
    absl::MutexLock lock(&mu_);
    last_seen_[node] = clock_->Now();
    if (absl::Status s = CheckPhase(request.round_id(), Phase::kAdvertising); !s.ok()) return s;
    absl::StatusOr<secagg::SignedAdvertisement> advertisement =
        secagg::FromProto(request.keys(), name(), request.round_id());
    if (!advertisement.ok()) return advertisement.status();
    if (absl::Status s = secure_round_->Advertise(node, *std::move(advertisement)); !s.ok()) {
      return s;
    }
  }
  changed_.SignalAll();
  return absl::OkStatus();
}

absl::Status TaskRunner::ShareKeys(const std::string& node, const v1::ShareKeysRequest& request) {
  {
    absl::MutexLock lock(&mu_);
    last_seen_[node] = clock_->Now();
    if (absl::Status s = CheckPhase(request.round_id(), Phase::kSharing); !s.ok()) return s;
    std::vector<secagg::SealedShares> shares;
    shares.reserve(request.shares_size());
    for (const v1::SealedShare& share : request.shares())
      shares.push_back(secagg::FromProto(share));
    if (absl::Status s = secure_round_->ShareKeys(node, std::move(shares)); !s.ok()) return s;
  }
  changed_.SignalAll();
  return absl::OkStatus();
}

absl::Status TaskRunner::Unmask(const std::string& node, const v1::UnmaskRequest& request) {
  {
    absl::MutexLock lock(&mu_);
    last_seen_[node] = clock_->Now();
    if (absl::Status s = CheckPhase(request.round_id(), Phase::kUnmasking); !s.ok()) return s;
    absl::StatusOr<secagg::UnmaskShares> shares = secagg::FromProto(request);
    if (!shares.ok()) return shares.status();
    if (absl::Status s = secure_round_->Reveal(node, *std::move(shares)); !s.ok()) return s;
  }
  changed_.SignalAll();
  return absl::OkStatus();
}

v1::TaskStatus TaskRunner::Status() const {
  absl::MutexLock lock(&mu_);
  v1::TaskStatus status;
  status.set_task(name());
  status.set_latest_version(global_->version);
  status.set_round_id(round_id_);
  status.set_phase(PhaseName(phase_));
  status.set_rounds_completed(rounds_completed_);
  status.set_rounds_aborted(rounds_aborted_);
  status.set_blocked_reason(blocked_reason_);
  if (latest_metrics_) *status.mutable_latest_metrics() = *latest_metrics_;
  for (const v1::NodeSelectionEvaluation& e : latest_selection_evaluations_) {
    *status.add_selection_evaluations() = e;
  }
  return status;
}

}  // namespace fedcustoms::coordinator
