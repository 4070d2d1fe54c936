#pragma once

#include <map>
#include <string>

#include "coordinator/rounds/task_runner.h"
#include "coordinator/service/authorization.h"
#include "fedcustoms/v1/admin_service.grpc.pb.h"

namespace fedcustoms::coordinator {

// gRPC adapter of the admin service (role "admin"): state of every task.
class AdminServiceImpl final : public v1::AdminService::Service {
 public:
  // `runners` and `authorizer` must outlive the service.
  AdminServiceImpl(std::map<std::string, TaskRunner*> runners, const Authorizer& authorizer)
      : runners_(std::move(runners)), authorizer_(authorizer) {}

  grpc::Status GetStatus(grpc::ServerContext* context, const v1::GetStatusRequest* request,
                         v1::GetStatusResponse* response) override;

 private:
  const std::map<std::string, TaskRunner*> runners_;
  const Authorizer& authorizer_;
};

}  // namespace fedcustoms::coordinator
