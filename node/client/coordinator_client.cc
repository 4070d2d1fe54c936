#include "node/client/coordinator_client.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "common/process/crash_point.h"
#include "common/tensor/chunk_download.h"
#include "common/tensor/chunker.h"
#include "common/tls/credentials.h"
#include "common/tls/require_tls13.h"

namespace fedcustoms::node {
namespace {

constexpr std::chrono::seconds kCallDeadline(60);
// Transfers get a generous deadline: 400 MB over a slow link takes minutes.
constexpr std::chrono::minutes kTransferDeadline(30);

absl::Status FromGrpc(const grpc::Status& status, const std::string& call) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat(call, ": ", status.error_message()));
}

void SetDeadline(grpc::ClientContext& context, std::chrono::seconds after) {
  context.set_deadline(std::chrono::system_clock::now() + after);
}

// A unary call whose response carries nothing the node needs.
template <typename Request, typename Response>
absl::Status Call(v1::NodeService::Stub& stub,
                  grpc::Status (v1::NodeService::Stub::*method)(grpc::ClientContext*,
                                                                const Request&, Response*),
                  const Request& request, const std::string& what) {
  grpc::ClientContext context;
  SetDeadline(context, kCallDeadline);
  Response response;
  return FromGrpc((stub.*method)(&context, request, &response), what);
}

}  // namespace

absl::StatusOr<std::unique_ptr<CoordinatorClient>> CoordinatorClient::Create(
    const v1::NodeConfig& config) {
  if (absl::Status s = tls::RequireTls13(); !s.ok()) return s;
  auto credentials = tls::MakeChannelCredentials(config.tls());
  if (!credentials.ok()) return credentials.status();
  return std::unique_ptr<CoordinatorClient>(
      new CoordinatorClient(config.coordinator_address(), *std::move(credentials)));
}

void CoordinatorClient::Reconnect() {
  // Large HTTP/2 frames and receive window for model downloads (the defaults,
  // 16 KiB frames, cost a TLS record and a frame header per 16 KiB).
  grpc::ChannelArguments args = tls::DefaultChannelArguments();
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 5000);
  stub_ = v1::NodeService::NewStub(grpc::CreateCustomChannel(address_, credentials_, args));
}

absl::StatusOr<v1::JoinResponse> CoordinatorClient::Join(const v1::JoinRequest& request) {
  grpc::ClientContext context;
  SetDeadline(context, kCallDeadline);
  v1::JoinResponse response;
  if (absl::Status s = FromGrpc(stub_->Join(&context, request, &response), "join"); !s.ok()) {
    return s;
  }
  return response;
}

absl::StatusOr<v1::TaskAssignment> CoordinatorClient::GetTask(
    const std::string& task, std::chrono::seconds wait, const std::string& training_declined) {
  grpc::ClientContext context;
  SetDeadline(context, wait + std::chrono::seconds(10));
  v1::GetTaskRequest request;
  request.set_task(task);
  request.set_wait_seconds(static_cast<uint32_t>(wait.count()));
  request.set_training_declined(training_declined);
  v1::TaskAssignment response;
  if (absl::Status s = FromGrpc(stub_->GetTask(&context, request, &response), "get task");
      !s.ok()) {
    return s;
  }
  return response;
}

absl::StatusOr<std::string> CoordinatorClient::DownloadModel(
    const v1::DownloadModelRequest& request, const std::string& path, uint64_t max_bytes) {
  grpc::ClientContext context;
  SetDeadline(context, kTransferDeadline);
  auto reader = stub_->DownloadModel(&context, request);
  auto sha = tensor::ReceiveToFile(reader.get(), path, max_bytes);
  if (!sha.ok()) {
    return absl::Status(sha.status().code(),
                        absl::StrCat("download model: ", sha.status().message()));
  }
  return sha;
}

absl::StatusOr<v1::UploadUpdateResponse> CoordinatorClient::UploadUpdate(
    const v1::UpdateHeader& header, tensor::TensorEncoder& update) {
  grpc::ClientContext context;
  SetDeadline(context, kTransferDeadline);
  v1::UploadUpdateResponse response;
  auto writer = stub_->UploadUpdate(&context, &response);
  v1::UploadUpdateRequest message;
  *message.mutable_header() = header;
  bool open = writer->Write(message);
  tensor::ChunkProducer producer([&update](char* dst, size_t max) -> absl::StatusOr<size_t> {
    const size_t n = update.Read(dst, max);
    if (n == 0 && !update.status().ok()) return update.status();
    return n;
  });
  while (open && producer.Next(message.mutable_chunk())) {
    const bool last = !message.chunk().sha256().empty();
    open = writer->Write(message);
    if (!last) process::CrashPoint("node.upload");
  }
  if (!producer.status().ok()) {
    // The update could not be encoded to the end: cancel so the coordinator
    // never takes the bytes sent so far for a whole update.
    context.TryCancel();
    writer->Finish();
    return absl::Status(
        producer.status().code(),
        absl::StrCat("upload update: cannot encode the update: ", producer.status().message()));
  }
  writer->WritesDone();
  if (absl::Status s = FromGrpc(writer->Finish(), "upload update"); !s.ok()) return s;
  return response;
}

absl::Status CoordinatorClient::ReportMetrics(const v1::ReportMetricsRequest& request) {
  return Call(*stub_, &v1::NodeService::Stub::ReportMetrics, request, "report metrics");
}

absl::Status CoordinatorClient::AdvertiseKeys(const v1::AdvertiseKeysRequest& request) {
  return Call(*stub_, &v1::NodeService::Stub::AdvertiseKeys, request, "advertise keys");
}

absl::Status CoordinatorClient::ShareKeys(const v1::ShareKeysRequest& request) {
  return Call(*stub_, &v1::NodeService::Stub::ShareKeys, request, "share keys");
}

absl::Status CoordinatorClient::ConfirmSurvivors(const v1::ConfirmSurvivorsRequest& request) {
  return Call(*stub_, &v1::NodeService::Stub::ConfirmSurvivors, request, "confirm survivors");
}

absl::Status CoordinatorClient::Unmask(const v1::UnmaskRequest& request) {
  return Call(*stub_, &v1::NodeService::Stub::Unmask, request, "unmask");
}

absl::Status CoordinatorClient::AdvertiseBoostingKey(
    const v1::AdvertiseBoostingKeyRequest& request) {
  return Call(*stub_, &v1::NodeService::Stub::AdvertiseBoostingKey, request,
              "advertise boosting key");
}

absl::Status CoordinatorClient::SubmitBoostingVector(
    const v1::SubmitBoostingVectorRequest& request) {
  return Call(*stub_, &v1::NodeService::Stub::SubmitBoostingVector, request,
              "submit boosting vector");
}

}  // namespace fedcustoms::node
