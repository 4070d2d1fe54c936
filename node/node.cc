#include "node/node.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <span>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/config/proto_json.h"
#include "common/io/atomic_file.h"
#include "common/log/logging.h"
#include "common/manifest/signed_manifest.h"
#include "common/process/crash_point.h"
#include "common/secagg/masked_update.h"
#include "common/task/task_model.h"
#include "common/tensor/named_tensors.h"
#include "common/tensor/tensor_codec.h"
#include "node/backoff/backoff.h"
#include "node/backoff/status_class.h"
#include "node/boosting/boosting_participant.h"
#include "node/config/node_config.h"
#include "node/learner/declaration_learner.h"
#include "node/secure/contribution_record.h"

namespace fedcustoms::node {
namespace {

constexpr char kNodeVersion[] = "0.1.0";
constexpr std::chrono::seconds kPoll(10);
// A model larger than this is refused outright (the risk model is a few MB).
constexpr uint64_t kMaxModelBytes = 4ull << 30;

// Attempts to send one update before the round is given up for this node.
constexpr int kUploadAttempts = 3;

}  // namespace

Node::Node(v1::NodeConfig config, std::unique_ptr<LocalLearner> learner,
           std::unique_ptr<CoordinatorClient> client,
           std::unique_ptr<crypto::Ed25519Verifier> verifier,
           std::unique_ptr<SecureAggregationSession> secure,
           std::unique_ptr<BoostingParticipant> boosting, PrivacyBudget budget)
    : config_(std::move(config)),
      learner_(std::move(learner)),
      client_(std::move(client)),
      verifier_(std::move(verifier)),
      secure_(std::move(secure)),
      boosting_(std::move(boosting)),
      budget_(std::move(budget)),
      training_declined_(budget_.DeclineReason()) {
  // A node that has trained or will train with DP keeps its training rows out
  // of every evaluation, from the first one after a restart.
  if (budget_.spent().segments_size() > 0 || config_.privacy().max_epsilon() > 0) {
    learner_->KeepTrainingRowsOutOfEvaluation();
  }
}

absl::StatusOr<std::unique_ptr<Node>> Node::Create(v1::NodeConfig config) {
  std::error_code ec;
  std::filesystem::create_directories(config.work_dir() + "/models", ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("work_dir ", config.work_dir(), ": cannot create: ", ec.message()));
  }
  auto verifier = crypto::Ed25519Verifier::Create(config.coordinator_public_key());
  if (!verifier.ok()) return verifier.status();
  auto client = CoordinatorClient::Create(config);
  if (!client.ok()) return client.status();
  auto secure = SecureAggregationSession::Create(
      config.tls(), {config.secure_aggregation(), ContributionRecordPath(config.work_dir())});
  if (!secure.ok()) return secure.status();
  auto learner = CreateLocalLearner(config);
  if (!learner.ok()) return learner.status();
  auto budget = PrivacyBudget::Open(config.work_dir(), config.task(), config.privacy(),
                                    (*learner)->data_summary().train_rows());
  if (!budget.ok()) return budget.status();
  // A risk node can take part in boosting sessions (tasks of kind
  // BOOSTED_TREES) over the same rows.
  std::unique_ptr<BoostingParticipant> boosting;
  if (auto* declarations = dynamic_cast<DeclarationLearner*>(learner->get());
      declarations != nullptr && declarations->kind() == v1::TASK_RISK) {
    absl::StatusOr<v1::NodeSecureAggregationConfig> floors =
        FinalizeNodeSecureAggregation(config.secure_aggregation(), "node config");
    if (!floors.ok()) return floors.status();
    BoostingParticipant::Options options;
    options.task = config.task();
    options.secure = config.aggregation_mode() == v1::SECURE;
    options.min_peers = floors->min_peers();
    options.min_cell_rows = floors->boosting_min_cell_rows();
    options.record_path = BoostingRecordPath(config.work_dir());
    auto made = BoostingParticipant::Create(config.tls(), std::move(options),
                                            declarations->data().table, declarations->data().split);
    if (!made.ok()) return made.status();
    boosting = *std::move(made);
  }
  torch::set_num_threads(static_cast<int>(config.threads()));
  return std::unique_ptr<Node>(new Node(std::move(config), *std::move(learner), *std::move(client),
                                        *std::move(verifier), *std::move(secure),
                                        std::move(boosting), *std::move(budget)));
}

void Node::SleepUnlessStopped(std::chrono::milliseconds duration) {
  const auto until = std::chrono::steady_clock::now() + duration;
  while (!stop_ && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

absl::Status Node::Run() {
  // Jitter from the OS, not from the config: administrations with the same
  // file layout must not retry in lockstep after a coordinator restart.
  std::random_device entropy;
  Backoff backoff(std::chrono::milliseconds(500),
                  std::chrono::seconds(config_.max_backoff_seconds()),
                  (uint64_t{entropy()} << 32) ^ entropy());
  bool joined = false;
  const v1::DataSummary summary = learner_->data_summary();
  spdlog::info("node ready: task {} ({}), {} training rows, {} hold-out rows{}", config_.task(),
               task::KindName(learner_->kind()), summary.train_rows(), summary.holdout_rows(),
               summary.skipped_rows()
                   ? absl::StrCat(", ", summary.skipped_rows(), " bad rows skipped")
                   : std::string());
  while (!stop_) {
    absl::Status status;
    if (!joined) {
      status = Join(summary);
      joined = status.ok();
    } else {
      auto assignment = client_->GetTask(config_.task(), kPoll, training_declined_);
      if (absl::IsFailedPrecondition(assignment.status())) {
        // The coordinator does not know this node (it restarted): join again.
        spdlog::info("{}; joining again", assignment.status().message());
        joined = false;
        continue;
      }
      if (!assignment.ok()) {
        status = assignment.status();
      } else {
        Outcome outcome = Handle(*assignment);
        if (outcome.exit) return outcome.status;
        status = std::move(outcome.status);
      }
    }
    if (status.ok()) {
      EndOutage();
      backoff.Reset();
      continue;
    }
    // Credentials, or a schema or row count the coordinator refused at Join:
    // retrying will not help.
    if (Classify(status) == StatusClass::kFatal ||
        ((absl::IsFailedPrecondition(status) || absl::IsInvalidArgument(status)) && !joined)) {
      return status;
    }
    if (Classify(status) == StatusClass::kRetry) joined = joined && !absl::IsUnavailable(status);
    WaitAfterFailure(status, backoff);
  }
  return absl::OkStatus();
}

absl::Status Node::Join(const v1::DataSummary& summary) {
  v1::JoinRequest join;
  join.add_tasks(config_.task());
  join.set_feature_schema_hash(learner_->input_hash());
  *join.mutable_data() = summary;
  join.set_node_version(kNodeVersion);
  auto response = client_->Join(join);
  if (!response.ok()) return response.status();
  spdlog::info("joined the coordinator as {}", response->node_id());
  return absl::OkStatus();
}

Node::Outcome Node::Handle(const v1::TaskAssignment& a) {
  // The node polls for its own task only; any other name (it becomes part of
  // file paths) is a coordinator error, not something to act on.
  if (a.kind() != v1::TaskAssignment::WAIT && a.kind() != v1::TaskAssignment::FINISHED &&
      a.task() != config_.task()) {
    spdlog::warn("the coordinator sent an assignment for task \"{}\", not {}; ignored",
                 a.task().substr(0, 64), config_.task());
    SleepUnlessStopped(kPoll);
    return {};
  }
  if ((a.kind() == v1::TaskAssignment::TRAIN || a.kind() == v1::TaskAssignment::EVALUATE) &&
      task::ResolveKind(a.task_kind(), a.task()) != learner_->kind()) {
    return {KindMismatch(a), /*exit=*/true};  // a config error: retrying will not help
  }
  const bool sits_out = refused_round_ == a.round_id();
  switch (a.kind()) {
    case v1::TaskAssignment::TRAIN: {
      if (sits_out) {
        SleepUnlessStopped(kPoll);  // wait for the next round
        return {};
      }
      absl::Status status = Train(a);
      const StatusClass c = Classify(status);
      if (c == StatusClass::kSitOut || c == StatusClass::kFatal) refused_round_ = a.round_id();
      // A secure round this node cannot take part in is sat out, but
      // credentials or a forged manifest still stop the node.
      if (a.has_secure() && c == StatusClass::kSitOut) {
        spdlog::warn("round {}: secure update refused: {}; sitting the round out", a.round_id(),
                     status.message());
        return {};
      }
      return {status};
    }
    case v1::TaskAssignment::EVALUATE:
      return {Evaluate(a)};
    case v1::TaskAssignment::ADVERTISE_KEYS:
    case v1::TaskAssignment::SHARE_KEYS:
    case v1::TaskAssignment::CONFIRM_SURVIVORS:
    case v1::TaskAssignment::UNMASK: {
      if (sits_out) {
        SleepUnlessStopped(kPoll);
        return {};
      }
      absl::Status status = SecureStep(a);
      const StatusClass c = Classify(status);
      if (c == StatusClass::kSitOut || c == StatusClass::kFatal) {
        // Refused by this node or by the coordinator: the node drops out of
        // this round (the others recover its masks) and waits for the next.
        refused_round_ = a.round_id();
        spdlog::warn("round {}: secure aggregation step refused: {}; sitting the round out",
                     a.round_id(), status.message());
        return {};
      }
      return {status};
    }
    case v1::TaskAssignment::BOOST: {
      if (sits_out) {
        SleepUnlessStopped(kPoll);
        return {};
      }
      absl::Status status = BoostStep(a);
      const StatusClass c = Classify(status);
      if (c == StatusClass::kSitOut || c == StatusClass::kFatal) {
        // Nothing left for this step; the coordinator's session ends at
        // the step's deadline with the trees finished so far.
        refused_round_ = a.round_id();
        spdlog::warn("round {}: boosting step refused: {}; sitting the round out", a.round_id(),
                     status.message());
        return {};
      }
      return {status};
    }
    case v1::TaskAssignment::FINISHED:
      if (config_.exit_when_finished()) {
        spdlog::info("task {} finished all its rounds; exiting", config_.task());
        return {absl::OkStatus(), /*exit=*/true};
      }
      SleepUnlessStopped(kPoll);
      return {};
    default:
      return {};
  }
}

void Node::WaitAfterFailure(const absl::Status& status, Backoff& backoff) {
  const auto wait = backoff.Next();
  if (Classify(status) != StatusClass::kRetry) {
    // The coordinator refused this step (closed round, rejected update, a
    // reply too large): wait for the next round's assignment, backing off so
    // that a refusal that repeats is not a busy loop.
    spdlog::warn("{}; waiting for the next round (next try in {} ms)", status.message(),
                 wait.count());
    SleepUnlessStopped(wait);
    return;
  }
  // An outage (a coordinator restart, a network cut) is one warning and one
  // line when it ends, not a line per retry.
  if (!absl::IsUnavailable(status)) {
    spdlog::warn("{}; retrying in {} ms", status.message(), wait.count());
  } else if (!outage_since_) {
    outage_since_ = std::chrono::steady_clock::now();
    spdlog::warn(
        "{}; retrying with backoff (at most {} s between tries) until the coordinator is back",
        status.message(), config_.max_backoff_seconds());
  } else {
    spdlog::debug("{}; retrying in {} ms", status.message(), wait.count());
  }
  SleepUnlessStopped(wait);
  // Unreachable: the next try dials afresh (see CoordinatorClient::Reconnect).
  if (absl::IsUnavailable(status)) client_->Reconnect();
}

void Node::EndOutage() {
  if (!outage_since_) return;
  spdlog::info(
      "the coordinator is reachable again after {:.0f} s",
      std::chrono::duration<double>(std::chrono::steady_clock::now() - *outage_since_).count());
  outage_since_.reset();
}

absl::StatusOr<Node::FetchedModel> Node::FetchModel(const v1::TaskAssignment& a) {
  manifest::SignedManifest signed_manifest{a.manifest_json(), a.manifest_signature()};
  auto m = manifest::VerifyManifest(
      signed_manifest, *verifier_, absl::StrCat("manifest of ", a.task(), " v", a.model_version()));
  if (!m.ok()) return m.status();
  if (m->task != a.task() || m->version != a.model_version()) {
    return absl::PermissionDeniedError(absl::StrCat("signed manifest is for ", m->task, " v",
                                                    m->version, ", not ", a.task(), " v",
                                                    a.model_version()));
  }
  if (m->feature_schema_hash != learner_->input_hash()) {
    return absl::FailedPreconditionError(
        absl::StrCat("model ", a.task(), " v", a.model_version(), " uses feature schema ",
                     m->feature_schema_hash, " but this node's is ", learner_->input_hash()));
  }
  const std::string path =
      absl::StrCat(config_.work_dir(), "/models/", a.task(), "-v", a.model_version(), ".fct");
  v1::DownloadModelRequest request;
  request.set_task(a.task());
  request.set_round_id(a.round_id());
  request.set_model_version(a.model_version());
  auto sha = client_->DownloadModel(request, path, kMaxModelBytes);
  if (!sha.ok()) return sha.status();
  if (*sha != m->wire_sha256) {
    return absl::DataLossError(absl::StrCat("downloaded model ", a.task(), " v", a.model_version(),
                                            " hashes to ", *sha, ", not the signed ",
                                            m->wire_sha256));
  }
  spdlog::info("round {}: received {} v{} (signature and SHA-256 verified)", a.round_id(), a.task(),
               a.model_version());
  PruneModels(a.task(), a.model_version());
  return FetchedModel{path, *sha};
}

absl::Status Node::Train(const v1::TaskAssignment& a) {
  // The node, not the coordinator, decides whether its update may leave in
  // the clear: checked before any training.
  if (!a.has_secure() && config_.aggregation_mode() != v1::TRUSTED) {
    return absl::PermissionDeniedError(absl::StrCat(
        "round ", a.round_id(),
        ": the coordinator asks for this node's update in the clear "
        "(its mode is trusted), but this node's config allows only aggregation_mode SECURE; "
        "nothing was sent. Set \"aggregation_mode\": \"TRUSTED\" in the node config only if "
        "the administration consents to the coordinator seeing its update"));
  }
  // The node, not the coordinator, decides what its rows may reveal.
  absl::StatusOr<std::optional<privacy::DpSgdPlan>> plan = CheckPrivacy(a);
  if (!plan.ok()) return plan.status();
  const task::ModelSpec spec = learner_->SpecOf(a);
  auto model = FetchModel(a);
  if (!model.ok()) return model.status();
  // Before any training: a second masked update from one model is refused.
  if (a.has_secure()) {
    if (absl::Status s = secure_->CheckMayContribute(a, model->wire_sha256); !s.ok()) return s;
  }
  auto global = tensor::DecodeFile(model->path);
  if (!global.ok()) return global.status();
  v1::TrainingConfig training = a.training();
  training.set_seed(
      RoundTrainingSeed(training.seed(), a.round_id(), config_.reproducible_training()));
  std::optional<training::DpSgdOptions> dp;
  if (*plan) {
    dp.emplace();
    dp->clip_norm = (*plan)->clip_norm;
    dp->noise_multiplier = (*plan)->noise_multiplier;
    dp->stats_noise_multiplier = (*plan)->stats_noise_multiplier;
    dp->numeric_low = a.privacy().numeric_low();
    dp->numeric_high = a.privacy().numeric_high();
    // The batches and the noise must be secret to whoever sees the update,
    // the coordinator included: 256 bits from the OS.
    dp->secret.resize(32);
    if (RAND_bytes(reinterpret_cast<unsigned char*>(dp->secret.data()), 32) != 1) {
      return absl::InternalError("no randomness from the OS for the DP-SGD noise; nothing sent");
    }
    // Spent before training touches a row: a round that fails or crashes
    // afterwards, whatever the reason, is counted all the same, so no failure
    // can be a query outside the budget.
    if (absl::Status s = budget_.Record(**plan); !s.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot record the privacy spent (", s.message(), "); nothing trained"));
    }
    spdlog::info(
        "round {}: DP-SGD {} steps, sampling rate {:.4g}, noise multiplier {:.4g}, clip {}; "
        "epsilon spent on {} is now {:.4g} at delta {}",
        a.round_id(), (*plan)->steps, (*plan)->sampling_rate, (*plan)->noise_multiplier,
        (*plan)->clip_norm, a.task(), budget_.spent().epsilon(), (*plan)->delta);
    training_declined_ = budget_.DeclineReason();
    if (!training_declined_.empty()) spdlog::warn("{}", training_declined_);
  }
  process::CrashPoint("node.training");
  auto result = learner_->Train(spec, *std::move(global), training, dp ? &*dp : nullptr);
  if (dp) OPENSSL_cleanse(dp->secret.data(), dp->secret.size());
  if (!result.ok()) {
    return LocalTrainingFailure(result.status());  // sat out, not retried
  }
  if (*plan) {
    // What the trainer did must be what was recorded.
    if (result->dp_steps != (*plan)->steps || result->dp_sampling_rate != (*plan)->sampling_rate) {
      return absl::InternalError(absl::StrCat("DP-SGD took ", result->dp_steps,
                                              " steps at sampling rate ", result->dp_sampling_rate,
                                              ", not the planned ", (*plan)->steps, " at ",
                                              (*plan)->sampling_rate, "; nothing was sent"));
    }
    if (result->dp_excluded > 0) {
      spdlog::warn("round {}: {} drawn rows were left out: their loss was not finite", a.round_id(),
                   result->dp_excluded);
    }
  }
  tensor::NamedTensors update = std::move(result->update);
  v1::UpdateHeader header;
  header.set_task(a.task());
  header.set_round_id(a.round_id());
  header.set_model_version(a.model_version());
  // Under DP-SGD too the weight is the training row count, which the node
  // declared at join and which set its sampling rate: public to the
  // accountant (docs/privacy.md).
  const uint64_t samples = result->samples;
  if (*plan) *header.mutable_privacy() = budget_.spent();
  // Mode secure: the update and its sample count leave the node only masked;
  // the clear header carries neither count nor loss.
  std::vector<uint32_t> masked_words;
  if (a.has_secure()) {
    std::vector<SecureAggregationSession::UpdatePiece> pieces;
    for (const auto& [name, t] : update) {
      pieces.push_back({name, {t.data_ptr<float>(), static_cast<size_t>(t.numel())}});
    }
    absl::StatusOr<SecureAggregationSession::MaskedUpdate> masked =
        secure_->MaskUpdate(a, model->wire_sha256, pieces, samples);
    if (!masked.ok()) return masked.status();
    masked_words = std::move(masked->words);
    for (v1::ShareComplaint& complaint : masked->complaints) {
      *header.add_complaints() = std::move(complaint);
    }
    if (masked->clipped > 0) {
      spdlog::info("round {}: {} update coordinates were clipped to +/-{} before masking",
                   a.round_id(), masked->clipped, a.secure().clip());
    }
    update.clear();
    update.emplace_back(
        secagg::kMaskedInputTensorName,
        torch::from_blob(masked_words.data(), {static_cast<int64_t>(masked_words.size())},
                         torch::kInt32));
  } else {
    header.set_sample_count(samples);
    // Under DP-SGD the loss, an unnoised mean over the drawn rows, stays here.
    if (!*plan) header.set_train_loss(result->mean_loss);
  }
  tensor::TensorEncoder encoder(update);
  // A transfer that breaks is sent again from the first byte (the update is
  // still in memory), not retrained. If only the answer was lost, the
  // coordinator already has the update and says so.
  absl::StatusOr<v1::UploadUpdateResponse> response;
  for (int attempt = 1;; ++attempt) {
    response = client_->UploadUpdate(header, encoder);
    if (attempt > 1 && absl::IsAlreadyExists(response.status())) {
      spdlog::info("round {}: the coordinator already had this update ({})", a.round_id(),
                   response.status().message());
      return absl::OkStatus();
    }
    if (response.ok() || Classify(response.status()) != StatusClass::kRetry ||
        attempt == kUploadAttempts || stop_) {
      break;
    }
    spdlog::warn("round {}: upload attempt {} of {} failed: {}; sending again", a.round_id(),
                 attempt, kUploadAttempts, response.status().message());
    SleepUnlessStopped(std::chrono::seconds(attempt));
    encoder.Rewind();
  }
  if (!response.ok()) return response.status();
  spdlog::info("round {}: sent {}update for {} v{} ({} bytes, {} samples, train loss {:.4f})",
               a.round_id(), a.has_secure() ? "masked " : "", a.task(), a.model_version(),
               response->bytes_received(), samples, result->mean_loss);
  return absl::OkStatus();
}

absl::StatusOr<std::optional<privacy::DpSgdPlan>> Node::CheckPrivacy(const v1::TaskAssignment& a) {
  absl::StatusOr<std::optional<privacy::DpSgdPlan>> plan = budget_.Check(a.privacy(), a.training());
  if (!plan.ok()) return plan;
  if (*plan) learner_->KeepTrainingRowsOutOfEvaluation();
  if (*plan && config_.reproducible_training()) {
    return absl::PermissionDeniedError(
        "the task trains with DP-SGD, but this node's reproducible_training would make its "
        "noise predictable; nothing was trained (reproducible_training is for tests without DP)");
  }
  if (*plan && config_.privacy().max_epsilon() == 0 && !warned_no_budget_) {
    warned_no_budget_ = true;
    spdlog::warn(
        "the task trains with DP-SGD and this node sets no privacy.max_epsilon: it accepts "
        "whatever noise the coordinator asks for; set a budget in the node config");
  }
  // A round refused for its budget (ResourceExhausted) is sat out; the node
  // declines further training only when its own recorded spending says so
  // (DeclineReason), not on one assignment's terms.
  return plan;
}

absl::Status Node::SecureStep(const v1::TaskAssignment& a) {
  std::string step;
  absl::Status sent;
  if (a.kind() == v1::TaskAssignment::ADVERTISE_KEYS) {
    // A round this node may not train in is not joined at all.
    if (absl::StatusOr<std::optional<privacy::DpSgdPlan>> plan = CheckPrivacy(a); !plan.ok()) {
      return plan.status();
    }
    step = "advertised keys";
    auto request = secure_->AdvertiseKeys(a);
    if (!request.ok()) return absl::FailedPreconditionError(request.status().message());
    sent = client_->AdvertiseKeys(*request);
  } else if (a.kind() == v1::TaskAssignment::SHARE_KEYS) {
    step = "checked the keys of the other nodes and sent them encrypted shares";
    auto request = secure_->ShareKeys(a);
    if (!request.ok()) return absl::FailedPreconditionError(request.status().message());
    sent = client_->ShareKeys(*request);
  } else if (a.kind() == v1::TaskAssignment::CONFIRM_SURVIVORS) {
    step = absl::StrCat("signed the list of ", a.secure().masked_input_from_size(),
                        " nodes whose masked input arrived");
    auto request = secure_->ConfirmSurvivors(a);
    if (!request.ok()) return absl::FailedPreconditionError(request.status().message());
    sent = client_->ConfirmSurvivors(*request);
  } else {
    step = "revealed the shares for unmasking";
    auto request = secure_->Unmask(a);
    if (!request.ok()) return absl::FailedPreconditionError(request.status().message());
    sent = client_->Unmask(*request);
  }
  // A retried call whose first attempt got through.
  if (absl::IsAlreadyExists(sent)) sent = absl::OkStatus();
  if (sent.ok()) spdlog::info("round {}: {}", a.round_id(), step);
  return sent;
}

absl::Status Node::Evaluate(const v1::TaskAssignment& a) {
  auto model = FetchModel(a);
  if (!model.ok()) return model.status();
  auto candidate = tensor::DecodeFile(model->path);
  if (!candidate.ok()) return candidate.status();
  auto evaluated = learner_->Evaluate(learner_->SpecOf(a), *candidate);
  if (!evaluated.ok()) return evaluated.status();
  const v1::EvaluationMetrics& metrics = *evaluated;
  v1::ReportMetricsRequest report;
  report.set_task(a.task());
  report.set_round_id(a.round_id());
  report.set_model_version(a.model_version());
  *report.mutable_metrics() = metrics;
  if (absl::Status s = RecordMetrics(a, metrics); !s.ok()) return s;
  if (absl::Status s = client_->ReportMetrics(report); !s.ok()) return s;
  std::string extra;
  if (learner_->kind() == v1::TASK_XRAY) extra = absl::StrCat(", accuracy ", metrics.accuracy());
  if (learner_->kind() == v1::TASK_ANOMALY) {
    extra = absl::StrCat(", flagged ", metrics.flagged(), " of ", metrics.examples());
  }
  spdlog::info("round {}: {} v{} on the local hold-out: PR-AUC {:.4f}, ROC-AUC {:.4f}{}",
               a.round_id(), a.task(), a.model_version(), metrics.pr_auc(), metrics.roc_auc(),
               extra);
  return absl::OkStatus();
}

void Node::PruneModels(const std::string& task, uint64_t newest) const {
  const std::string prefix = task + "-v";
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::directory_iterator(config_.work_dir() + "/models", ec)) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with(prefix) || !name.ends_with(".fct")) continue;
    uint64_t version = 0;
    const std::string digits = name.substr(prefix.size(), name.size() - prefix.size() - 4);
    if (!absl::SimpleAtoi(digits, &version) || version + 1 >= newest) continue;
    std::filesystem::remove(entry.path(), ec);  // best effort: a leftover only costs disk
  }
}

absl::Status Node::KindMismatch(const v1::TaskAssignment& a) const {
  return absl::FailedPreconditionError(absl::StrCat(
      "task ", a.task(), " on the coordinator has kind ",
      std::string(task::KindName(task::ResolveKind(a.task_kind(), a.task()))),
      ", but this node's config gives it kind ", std::string(task::KindName(learner_->kind())),
      " (task_kind in the node config); nothing was trained"));
}

absl::Status Node::RecordMetrics(const v1::TaskAssignment& a,
                                 const v1::EvaluationMetrics& metrics) {
  // The administration's own record of how each global model does on its data.
  const std::string json = config::PrintProtoJson(metrics).value_or("{}");
  std::ofstream out(config_.work_dir() + "/metrics.jsonl", std::ios::app);
  out << "{\"task\":\"" << a.task() << "\",\"round\":" << a.round_id()
      << ",\"version\":" << a.model_version() << ",\"metrics\":" << json << "}\n";
  out.flush();
  if (!out)
    return absl::InternalError(
        absl::StrCat("cannot append to ", config_.work_dir(), "/metrics.jsonl"));
  return absl::OkStatus();
}

absl::Status Node::BoostStep(const v1::TaskAssignment& a) {
  if (boosting_ == nullptr) {
    return absl::FailedPreconditionError(
        "a boosting step, but this node's task is not a risk task over declarations");
  }
  absl::StatusOr<BoostingParticipant::Output> out = boosting_->Step(a);
  if (!out.ok()) {
    // A malformed step is the coordinator's error, refused like the node's
    // own refusals: nothing left.
    return absl::FailedPreconditionError(out.status().message());
  }
  if (out->key) return client_->AdvertiseBoostingKey(*out->key);
  for (const v1::SubmitBoostingVectorRequest& part : out->parts) {
    if (absl::Status s = client_->SubmitBoostingVector(part); !s.ok()) return s;
  }
  if (a.boosting().kind() == v1::BoostingStep::LEVEL && boosting_->last_suppressed() > 0) {
    spdlog::info(
        "round {} tree {}: {} open tree node(s) held fewer than {} of this node's rows "
        "and were left out of its histogram",
        a.round_id(), a.boosting().tree(), boosting_->last_suppressed(),
        config_.secure_aggregation().boosting_min_cell_rows());
  }
  return absl::OkStatus();
}

}  // namespace fedcustoms::node
