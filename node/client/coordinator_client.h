#pragma once

#include <grpcpp/security/credentials.h>

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/tensor/tensor_codec.h"
#include "fedcustoms/v1/config.pb.h"
#include "fedcustoms/v1/node_service.grpc.pb.h"

namespace fedcustoms::node {

// The node's side of the node service, over mutual TLS. Every call has a
// deadline; gRPC errors come back as absl::Status with the same code, the
// message prefixed by the call. Thread-compatible (one node loop uses it).
class CoordinatorClient {
 public:
  // Builds the channel from the node config's TLS files (read and checked now).
  static absl::StatusOr<std::unique_ptr<CoordinatorClient>> Create(const v1::NodeConfig& config);

  absl::StatusOr<v1::JoinResponse> Join(const v1::JoinRequest& request);
  // Long-polls for up to `wait`.
  // A non-empty `training_declined` tells the coordinator why this node no
  // longer trains (it still evaluates).
  absl::StatusOr<v1::TaskAssignment> GetTask(const std::string& task, std::chrono::seconds wait,
                                             const std::string& training_declined = "");
  // Streams the round's model into `path`; returns its hex SHA-256 (already
  // checked against the stream's final chunk).
  absl::StatusOr<std::string> DownloadModel(const v1::DownloadModelRequest& request,
                                            const std::string& path, uint64_t max_bytes);
  // Sends an update: the header, then `update`'s bytes in chunks, then the
  // SHA-256. The update is read from the encoder as it is sent, never copied
  // whole. This is the seam secure aggregation plugs a masked update into.
  absl::StatusOr<v1::UploadUpdateResponse> UploadUpdate(const v1::UpdateHeader& header,
                                                        tensor::TensorEncoder& update);
  absl::Status ReportMetrics(const v1::ReportMetricsRequest& request);
  // Secure aggregation steps (see NodeService).
  absl::Status AdvertiseKeys(const v1::AdvertiseKeysRequest& request);
  absl::Status ShareKeys(const v1::ShareKeysRequest& request);
  absl::Status ConfirmSurvivors(const v1::ConfirmSurvivorsRequest& request);
  absl::Status Unmask(const v1::UnmaskRequest& request);
  // Boosting steps (BOOST assignments).
  absl::Status AdvertiseBoostingKey(const v1::AdvertiseBoostingKeyRequest& request);
  absl::Status SubmitBoostingVector(const v1::SubmitBoostingVectorRequest& request);

  // Replaces the channel with a fresh one, so the next call connects at once.
  // For the node's retry loop while the coordinator is unreachable: a gRPC
  // channel whose connection was refused waits out its own reconnect backoff
  // (at least 20 s in this gRPC, and lowering that floor makes its TLS
  // handshakes fail), so nodes found a restarted coordinator 18 s late. A new
  // channel per retry leaves the pacing to the node's backoff with jitter.
  void Reconnect();

 private:
  CoordinatorClient(std::string address, std::shared_ptr<grpc::ChannelCredentials> credentials)
      : address_(std::move(address)), credentials_(std::move(credentials)) {
    Reconnect();
  }

  const std::string address_;
  const std::shared_ptr<grpc::ChannelCredentials> credentials_;
  std::unique_ptr<v1::NodeService::Stub> stub_;
};

}  // namespace fedcustoms::node
