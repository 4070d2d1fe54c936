#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"

namespace fedcustoms::soak {

// A TCP proxy on 127.0.0.1 in front of the coordinator that injects network
// faults for the soak test: ResetRandom() aborts live connections with a TCP
// reset (close with SO_LINGER 0) on both sides, as a failing middlebox or a
// dropped VPN would. Bytes pass through untouched, so mutual TLS runs end to
// end between node and coordinator. One thread per connection.
class FaultProxy {
 public:
  // Listens on a free port of 127.0.0.1 and forwards to 127.0.0.1:target_port.
  static absl::StatusOr<std::unique_ptr<FaultProxy>> Start(int target_port);
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  int port() const { return port_; }
  // Resets up to `count` live connections chosen with `rng`; returns how many.
  int ResetRandom(int count, std::mt19937_64& rng);
  uint64_t accepted() const { return accepted_.load(); }
  uint64_t resets() const { return resets_.load(); }

 private:
  struct Connection {
    int client = -1;
    int server = -1;
    int wake[2] = {-1, -1};  // a byte here asks the copier to reset
    std::atomic<bool> reset{false};
    std::atomic<bool> done{false};  // the copier has closed both sockets
    std::thread copier;
  };
  FaultProxy(int listen_fd, int port, int target_port, int stop_pipe_read, int stop_pipe_write);
  void AcceptLoop();
  void Copy(const std::shared_ptr<Connection>& c, uint64_t id);
  // Joins the copiers that have finished and closes their wake pipes, so a
  // long run holds fds and threads only for live connections.
  void ReapFinished() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int listen_fd_;
  const int port_;
  const int target_port_;
  const int stop_read_;
  const int stop_write_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> resets_{0};
  std::mutex mu_;
  std::map<uint64_t, std::shared_ptr<Connection>> live_ ABSL_GUARDED_BY(mu_);
  // Every connection not yet reaped, so its copier is joined.
  std::vector<std::shared_ptr<Connection>> all_ ABSL_GUARDED_BY(mu_);
  std::thread acceptor_;
};

}  // namespace fedcustoms::soak
