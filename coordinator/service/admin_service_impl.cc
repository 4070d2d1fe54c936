#include "coordinator/service/admin_service_impl.h"

#include <set>

#include "coordinator/service/authorization.h"

namespace fedcustoms::coordinator {

grpc::Status AdminServiceImpl::GetStatus(grpc::ServerContext* context,
                                         const v1::GetStatusRequest* request,
                                         v1::GetStatusResponse* response) {
  auto peer = authorizer_.Authorize(*context, {pki::Role::kAdmin}, "AdminService.GetStatus");
  if (!peer.ok()) return ToGrpc(peer.status());
  std::set<std::string> nodes;
  for (const auto& [name, runner] : runners_) {
    *response->add_tasks() = runner->Status();
    for (const std::string& node : runner->AvailableNodes()) nodes.insert(node);
  }
  for (const std::string& node : nodes) response->add_joined_nodes(node);
  return grpc::Status::OK;
}

}  // namespace fedcustoms::coordinator
