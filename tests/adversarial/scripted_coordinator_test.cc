// A coordinator that lies, over real mutual TLS: a scripted NodeService
// with the federation's coordinator certificate, whose assignments a test
// chooses, against a real Node. Each test asserts what the node does with
// them (and what never reaches its disk or the wire).
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <filesystem>
#include <future>
#include <mutex>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/tls/credentials.h"
#include "fedcustoms/v1/node_service.grpc.pb.h"
#include "node/config/node_config.h"
#include "node/node.h"
#include "tests/support/federation_dir.h"
#include "tests/support/federation_suite.h"
#include "tests/support/loopback_federation.h"

namespace fedcustoms {
namespace {

namespace fs = std::filesystem;

// Answers Join, hands out the scripted assignments in order (then FINISHED
// for task "risk"), and counts what the node asks for besides.
class ScriptedNodeService final : public v1::NodeService::Service {
 public:
  void Script(std::deque<v1::TaskAssignment> assignments) {
    std::lock_guard lock(mu_);
    script_ = std::move(assignments);
  }
  int downloads() const { return downloads_; }
  int uploads() const { return uploads_; }
  int get_tasks() const { return get_tasks_; }

  grpc::Status Join(grpc::ServerContext*, const v1::JoinRequest*,
                    v1::JoinResponse* response) override {
    response->set_node_id("EE");
    return grpc::Status::OK;
  }
  grpc::Status GetTask(grpc::ServerContext*, const v1::GetTaskRequest*,
                       v1::TaskAssignment* response) override {
    ++get_tasks_;
    std::lock_guard lock(mu_);
    if (script_.empty()) {
      response->set_kind(v1::TaskAssignment::FINISHED);
      response->set_task("risk");
    } else {
      *response = script_.front();
      script_.pop_front();
    }
    return grpc::Status::OK;
  }
  grpc::Status DownloadModel(grpc::ServerContext*, const v1::DownloadModelRequest*,
                             grpc::ServerWriter<v1::DataChunk>*) override {
    ++downloads_;
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "scripted coordinator");
  }
  grpc::Status UploadUpdate(grpc::ServerContext*, grpc::ServerReader<v1::UploadUpdateRequest>*,
                            v1::UploadUpdateResponse*) override {
    ++uploads_;
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "scripted coordinator");
  }

 private:
  std::mutex mu_;
  std::deque<v1::TaskAssignment> script_;
  std::atomic<int> downloads_{0};
  std::atomic<int> uploads_{0};
  std::atomic<int> get_tasks_{0};
};

class ScriptedCoordinatorTest : public testing_support::FederationSuite<ScriptedCoordinatorTest> {
 protected:
  static void SetUpTestSuite() {
    MakeRoot(testing_support::MakeFederationWithData("scripted", {"EE"}, {"EE"}, 200));
  }

  void SetUp() override {
    auto credentials = tls::MakeServerCredentials(Identity("coordinator"));
    ASSERT_TRUE(credentials.ok()) << credentials.status();
    grpc::ServerBuilder builder;
    builder.AddListeningPort("localhost:0", *credentials, &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
  }
  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now());
  }

  // Runs a real node of EE against the scripted coordinator until it exits
  // (FINISHED) or `bound` passes.
  absl::Status RunNode(const std::string& run, std::chrono::seconds bound) {
    auto finalized = node::FinalizeNodeConfig(
        testing_support::LoopbackNodeConfig(*root_, "EE", port_, run, "risk"), "test", "");
    if (!finalized.ok()) return finalized.status();
    auto created = node::Node::Create(*finalized);
    if (!created.ok()) return created.status();
    std::unique_ptr<node::Node> node = *std::move(created);
    auto done = std::async(std::launch::async, [&node] { return node->Run(); });
    if (done.wait_for(bound) != std::future_status::ready) {
      node->Stop();
      done.wait();
      return absl::DeadlineExceededError("the node did not finish");
    }
    return done.get();
  }

  ScriptedNodeService service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

// Point 7 of the review: the assignment's task name became part of the
// node's file paths unchecked. A node now acts only on its own task: an
// assignment for another one (here a path) is ignored, nothing is
// downloaded, uploaded or written for it.
TEST_F(ScriptedCoordinatorTest, AnAssignmentForAnotherTaskIsIgnored) {
  std::deque<v1::TaskAssignment> script;
  for (const char* kind : {"TRAIN", "EVALUATE"}) {
    v1::TaskAssignment a;
    v1::TaskAssignment::Kind k;
    ASSERT_TRUE(v1::TaskAssignment::Kind_Parse(kind, &k));
    a.set_kind(k);
    a.set_task("../../escaped-task");
    a.set_round_id(1);
    a.set_model_version(0);
    script.push_back(a);
  }
  service_.Script(std::move(script));
  const absl::Status run = RunNode("other-task", std::chrono::seconds(60));
  EXPECT_TRUE(run.ok()) << run;
  EXPECT_GE(service_.get_tasks(), 3);  // both lies, then FINISHED
  EXPECT_EQ(service_.downloads(), 0);
  EXPECT_EQ(service_.uploads(), 0);
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(*root_, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    EXPECT_EQ(it->path().filename().string().find("escaped"), std::string::npos) << it->path();
  }
}

}  // namespace
}  // namespace fedcustoms
