#pragma once

#include <map>
#include <string>

#include "coordinator/rounds/task_runner.h"
#include "fedcustoms/v1/admin_service.grpc.pb.h"

namespace fedcustoms::coordinator {

// gRPC adapter of the admin service (role "admin"): state of every task.
class AdminServiceImpl final : public v1::AdminService::Service {
 public:
  // `runners` must outlive the service.
  explicit AdminServiceImpl(std::map<std::string, TaskRunner*> runners)
      : runners_(std::move(runners)) {}

  grpc::Status GetStatus(grpc::ServerContext* context, const v1::GetStatusRequest* request,
                         v1::GetStatusResponse* response) override;

 private:
  const std::map<std::string, TaskRunner*> runners_;
};

}  // namespace fedcustoms::coordinator
