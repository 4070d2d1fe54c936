// One hostile node against a secure federation, over real mutual TLS: it
// holds a valid node certificate and uses it to claim the federation's
// weight. Three honest administrations train for real; the attacker is a
// bare client. Each test asserts what the attacker obtains.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <functional>
#include <future>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/tls/credentials.h"
#include "coordinator/config/coordinator_config.h"
#include "coordinator/coordinator.h"
#include "fedcustoms/v1/node_service.grpc.pb.h"
#include "node/client/coordinator_client.h"
#include "node/config/node_config.h"
#include "node/node.h"
#include "tests/support/federation_dir.h"
#include "tests/support/federation_suite.h"
#include "tests/support/loopback_federation.h"
#include "tests/support/run_nodes.h"

namespace fedcustoms {
namespace {

const std::vector<std::string> kHonest = {"EE", "FI", "LV"};
const std::string kAttacker = "SE";
constexpr uint32_t kRounds = 2;

class MaliciousNodeTest : public testing_support::FederationSuite<MaliciousNodeTest> {
 protected:
  static void SetUpTestSuite() {
    MakeRoot(testing_support::MakeFederationWithData("malicious-node", {"EE", "FI", "LV", "SE"},
                                                     kHonest, 1500, 5));
  }

  // A SECURE coordinator of task "risk" (kRounds rounds, min_nodes 3), started;
  // `adjust` changes its config first.
  std::unique_ptr<coordinator::Coordinator> StartCoordinator(
      const std::string& run, const std::function<void(v1::CoordinatorConfig&)>& adjust = nullptr) {
    v1::CoordinatorConfig c = testing_support::LoopbackCoordinatorConfig(
        *root_ + "/pki", *root_ + "/" + run, *root_ + "/data/EE/declarations.schema.json",
        v1::SECURE);
    v1::TaskConfig* t = c.mutable_tasks(0);
    t->set_min_nodes(3);
    t->set_rounds(kRounds);
    t->set_gather_seconds(1);
    t->set_eval_deadline_seconds(60);
    t->mutable_training()->set_local_epochs(1);
    if (adjust) adjust(c);
    auto config = coordinator::FinalizeCoordinatorConfig(c, "test", "");
    EXPECT_TRUE(config.ok()) << config.status();
    if (!config.ok()) return nullptr;
    auto coordinator = coordinator::Coordinator::Create(*config);
    EXPECT_TRUE(coordinator.ok()) << coordinator.status();
    if (!coordinator.ok()) return nullptr;
    EXPECT_TRUE((*coordinator)->Start().ok());
    return *std::move(coordinator);
  }

  // Runs the honest nodes to the end of the task; each must finish cleanly
  // within a bound.
  void RunHonestNodes(int port, const std::string& run) {
    std::vector<std::unique_ptr<node::Node>> nodes;
    for (const std::string& admin : kHonest) {
      auto finalized = node::FinalizeNodeConfig(
          testing_support::LoopbackNodeConfig(*root_, admin, port, run, "risk"), "test", "");
      ASSERT_TRUE(finalized.ok()) << finalized.status();
      auto created = node::Node::Create(*finalized);
      ASSERT_TRUE(created.ok()) << created.status();
      nodes.push_back(*std::move(created));
    }
    testing_support::RunNodesToEnd(nodes, std::chrono::minutes(3), run);
  }

  // The attacker's Join of task "risk" with `rows` training rows and the
  // coordinator's own schema hash.
  static v1::JoinRequest AttackerJoin(const coordinator::Coordinator& coordinator, uint64_t rows) {
    v1::JoinRequest join;
    join.add_tasks("risk");
    join.set_feature_schema_hash(coordinator.runner("risk")->feature_schema_hash());
    join.mutable_data()->set_train_rows(rows);
    return join;
  }

  std::unique_ptr<node::CoordinatorClient> AttackerClient(int port) {
    v1::NodeConfig config;
    config.set_coordinator_address(absl::StrCat("localhost:", port));
    *config.mutable_tls() = Identity(kAttacker);
    auto client = node::CoordinatorClient::Create(config);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }
};

// Point 4 of the review: one Join declaring 2^33 rows made every secure
// round abort (W no longer fit 32 bits), a new aborted round every second.
// Now the Join is refused, naming the cap, and however often the attacker
// repeats it, the honest rounds complete.
TEST_F(MaliciousNodeTest, AHugeRowCountIsRefusedAtJoinAndCannotStopSecureRounds) {
  auto coordinator = StartCoordinator("huge-rows");
  ASSERT_NE(coordinator, nullptr);
  const int port = coordinator->Port();
  auto attacker = AttackerClient(port);
  ASSERT_NE(attacker, nullptr);
  const v1::JoinRequest join = AttackerJoin(*coordinator, uint64_t{1} << 33);
  absl::StatusOr<v1::JoinResponse> refused = attacker->Join(join);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find(
                "node SE declared 8589934592 training rows; the task takes 1..10000000 from an "
                "administration (max_train_rows)"),
            std::string::npos)
      << refused.status();

  // The attacker keeps trying while the honest nodes train.
  std::atomic<bool> stop{false};
  std::atomic<int> refusals{0};
  std::thread flood([&] {
    while (!stop) {
      if (!attacker->Join(join).ok()) ++refusals;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  RunHonestNodes(port, "huge-rows");
  stop = true;
  flood.join();
  EXPECT_GT(refusals.load(), 0);

  auto rounds = coordinator->ledger().List("risk");
  ASSERT_TRUE(rounds.ok()) << rounds.status();
  ASSERT_EQ(rounds->size(), kRounds);
  for (const auto& r : *rounds) {
    EXPECT_EQ(r.status, "completed") << r.reason;
    EXPECT_EQ(r.participants, 3u);
  }
  EXPECT_FALSE(coordinator->runner("risk")->HasJoined(kAttacker));
}

// The honest side of the cap: an administration whose data is larger than
// the consortium agreed is not enrolled, and its node stops at once with the
// reason instead of retrying forever.
TEST_F(MaliciousNodeTest, ANodeAboveItsAdministrationsCapStopsWithTheReason) {
  auto coordinator = StartCoordinator("over-cap", [](v1::CoordinatorConfig& c) {
    (*c.mutable_tasks(0)->mutable_max_train_rows_by_node())["EE"] = 100;
  });
  ASSERT_NE(coordinator, nullptr);
  auto finalized = node::FinalizeNodeConfig(
      testing_support::LoopbackNodeConfig(*root_, "EE", coordinator->Port(), "over-cap", "risk"),
      "test", "");
  ASSERT_TRUE(finalized.ok()) << finalized.status();
  auto node = node::Node::Create(*finalized);
  ASSERT_TRUE(node.ok()) << node.status();
  absl::Status run = (*node)->Run();
  EXPECT_EQ(run.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(run.message().find("the task takes 1..100 from this administration "
                               "(max_train_rows_by_node)"),
            std::string::npos)
      << run;
  EXPECT_FALSE(coordinator->runner("risk")->HasJoined("EE"));
}

// Threads of this process (the coordinator runs in it), from /proc.
int ProcessThreads() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  }
  return -1;
}

// Point 5 of the review: one node certificate opened 3 000 UploadUpdate
// streams that never sent a header, and the coordinator grew a thread per
// stream for as long as they were held. Now each certificate has at most
// limits.max_calls_per_peer (8) calls in progress: the rest are refused at
// once, naming the limit, the silent ones are cut by the stream watchdog
// (the header is read under it), and the coordinator's threads stay flat.
TEST_F(MaliciousNodeTest, AFloodOfSilentStreamsIsBoundedPerCertificate) {
  auto coordinator =
      StartCoordinator("flood", [](v1::CoordinatorConfig& c) { c.set_stream_idle_seconds(2); });
  ASSERT_NE(coordinator, nullptr);
  const int port = coordinator->Port();
  auto credentials = tls::MakeChannelCredentials(Identity(kAttacker));
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  const int threads_before = ProcessThreads();

  constexpr int kConnections = 4;
  constexpr int kStreamsEach = 15;  // under max_streams_per_connection (32)
  std::vector<std::unique_ptr<v1::NodeService::Stub>> stubs;
  for (int c = 0; c < kConnections; ++c) {
    grpc::ChannelArguments args = tls::DefaultChannelArguments();
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection each
    stubs.push_back(v1::NodeService::NewStub(
        grpc::CreateCustomChannel(absl::StrCat("localhost:", port), *credentials, args)));
  }
  struct Stream {
    grpc::ClientContext context;
    v1::UploadUpdateResponse response;
    std::unique_ptr<grpc::ClientWriter<v1::UploadUpdateRequest>> writer;
  };
  std::vector<std::unique_ptr<Stream>> streams;
  for (int c = 0; c < kConnections; ++c) {
    for (int i = 0; i < kStreamsEach; ++i) {
      auto stream = std::make_unique<Stream>();
      stream->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
      stream->writer = stubs[c]->UploadUpdate(&stream->context, &stream->response);
      streams.push_back(std::move(stream));  // opened; no header will ever come
    }
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const int threads_during = ProcessThreads();

  int exhausted = 0, cut = 0;
  std::string refusal;
  for (auto& stream : streams) {
    grpc::Status s = stream->writer->Finish();
    if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      ++exhausted;
      refusal = s.error_message();
    } else if (s.error_code() == grpc::StatusCode::CANCELLED) {
      ++cut;  // held until the watchdog (stream_idle_seconds 2) cancelled it
    } else {
      ADD_FAILURE() << "a silent stream ended " << s.error_code() << ": " << s.error_message();
    }
  }
  std::printf("flood of %d silent streams: %d refused at once, %d cut; threads %d -> %d\n",
              kConnections * kStreamsEach, exhausted, cut, threads_before, threads_during);
  EXPECT_EQ(exhausted, kConnections * kStreamsEach - 8);
  EXPECT_EQ(cut, 8);
  EXPECT_EQ(refusal,
            "NodeService.UploadUpdate: node SE already has 8 calls in progress "
            "(limits.max_calls_per_peer); retry when one ends");
  // 60 held streams would hold 60 handler threads; 8 may, plus the client's
  // own connections.
  EXPECT_LT(threads_during - threads_before, 30);

  // The flood is over: the certificate's calls go through again.
  auto attacker = AttackerClient(port);
  ASSERT_NE(attacker, nullptr);
  const v1::JoinRequest join = AttackerJoin(*coordinator, 1000);
  EXPECT_TRUE(attacker->Join(join).ok());
}

// Starts a GetTask long poll of `stub` that lets the coordinator hold it for
// up to `deadline` (it answers WAIT half a second before); `done` gets the
// status.
struct Poll {
  grpc::ClientContext context;
  v1::GetTaskRequest request;
  v1::TaskAssignment response;
  std::promise<grpc::Status> done;
};
std::unique_ptr<Poll> StartPoll(v1::NodeService::Stub& stub, std::chrono::seconds deadline) {
  auto poll = std::make_unique<Poll>();
  poll->context.set_deadline(std::chrono::system_clock::now() + deadline);
  poll->request.set_task("risk");
  poll->request.set_wait_seconds(30);
  stub.async()->GetTask(&poll->context, &poll->request, &poll->response,
                        [p = poll.get()](grpc::Status s) { p->done.set_value(std::move(s)); });
  return poll;
}

std::unique_ptr<v1::NodeService::Stub> OwnConnection(
    int port, const std::shared_ptr<grpc::ChannelCredentials>& credentials) {
  grpc::ChannelArguments args = tls::DefaultChannelArguments();
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection of its own
  return v1::NodeService::NewStub(
      grpc::CreateCustomChannel(absl::StrCat("localhost:", port), credentials, args));
}

// limits.max_streams_per_connection: streams past it on one connection wait
// in the client (HTTP/2 concurrency) and never reach the coordinator, while
// another connection of the same certificate is served. The per-certificate
// call limit is set high here so that it is not what stops them.
TEST_F(MaliciousNodeTest, StreamsPastTheConnectionLimitNeverReachTheCoordinator) {
  auto coordinator = StartCoordinator("streams", [](v1::CoordinatorConfig& c) {
    c.mutable_limits()->set_max_streams_per_connection(2);
    c.mutable_limits()->set_max_calls_per_peer(100);
  });
  ASSERT_NE(coordinator, nullptr);
  const int port = coordinator->Port();
  auto attacker = AttackerClient(port);
  ASSERT_NE(attacker, nullptr);
  const v1::JoinRequest join = AttackerJoin(*coordinator, 1000);
  ASSERT_TRUE(attacker->Join(join).ok());  // alone: no round opens, polls wait
  auto credentials = tls::MakeChannelCredentials(Identity(kAttacker));
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  auto flooded = OwnConnection(port, *credentials);
  std::vector<std::unique_ptr<Poll>> held, queued;
  for (int i = 0; i < 2; ++i) held.push_back(StartPoll(*flooded, std::chrono::seconds(10)));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  for (int i = 0; i < 4; ++i) queued.push_back(StartPoll(*flooded, std::chrono::seconds(3)));
  auto other = OwnConnection(port, *credentials);
  std::unique_ptr<Poll> elsewhere = StartPoll(*other, std::chrono::seconds(3));
  for (auto& poll : queued) {
    grpc::Status s = poll->done.get_future().get();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << s.error_message();
  }
  grpc::Status s = elsewhere->done.get_future().get();
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(elsewhere->response.kind(), v1::TaskAssignment::WAIT);
  for (auto& poll : held) {
    s = poll->done.get_future().get();
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(poll->response.kind(), v1::TaskAssignment::WAIT);
  }
}

// limits.max_threads: gRPC's thread quota. Held calls past it are refused at
// once (RESOURCE_EXHAUSTED) instead of growing a thread each, and once they
// end the coordinator serves again. The per-certificate call limit is set
// high here so that it is not what stops them.
TEST_F(MaliciousNodeTest, CallsPastTheThreadQuotaAreRefusedAndThreadsStayBounded) {
  constexpr int kMaxThreads = 16;
  auto coordinator = StartCoordinator("threads", [](v1::CoordinatorConfig& c) {
    c.mutable_limits()->set_max_threads(kMaxThreads);
    c.mutable_limits()->set_max_calls_per_peer(1000);
  });
  ASSERT_NE(coordinator, nullptr);
  const int port = coordinator->Port();
  auto attacker = AttackerClient(port);
  ASSERT_NE(attacker, nullptr);
  const v1::JoinRequest join = AttackerJoin(*coordinator, 1000);
  ASSERT_TRUE(attacker->Join(join).ok());
  auto credentials = tls::MakeChannelCredentials(Identity(kAttacker));
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  const int threads_before = ProcessThreads();
  constexpr int kConnections = 4;
  constexpr int kPollsEach = 16;  // under max_streams_per_connection (32)
  std::vector<std::unique_ptr<v1::NodeService::Stub>> stubs;
  for (int c = 0; c < kConnections; ++c) stubs.push_back(OwnConnection(port, *credentials));
  std::vector<std::unique_ptr<Poll>> polls;
  for (int c = 0; c < kConnections; ++c) {
    for (int i = 0; i < kPollsEach; ++i) {
      polls.push_back(StartPoll(*stubs[c], std::chrono::seconds(6)));
    }
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const int threads_during = ProcessThreads();
  int exhausted = 0, waited = 0;
  for (auto& poll : polls) {
    grpc::Status s = poll->done.get_future().get();
    if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      ++exhausted;
    } else if (s.ok() && poll->response.kind() == v1::TaskAssignment::WAIT) {
      ++waited;
    } else {
      ADD_FAILURE() << "a poll ended " << s.error_code() << ": " << s.error_message();
    }
  }
  std::printf("%d held polls against max_threads %d: %d served, %d refused; threads %d -> %d\n",
              kConnections * kPollsEach, kMaxThreads, waited, exhausted, threads_before,
              threads_during);
  EXPECT_GT(exhausted, 0);
  EXPECT_LE(waited, kMaxThreads);
  // Without the quota, 64 held polls would hold 64 handler threads.
  EXPECT_LT(threads_during - threads_before, kMaxThreads + 12);
  // The flood is over: the coordinator serves again.
  EXPECT_TRUE(attacker->Join(join).ok());
}

}  // namespace
}  // namespace fedcustoms
