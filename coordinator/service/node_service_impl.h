#pragma once

#include <map>
#include <string>

#include "coordinator/rounds/task_runner.h"
#include "coordinator/service/authorization.h"
#include "coordinator/service/stream_watchdog.h"
#include "fedcustoms/v1/node_service.grpc.pb.h"

namespace fedcustoms::coordinator {

// gRPC adapter of the node service: authorizes the caller (role "node", identity
// = certificate CN), translates protos, and hands the work to the task's
// TaskRunner. Every handler returns a status with a message; none throws.
class NodeServiceImpl final : public v1::NodeService::Service {
 public:
  // `runners` (task name → runner) and `authorizer` must outlive the service. Uploads are
  // spooled in `spool_dir` and deleted after use.
  // `watchdog` cancels upload and download streams that stop moving; it
  // must outlive the service.
  NodeServiceImpl(std::map<std::string, TaskRunner*> runners, std::string spool_dir,
                  const Authorizer& authorizer, StreamWatchdog* watchdog)
      : runners_(std::move(runners)),
        spool_dir_(std::move(spool_dir)),
        authorizer_(authorizer),
        watchdog_(watchdog) {}

  grpc::Status Join(grpc::ServerContext* context, const v1::JoinRequest* request,
                    v1::JoinResponse* response) override;
  grpc::Status GetTask(grpc::ServerContext* context, const v1::GetTaskRequest* request,
                       v1::TaskAssignment* response) override;
  grpc::Status DownloadModel(grpc::ServerContext* context, const v1::DownloadModelRequest* request,
                             grpc::ServerWriter<v1::DataChunk>* writer) override;
  grpc::Status UploadUpdate(grpc::ServerContext* context,
                            grpc::ServerReader<v1::UploadUpdateRequest>* reader,
                            v1::UploadUpdateResponse* response) override;
  grpc::Status ReportMetrics(grpc::ServerContext* context, const v1::ReportMetricsRequest* request,
                             v1::ReportMetricsResponse* response) override;
  grpc::Status AdvertiseBoostingKey(grpc::ServerContext* context,
                                    const v1::AdvertiseBoostingKeyRequest* request,
                                    v1::AdvertiseBoostingKeyResponse* response) override;
  grpc::Status SubmitBoostingVector(grpc::ServerContext* context,
                                    const v1::SubmitBoostingVectorRequest* request,
                                    v1::SubmitBoostingVectorResponse* response) override;
  grpc::Status AdvertiseKeys(grpc::ServerContext* context, const v1::AdvertiseKeysRequest* request,
                             v1::AdvertiseKeysResponse* response) override;
  grpc::Status ShareKeys(grpc::ServerContext* context, const v1::ShareKeysRequest* request,
                         v1::ShareKeysResponse* response) override;
  grpc::Status ConfirmSurvivors(grpc::ServerContext* context,
                                const v1::ConfirmSurvivorsRequest* request,
                                v1::ConfirmSurvivorsResponse* response) override;
  grpc::Status Unmask(grpc::ServerContext* context, const v1::UnmaskRequest* request,
                      v1::UnmaskResponse* response) override;

  // Longest long-poll the coordinator grants.
  static constexpr uint32_t kMaxPollSeconds = 10;

 private:
  // Receives, spools, validates and folds an upload whose slot BeginUpload
  // reserved; releases the slot on every error it returns.
  grpc::Status ReceiveUpdate(grpc::ServerContext* context,
                             grpc::ServerReader<v1::UploadUpdateRequest>* reader,
                             v1::UploadUpdateResponse* response, TaskRunner* runner,
                             const std::string& node, const v1::UpdateHeader& header,
                             StreamWatchdog::Lease& lease);
  absl::StatusOr<TaskRunner*> Runner(const std::string& task) const;

  // Constant after construction.
  const std::map<std::string, TaskRunner*> runners_;
  const std::string spool_dir_;
  const Authorizer& authorizer_;
  StreamWatchdog* const watchdog_;
};

}  // namespace fedcustoms::coordinator
