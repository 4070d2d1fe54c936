#pragma once
// Runs real nodes of a test federation to their end.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "node/node.h"

namespace fedcustoms::testing_support {

// Runs every node (Node::Run) in parallel until each returns. A federation
// that has not finished within `bound` (e.g. a model an attack broke) fails
// the test with `what` and its nodes are stopped instead of hanging it; each
// node must end OK.
inline void RunNodesToEnd(std::vector<std::unique_ptr<node::Node>>& nodes,
                          std::chrono::seconds bound, const std::string& what) {
  std::vector<std::future<absl::Status>> runs;
  for (auto& n : nodes) runs.push_back(std::async(std::launch::async, [&n] { return n->Run(); }));
  const auto give_up = std::chrono::steady_clock::now() + bound;
  for (auto& run : runs) {
    if (run.wait_until(give_up) != std::future_status::ready) {
      ADD_FAILURE() << what << ": the federation did not finish within " << bound.count() << " s";
      for (auto& n : nodes) n->Stop();
    }
    EXPECT_TRUE(run.get().ok());
  }
}

// Runs every node in parallel until `done()` holds (polled every 200 ms),
// then stops them, calls `after_stop` (e.g. shutting the coordinator down,
// which wakes the nodes' long polls) and waits for them to return: for
// federations that never finish on their own (rounds an attack keeps
// aborting). Not done within `bound` fails the test with `what`.
inline void RunNodesUntil(std::vector<std::unique_ptr<node::Node>>& nodes,
                          std::chrono::seconds bound, const std::string& what,
                          const std::function<bool()>& done,
                          const std::function<void()>& after_stop) {
  std::vector<std::future<absl::Status>> runs;
  for (auto& n : nodes) runs.push_back(std::async(std::launch::async, [&n] { return n->Run(); }));
  const auto give_up = std::chrono::steady_clock::now() + bound;
  while (!done() && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_TRUE(done()) << what << ": not done within " << bound.count() << " s";
  for (auto& n : nodes) n->Stop();
  after_stop();
  for (auto& run : runs) run.wait();
}

}  // namespace fedcustoms::testing_support
