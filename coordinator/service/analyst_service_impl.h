#pragma once

#include "coordinator/registry/model_registry.h"
#include "coordinator/service/authorization.h"
#include "coordinator/service/stream_watchdog.h"
#include "fedcustoms/v1/analyst_service.grpc.pb.h"

namespace fedcustoms::coordinator {

// gRPC adapter of the analyst service: published models from the registry, to
// callers with role "analyst" or "admin".
class AnalystServiceImpl final : public v1::AnalystService::Service {
 public:
  // `registry` must outlive the service.
  // `watchdog` cancels downloads that stop moving; it must outlive the service.
  AnalystServiceImpl(const ModelRegistry* registry, const Authorizer& authorizer,
                     StreamWatchdog* watchdog)
      : registry_(registry), authorizer_(authorizer), watchdog_(watchdog) {}

  grpc::Status ListModels(grpc::ServerContext* context, const v1::ListModelsRequest* request,
                          v1::ListModelsResponse* response) override;
  grpc::Status GetManifest(grpc::ServerContext* context, const v1::GetManifestRequest* request,
                           v1::GetManifestResponse* response) override;
  grpc::Status DownloadWeights(grpc::ServerContext* context, const v1::GetManifestRequest* request,
                               grpc::ServerWriter<v1::DataChunk>* writer) override;

 private:
  const ModelRegistry* const registry_;
  const Authorizer& authorizer_;
  StreamWatchdog* const watchdog_;
};

}  // namespace fedcustoms::coordinator
