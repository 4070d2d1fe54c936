#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/crypto/ed25519.h"
#include "coordinator/ledger/round_ledger.h"
#include "coordinator/registry/model_registry.h"
#include "coordinator/rounds/task_runner.h"
#include "coordinator/service/stream_watchdog.h"
#include "fedcustoms/v1/config.pb.h"
#include "fedcustoms/v1/node_service.pb.h"

namespace fedcustoms::coordinator {

class Authorizer;
class PeerCallLimiter;
class RevocationWatcher;
class NodeServiceImpl;
class AnalystServiceImpl;
class AdminServiceImpl;

// The coordinator: one gRPC server over mutual TLS (node, analyst and admin
// services, health checking, reflection), one TaskRunner per task, the model
// registry and the round ledger. Start() binds and serves; Port() tells the
// port when the config asked for port 0; Shutdown() stops everything.
class Coordinator {
 public:
  // Loads credentials, keys, registry, ledger and schemas from a finalized
  // config (see LoadCoordinatorConfig). Nothing listens yet. Tests may pass
  // a tap that sees every input handed to an aggregator, and one that may
  // change every assignment before it leaves (TaskRunner::Options).
  static absl::StatusOr<std::unique_ptr<Coordinator>> Create(
      v1::CoordinatorConfig config,
      std::function<void(const std::string& node, const TensorSource& input)> aggregator_input_tap =
          {},
      std::function<void(const std::string& node, v1::TaskAssignment& assignment)> assignment_tap =
          {});
  ~Coordinator();

  // Binds the listen address and starts the rounds.
  absl::Status Start();
  int Port() const { return port_; }
  // Stops accepting calls, wakes long-polls, stops the rounds. Idempotent.
  void Shutdown();
  // Blocks until Shutdown().
  void Wait();

  const ModelRegistry& registry() const { return *registry_; }
  RoundLedger& ledger() { return *ledger_; }
  TaskRunner* runner(const std::string& task) const;

 private:
  explicit Coordinator(v1::CoordinatorConfig config);

  const v1::CoordinatorConfig config_;
  std::shared_ptr<grpc::ServerCredentials> credentials_;
  std::unique_ptr<crypto::Ed25519Signer> signer_;
  std::unique_ptr<crypto::Ed25519Verifier> verifier_;
  // Checks nodes' secure-aggregation keys against the federation CA.
  std::unique_ptr<secagg::KeyAdvertisementVerifier> key_verifier_;
  std::unique_ptr<ModelRegistry> registry_;
  std::unique_ptr<RoundLedger> ledger_;
  std::vector<std::unique_ptr<TaskRunner>> runners_;
  // Before the authorizer, which holds a pointer to it.
  std::unique_ptr<PeerCallLimiter> call_limiter_;
  // Before the services, which hold a reference to it.
  std::unique_ptr<Authorizer> authorizer_;
  // Reloads tls.crl into the authorizer when the file changes; its list is
  // the one the runners relay. Stopped in Shutdown, after the runners.
  std::unique_ptr<RevocationWatcher> revocation_watcher_;
  // Declared before the services that hold leases on it.
  std::unique_ptr<StreamWatchdog> stream_watchdog_;
  std::unique_ptr<NodeServiceImpl> node_service_;
  std::unique_ptr<AnalystServiceImpl> analyst_service_;
  std::unique_ptr<AdminServiceImpl> admin_service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  bool shut_down_ = false;
};

}  // namespace fedcustoms::coordinator
