#include "coordinator/service/analyst_service_impl.h"

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "common/log/logging.h"
#include "coordinator/service/authorization.h"
#include "coordinator/service/chunk_streaming.h"

namespace fedcustoms::coordinator {
namespace {

std::optional<uint64_t> RequestedVersion(const v1::GetManifestRequest& request) {
  if (request.has_version()) return request.version();
  return std::nullopt;
}

}  // namespace

grpc::Status AnalystServiceImpl::ListModels(grpc::ServerContext* context,
                                            const v1::ListModelsRequest* request,
                                            v1::ListModelsResponse* response) {
  auto peer = authorizer_.Authorize(*context, {pki::Role::kAnalyst, pki::Role::kAdmin},
                                    "AnalystService.ListModels");
  if (!peer.ok()) return ToGrpc(peer.status());
  for (const std::string& task : registry_->Tasks()) {
    if (!request->task().empty() && request->task() != task) continue;
    v1::ModelVersions* entry = response->add_tasks();
    entry->set_task(task);
    for (uint64_t v : registry_->Versions(task)) entry->add_versions(v);
  }
  return grpc::Status::OK;
}

grpc::Status AnalystServiceImpl::GetManifest(grpc::ServerContext* context,
                                             const v1::GetManifestRequest* request,
                                             v1::GetManifestResponse* response) {
  auto peer = authorizer_.Authorize(*context, {pki::Role::kAnalyst, pki::Role::kAdmin},
                                    "AnalystService.GetManifest");
  if (!peer.ok()) return ToGrpc(peer.status());
  auto signed_manifest = registry_->ReadManifest(request->task(), RequestedVersion(*request));
  if (!signed_manifest.ok()) return ToGrpc(signed_manifest.status());
  auto m = manifest::ParseManifest(signed_manifest->json, "registry");
  if (!m.ok()) return ToGrpc(m.status());
  response->set_version(m->version);
  response->set_manifest_json(signed_manifest->json);
  response->set_signature(signed_manifest->signature);
  return grpc::Status::OK;
}

grpc::Status AnalystServiceImpl::DownloadWeights(grpc::ServerContext* context,
                                                 const v1::GetManifestRequest* request,
                                                 grpc::ServerWriter<v1::DataChunk>* writer) {
  auto peer = authorizer_.Authorize(*context, {pki::Role::kAnalyst, pki::Role::kAdmin},
                                    "AnalystService.DownloadWeights");
  if (!peer.ok()) return ToGrpc(peer.status());
  std::vector<uint64_t> versions = registry_->Versions(request->task());
  if (versions.empty()) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("no published model for task \"", request->task(), "\""));
  }
  const uint64_t version = request->has_version() ? request->version() : versions.back();
  if (!std::binary_search(versions.begin(), versions.end(), version)) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("task \"", request->task(), "\" has no version ", version));
  }
  std::unique_ptr<StreamWatchdog::Lease> lease = watchdog_->Watch(context);
  absl::Status s = StreamFile(registry_->WeightsPath(request->task(), version), writer,
                              std::nullopt, lease.get());
  if (s.ok()) {
    spdlog::info("{} ({}) downloaded {} v{}", peer->common_name, pki::RoleName(peer->role),
                 request->task(), version);
  }
  return ToGrpc(s);
}

}  // namespace fedcustoms::coordinator
