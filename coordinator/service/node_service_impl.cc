#include "coordinator/service/node_service_impl.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/crypto/sha256.h"
#include "common/log/logging.h"
#include "common/process/crash_point.h"
#include "common/tensor/chunker.h"
#include "common/tensor/tensor_codec.h"
#include "coordinator/service/authorization.h"
#include "coordinator/service/chunk_streaming.h"

namespace fedcustoms::coordinator {
namespace {

constexpr char kNodeRpc[] = "NodeService";

// Deletes the spool file however the upload ends.
class SpoolFile {
 public:
  explicit SpoolFile(std::string path) : path_(std::move(path)) {}
  ~SpoolFile() {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string SpoolName(const std::string& dir, const std::string& task, uint64_t round,
                      const std::string& node) {
  static std::atomic<uint64_t> counter{0};
  // The CN comes from a certificate our CA signed, but it is still not a safe
  // file name ("../x", "a/b"): keep letters, digits, '-' and '_' only.
  std::string safe_node = node;
  for (char& c : safe_node) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') c = '_';
  }
  return absl::StrCat(dir, "/", task, "-r", round, "-", safe_node, "-", ::getpid(), "-", counter++,
                      ".upload");
}

}  // namespace

absl::StatusOr<TaskRunner*> NodeServiceImpl::Runner(const std::string& task) const {
  auto it = runners_.find(task);
  if (it == runners_.end()) {
    return absl::NotFoundError(absl::StrCat("unknown task \"", task, "\""));
  }
  return it->second;
}

grpc::Status NodeServiceImpl::Join(grpc::ServerContext* context, const v1::JoinRequest* request,
                                   v1::JoinResponse* response) {
  auto peer = authorizer_.Authorize(*context, {pki::Role::kNode}, "NodeService.Join");
  if (!peer.ok()) return ToGrpc(peer.status());
  if (request->tasks().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "join: no task named");
  }
  for (const std::string& task : request->tasks()) {
    auto runner = Runner(task);
    if (!runner.ok()) return ToGrpc(runner.status());
    const std::string& expected = (*runner)->feature_schema_hash();
    if (request->feature_schema_hash() != expected) {
      spdlog::warn("join refused for {}: feature schema {} differs from task {}'s {}",
                   peer->common_name, request->feature_schema_hash(), task, expected);
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          absl::StrCat("feature schema hash ", request->feature_schema_hash(),
                                       " differs from task ", task, "'s ", expected,
                                       ": the node's schema file does not match the federation's"));
    }
    if (absl::Status s = (*runner)->Join(peer->common_name, request->data().train_rows(),
                                         request->data().holdout_rows());
        !s.ok()) {
      spdlog::warn("join refused for {} on task {}: {}", peer->common_name, task, s.message());
      return ToGrpc(s);
    }
  }
  spdlog::info("node {} joined (tasks: {}; {} train rows, {} hold-out rows)", peer->common_name,
               absl::StrJoin(request->tasks(), ","), request->data().train_rows(),
               request->data().holdout_rows());
  response->set_node_id(peer->common_name);
  response->set_poll_seconds(kMaxPollSeconds);
  return grpc::Status::OK;
}

grpc::Status NodeServiceImpl::GetTask(grpc::ServerContext* context,
                                      const v1::GetTaskRequest* request,
                                      v1::TaskAssignment* response) {
  auto peer = authorizer_.Authorize(*context, {pki::Role::kNode}, "NodeService.GetTask");
  if (!peer.ok()) return ToGrpc(peer.status());
  auto runner = Runner(request->task());
  if (!runner.ok()) return ToGrpc(runner.status());
  // Only a node whose schema was checked at Join gets work; after a
  // coordinator restart this tells the node to join again.
  if (!(*runner)->HasJoined(peer->common_name)) {
    return grpc::Status(
        grpc::StatusCode::FAILED_PRECONDITION,
        absl::StrCat("node ", peer->common_name, " has not joined task ", request->task(),
                     " since the coordinator started; join first"));
  }
  uint32_t wait_seconds = request->wait_seconds();
  if (wait_seconds == 0 || wait_seconds > kMaxPollSeconds) wait_seconds = kMaxPollSeconds;
  auto wait = std::chrono::milliseconds(wait_seconds * 1000);
  // Answer before the client's own deadline expires.
  const auto until_deadline = std::chrono::duration_cast<std::chrono::milliseconds>(
      context->deadline() - std::chrono::system_clock::now() - std::chrono::milliseconds(500));
  wait = std::max(std::chrono::milliseconds(0), std::min(wait, until_deadline));
  *response = (*runner)->NextAssignment(peer->common_name, wait, request->training_declined());
  return grpc::Status::OK;
}

grpc::Status NodeServiceImpl::DownloadModel(grpc::ServerContext* context,
                                            const v1::DownloadModelRequest* request,
                                            grpc::ServerWriter<v1::DataChunk>* writer) {
  auto peer = authorizer_.Authorize(*context, {pki::Role::kNode}, "NodeService.DownloadModel");
  if (!peer.ok()) return ToGrpc(peer.status());
  auto runner = Runner(request->task());
  if (!runner.ok()) return ToGrpc(runner.status());
  auto snapshot =
      (*runner)->ModelForDownload(peer->common_name, request->round_id(), request->model_version());
  if (!snapshot.ok()) {
    spdlog::warn("download refused for {}: {}", peer->common_name, snapshot.status().message());
    return ToGrpc(snapshot.status());
  }
  // The wire file was hashed when it was written: sending is reading and
  // encrypting, nothing more. The node checks the hash against the manifest.
  absl::StatusOr<std::string> sha = crypto::FromHex((*snapshot)->wire_sha256);
  if (!sha.ok()) return ToGrpc(sha.status());
  std::unique_ptr<StreamWatchdog::Lease> lease = watchdog_->Watch(context);
  absl::Status sent = StreamFile((*snapshot)->wire_path, writer, *sha, lease.get());
  if (!sent.ok()) {
    spdlog::warn("download of {} v{} by {} failed: {}", request->task(), request->model_version(),
                 peer->common_name, sent.message());
    return ToGrpc(sent);
  }
  spdlog::info("node {} downloaded {} v{} for round {} ({} bytes)", peer->common_name,
               request->task(), request->model_version(), request->round_id(),
               (*snapshot)->wire_bytes);
  return grpc::Status::OK;
}

grpc::Status NodeServiceImpl::UploadUpdate(grpc::ServerContext* context,
                                           grpc::ServerReader<v1::UploadUpdateRequest>* reader,
                                           v1::UploadUpdateResponse* response) {
  auto peer = authorizer_.Authorize(*context, {pki::Role::kNode}, "NodeService.UploadUpdate");
  if (!peer.ok()) return ToGrpc(peer.status());
  const std::string& node = peer->common_name;
  v1::UploadUpdateRequest message;
  // The header is read under the watchdog too: a stream that never sends it
  // is cut after stream_idle_seconds like any stalled stream.
  std::unique_ptr<StreamWatchdog::Lease> lease = watchdog_->Watch(context);
  if (!reader->Read(&message) || !message.has_header()) {
    if (lease->expired()) {
      // The call is cancelled already: the node sees CANCELLED.
      return grpc::Status(grpc::StatusCode::CANCELLED, "upload: no header; stream cancelled");
    }
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "upload: the first message must be the update header");
  }
  lease->Touch();
  const v1::UpdateHeader header = message.header();
  auto runner = Runner(header.task());
  if (!runner.ok()) return ToGrpc(runner.status());
  if (absl::Status s = (*runner)->BeginUpload(node, header); !s.ok()) {
    spdlog::warn("upload from {} for {} round {} refused: {}", node, header.task(),
                 header.round_id(), s.message());
    return ToGrpc(s);
  }
  // From here on the node's slot is reserved: every exit releases it or folds,
  // an exception included (it would otherwise block the node for the round).
  try {
    return ReceiveUpdate(context, reader, response, *runner, node, header, *lease);
  } catch (const std::exception& e) {
    (*runner)->AbortUpload(node, header);
    spdlog::error("upload from {} for {} round {} failed: {}", node, header.task(),
                  header.round_id(), e.what());
    return grpc::Status(grpc::StatusCode::INTERNAL,
                        "the coordinator failed while receiving the update; retry");
  }
}

grpc::Status NodeServiceImpl::ReceiveUpdate(grpc::ServerContext* context,
                                            grpc::ServerReader<v1::UploadUpdateRequest>* reader,
                                            v1::UploadUpdateResponse* response, TaskRunner* runner,
                                            const std::string& node, const v1::UpdateHeader& header,
                                            StreamWatchdog::Lease& lease) {
  v1::UploadUpdateRequest message;
  SpoolFile spool(SpoolName(spool_dir_, header.task(), header.round_id(), node));
  // A stream that would still be arriving when the round stops taking
  // updates is cut (a trickle of chunks never trips the idle limit).
  lease.CutAt(runner->UploadDeadline(header.round_id()));
  auto past_deadline = [&] {
    return absl::DeadlineExceededError(
        absl::StrCat("upload: round ", header.round_id(), " of task ", header.task(),
                     " stopped taking updates before this one finished; stream cut"));
  };
  absl::Status status = [&]() -> absl::Status {
    std::ofstream out(spool.path(), std::ios::binary | std::ios::trunc);
    if (!out) return absl::InternalError("coordinator cannot spool the upload");
    tensor::ChunkAssembler assembler(&out, runner->MaxUploadBytes());
    bool finished = false;
    while (reader->Read(&message)) {
      lease.Touch();
      if (lease.PastCut()) return past_deadline();
      if (!message.has_chunk()) {
        return absl::InvalidArgumentError("upload: a second header in the same stream");
      }
      if (finished) {
        return absl::InvalidArgumentError("upload: data after the final SHA-256 chunk");
      }
      const v1::DataChunk& chunk = message.chunk();
      if (absl::Status s = assembler.Add(chunk.index(), chunk.data()); !s.ok()) return s;
      process::CrashPoint("coordinator.upload");
      if (!chunk.sha256().empty()) {
        if (absl::Status s = assembler.Finish(chunk.sha256(), chunk.total_bytes()); !s.ok()) {
          return s;
        }
        finished = true;
      }
    }
    if (lease.expired()) {
      if (lease.PastCut()) return past_deadline();
      return absl::DeadlineExceededError(absl::StrCat("upload: no data from the node for ",
                                                      watchdog_->idle_limit().count() / 1000,
                                                      " s; stream cancelled"));
    }
    if (context->IsCancelled()) return absl::CancelledError("upload: the node went away");
    if (!finished) {
      return absl::InvalidArgumentError("upload: stream ended without its final SHA-256 chunk");
    }
    out.close();
    if (!out) return absl::InternalError("coordinator cannot spool the upload (disk full?)");
    response->set_bytes_received(assembler.total_bytes());
    return absl::OkStatus();
  }();
  if (!status.ok()) {
    runner->AbortUpload(node, header);
    spdlog::warn("upload from {} for {} round {} rejected: {}", node, header.task(),
                 header.round_id(), status.message());
    return ToGrpc(status);
  }
  if (absl::Status s = runner->FinishUpload(node, header, spool.path()); !s.ok()) {
    spdlog::warn("{}", s.message());
    return ToGrpc(s);
  }
  // In secure mode the header carries no sample count: it travels masked.
  spdlog::info("node {} sent its update for {} round {} ({} bytes, {})", node, header.task(),
               header.round_id(), response->bytes_received(),
               header.sample_count() == 0 ? std::string("masked")
                                          : absl::StrCat(header.sample_count(), " samples"));
  response->set_accepted(true);
  return grpc::Status::OK;
}

grpc::Status NodeServiceImpl::ReportMetrics(grpc::ServerContext* context,
                                            const v1::ReportMetricsRequest* request,
                                            v1::ReportMetricsResponse* response) {
  auto peer = authorizer_.Authorize(*context, {pki::Role::kNode}, "NodeService.ReportMetrics");
  if (!peer.ok()) return ToGrpc(peer.status());
  auto runner = Runner(request->task());
  if (!runner.ok()) return ToGrpc(runner.status());
  absl::Status s = (*runner)->ReportMetrics(peer->common_name, request->round_id(),
                                            request->model_version(), request->metrics());
  if (!s.ok()) {
    spdlog::warn("metrics from {} refused: {}", peer->common_name, s.message());
  }
  return ToGrpc(s);
}

namespace {

// The secure-aggregation and boosting steps share their shape: authorize, find the
// task, hand over, log a refusal (never the keys or shares themselves).
template <typename Request, typename Step>
grpc::Status SecureStep(
    const Authorizer& authorizer, grpc::ServerContext& context, const char* rpc,
    const Request& request,
    const std::function<absl::StatusOr<TaskRunner*>(const std::string&)>& runner_of, Step step) {
  auto peer = authorizer.Authorize(context, {pki::Role::kNode}, rpc);
  if (!peer.ok()) return ToGrpc(peer.status());
  auto runner = runner_of(request.task());
  if (!runner.ok()) return ToGrpc(runner.status());
  absl::Status s = step(**runner, peer->common_name);
  if (!s.ok()) {
    spdlog::warn("{} from {} for {} round {} refused: {}", rpc, peer->common_name, request.task(),
                 request.round_id(), s.message());
  }
  return ToGrpc(s);
}

}  // namespace

grpc::Status NodeServiceImpl::AdvertiseKeys(grpc::ServerContext* context,
                                            const v1::AdvertiseKeysRequest* request,
                                            v1::AdvertiseKeysResponse*) {
  return SecureStep(
      authorizer_, *context, "NodeService.AdvertiseKeys", *request,
      [this](const std::string& task) { return Runner(task); },
      [&](TaskRunner& runner, const std::string& node) {
        return runner.AdvertiseKeys(node, *request);
      });
}

grpc::Status NodeServiceImpl::ShareKeys(grpc::ServerContext* context,
                                        const v1::ShareKeysRequest* request,
                                        v1::ShareKeysResponse*) {
  return SecureStep(
      authorizer_, *context, "NodeService.ShareKeys", *request,
      [this](const std::string& task) { return Runner(task); },
      [&](TaskRunner& runner, const std::string& node) {
        return runner.ShareKeys(node, *request);
      });
}

grpc::Status NodeServiceImpl::ConfirmSurvivors(grpc::ServerContext* context,
                                               const v1::ConfirmSurvivorsRequest* request,
                                               v1::ConfirmSurvivorsResponse*) {
  return SecureStep(
      authorizer_, *context, "NodeService.ConfirmSurvivors", *request,
      [this](const std::string& task) { return Runner(task); },
      [&](TaskRunner& runner, const std::string& node) {
        return runner.ConfirmSurvivors(node, *request);
      });
}

grpc::Status NodeServiceImpl::Unmask(grpc::ServerContext* context, const v1::UnmaskRequest* request,
                                     v1::UnmaskResponse*) {
  return SecureStep(
      authorizer_, *context, "NodeService.Unmask", *request,
      [this](const std::string& task) { return Runner(task); },
      [&](TaskRunner& runner, const std::string& node) { return runner.Unmask(node, *request); });
}

grpc::Status NodeServiceImpl::AdvertiseBoostingKey(grpc::ServerContext* context,
                                                   const v1::AdvertiseBoostingKeyRequest* request,
                                                   v1::AdvertiseBoostingKeyResponse*) {
  return SecureStep(
      authorizer_, *context, "NodeService.AdvertiseBoostingKey", *request,
      [this](const std::string& task) { return Runner(task); },
      [&](TaskRunner& runner, const std::string& node) {
        return runner.AdvertiseBoostingKey(node, *request);
      });
}

grpc::Status NodeServiceImpl::SubmitBoostingVector(grpc::ServerContext* context,
                                                   const v1::SubmitBoostingVectorRequest* request,
                                                   v1::SubmitBoostingVectorResponse*) {
  return SecureStep(
      authorizer_, *context, "NodeService.SubmitBoostingVector", *request,
      [this](const std::string& task) { return Runner(task); },
      [&](TaskRunner& runner, const std::string& node) {
        return runner.SubmitBoostingVector(node, *request);
      });
}

}  // namespace fedcustoms::coordinator
