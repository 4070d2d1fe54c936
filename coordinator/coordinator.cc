#include "coordinator/coordinator.h"

#include <ATen/Parallel.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/data/declaration_schema.h"
#include "common/io/atomic_file.h"
#include "common/log/logging.h"
#include "common/tensor/chunker.h"
#include "common/tls/credentials.h"
#include "common/tls/require_tls13.h"
#include "coordinator/service/admin_service_impl.h"
#include "coordinator/service/analyst_service_impl.h"
#include "coordinator/service/node_service_impl.h"
#include "coordinator/service/peer_call_limiter.h"
#include "coordinator/service/revocation_watcher.h"

namespace fedcustoms::coordinator {
namespace fs = std::filesystem;

// How often tls.crl is looked at for a replacement (a stat call).
constexpr std::chrono::seconds kCrlCheckPeriod(2);

Coordinator::Coordinator(v1::CoordinatorConfig config) : config_(std::move(config)) {}

Coordinator::~Coordinator() { Shutdown(); }

absl::StatusOr<std::unique_ptr<Coordinator>> Coordinator::Create(
    v1::CoordinatorConfig config,
    std::function<void(const std::string& node, const TensorSource& input)> aggregator_input_tap,
    std::function<void(const std::string& node, v1::TaskAssignment& assignment)> assignment_tap) {
  if (absl::Status s = tls::RequireTls13(); !s.ok()) return s;
  std::unique_ptr<Coordinator> c(new Coordinator(std::move(config)));
  const v1::CoordinatorConfig& cfg = c->config_;
  at::set_num_threads(cfg.threads() > 0
                          ? static_cast<int>(cfg.threads())
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));

  // Revoked certificates fail the handshake, so they reach no service at
  // all (health checking and reflection have no Authorize() of their own);
  // every handler checks again, for connections opened before a revocation.
  // Handshakes start with Start(), after the authorizer exists.
  auto credentials = tls::MakeServerCredentials(
      cfg.tls(), [coordinator = c.get()](std::string_view leaf_pem, std::string_view) {
        return coordinator->authorizer_->CheckNotRevoked(leaf_pem);
      });
  if (!credentials.ok()) return credentials.status();
  c->credentials_ = *credentials;
  // Read before anything is created, so a bad list stops the start at once.
  std::shared_ptr<const pki::RevocationList> revoked;
  std::string crl_pem;  // relayed to the nodes with each secure round
  if (!cfg.tls().crl().empty()) {
    auto loaded = pki::RevocationList::Load(cfg.tls().crl(), cfg.tls().ca_cert());
    if (!loaded.ok()) {
      return absl::Status(loaded.status().code(),
                          absl::StrCat("tls.crl: ", loaded.status().message()));
    }
    revoked = *std::move(loaded);
    auto pem = io::ReadFile(cfg.tls().crl());
    if (!pem.ok()) return pem.status();
    crl_pem = *std::move(pem);
    spdlog::info("tls.crl {}: {} revoked certificate(s) will be refused", cfg.tls().crl(),
                 revoked->size());
  }
  auto signer = crypto::Ed25519Signer::Create(cfg.signing_key());
  if (!signer.ok()) return signer.status();
  c->signer_ = *std::move(signer);
  auto verifier = crypto::Ed25519Verifier::FromPem(c->signer_->PublicKeyPem(), cfg.signing_key());
  if (!verifier.ok()) return verifier.status();
  c->verifier_ = *std::move(verifier);

  const std::string spool_dir = cfg.state_dir() + "/spool";
  std::error_code ec;
  fs::create_directories(spool_dir, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("state_dir ", cfg.state_dir(), ": cannot create: ", ec.message()));
  }
  // A spooled upload never outlives the process that received it.
  for (const fs::directory_entry& e : fs::directory_iterator(spool_dir, ec)) {
    fs::remove(e.path(), ec);
  }
  auto ledger = RoundLedger::Open(cfg.state_dir() + "/ledger.sqlite");
  if (!ledger.ok()) return ledger.status();
  c->ledger_ = *std::move(ledger);
  auto registry = ModelRegistry::Open(cfg.registry_dir(), c->signer_.get(), c->verifier_.get());
  if (!registry.ok()) return registry.status();
  c->registry_ = *std::move(registry);

  auto key_verifier =
      secagg::KeyAdvertisementVerifier::Create(cfg.tls().ca_cert(), cfg.tls().crl());
  if (!key_verifier.ok()) return key_verifier.status();
  c->key_verifier_ = *std::move(key_verifier);

  std::map<std::string, TaskRunner*> runners;
  for (const v1::TaskConfig& task : cfg.tasks()) {
    TaskRunner::Options options;
    options.config = task;
    if (task.kind() != v1::TASK_XRAY) {
      auto schema = data::LoadDeclarationSchema(task.schema_file());
      if (!schema.ok()) return schema.status();
      options.schema = *std::move(schema);
    }
    options.spool_dir = spool_dir;
    options.models_dir = cfg.state_dir() + "/models/" + task.name();
    options.mode = cfg.aggregation_mode();
    options.key_verifier = c->key_verifier_.get();
    // The list in force when a secure round opens (tls.crl may be replaced
    // while the coordinator runs).
    options.crl_pem = [coordinator = c.get()] {
      return coordinator->revocation_watcher_ ? coordinator->revocation_watcher_->RelayPem()
                                              : std::string();
    };
    options.aggregator_input_tap = aggregator_input_tap;
    options.assignment_tap = assignment_tap;
    auto runner = TaskRunner::Create(std::move(options), c->registry_.get(), c->ledger_.get(),
                                     c->signer_.get());
    if (!runner.ok()) return runner.status();
    runners[task.name()] = runner->get();
    c->runners_.push_back(*std::move(runner));
  }
  c->call_limiter_ = std::make_unique<PeerCallLimiter>(cfg.limits().max_calls_per_peer());
  c->authorizer_ = std::make_unique<Authorizer>(revoked, c->call_limiter_.get());
  if (!cfg.tls().crl().empty()) {
    c->revocation_watcher_ = std::make_unique<RevocationWatcher>(
        cfg.tls().crl(), cfg.tls().ca_cert(), crl_pem, revoked, kCrlCheckPeriod,
        [authorizer = c->authorizer_.get()](std::shared_ptr<const pki::RevocationList> list) {
          authorizer->SetRevocationList(std::move(list));
        });
    c->revocation_watcher_->Start();
  }
  c->stream_watchdog_ =
      std::make_unique<StreamWatchdog>(std::chrono::seconds(cfg.stream_idle_seconds()));
  c->node_service_ = std::make_unique<NodeServiceImpl>(runners, spool_dir, *c->authorizer_,
                                                       c->stream_watchdog_.get());
  c->analyst_service_ = std::make_unique<AnalystServiceImpl>(c->registry_.get(), *c->authorizer_,
                                                             c->stream_watchdog_.get());
  c->admin_service_ = std::make_unique<AdminServiceImpl>(runners, *c->authorizer_);
  return c;
}

TaskRunner* Coordinator::runner(const std::string& task) const {
  for (const auto& r : runners_) {
    if (r->name() == task) return r.get();
  }
  return nullptr;
}

absl::Status Coordinator::Start() {
  grpc::EnableDefaultHealthCheckService(true);
  // Process-wide in gRPC: once enabled, every server built later has it.
  if (config_.enable_reflection()) grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // Past max_threads gRPC refuses new calls (RESOURCE_EXHAUSTED) rather than
  // growing a thread per call; max_streams_per_connection bounds what one
  // connection can open. Per certificate, the Authorizer's PeerCallLimiter.
  grpc::ResourceQuota quota("fedcustoms-coordinator");
  quota.SetMaxThreads(static_cast<int>(config_.limits().max_threads()));
  builder.SetResourceQuota(quota);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             static_cast<int>(config_.limits().max_streams_per_connection()));
  builder.AddListeningPort(config_.listen_address(), credentials_, &port_);
  builder.RegisterService(node_service_.get());
  builder.RegisterService(analyst_service_.get());
  builder.RegisterService(admin_service_.get());
  // Chunks are at most 1 MiB; nothing legitimate comes near 4 MiB.
  tls::ApplyServerArguments(builder);
  // A node whose machine or network died without closing its connection is
  // found by HTTP/2 pings within about a minute, not by the TCP timeout.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20'000);
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", config_.listen_address(),
                                               " (address in use or not local?)"));
  }
  server_->GetHealthCheckService()->SetServingStatus(true);
  for (const auto& r : runners_) r->Start();
  spdlog::info("coordinator listening on {} (port {}), mutual TLS 1.3, {} task(s), mode {}",
               config_.listen_address(), port_, runners_.size(),
               config_.aggregation_mode() == v1::SECURE ? "secure" : "trusted");
  if (!config_.port_file().empty()) {
    if (absl::Status s = io::WriteFileAtomically(config_.port_file(), std::to_string(port_));
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

void Coordinator::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  for (const auto& r : runners_) r->Stop();
  if (server_) {
    server_->GetHealthCheckService()->SetServingStatus(false);
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }
  revocation_watcher_.reset();  // no runner or call uses it any more
}

void Coordinator::Wait() {
  if (server_) server_->Wait();
}

}  // namespace fedcustoms::coordinator
