#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace grpc {
class ServerContext;
}

namespace fedcustoms::coordinator {

// Cancels streaming calls that stop moving. A synchronous gRPC handler blocked
// in Read() or Write() waits as long as the peer keeps its connection open: a
// node that stalls mid-upload (or stops reading a download) would hold a
// server thread and its upload slot indefinitely. Each stream takes a Lease
// and touches it on every chunk; a lease untouched for `idle_limit` has its
// call cancelled (ServerContext::TryCancel is thread-safe), so the blocked
// Read/Write returns and the handler fails the stream with a named reason.
class StreamWatchdog {
 public:
  class Lease {
   public:
    ~Lease();
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    // Data moved: the stream is alive.
    void Touch();
    // Whether the watchdog cancelled the call (idle, or past its cut).
    bool expired() const;
    // The stream must be done by `deadline` (an upload: its round's training
    // deadline). Past it, PastCut() says so, for the handler to refuse at
    // its next chunk with the reason; a stream still open idle_limit after
    // it is cancelled whatever it sends.
    void CutAt(std::chrono::steady_clock::time_point deadline);
    bool PastCut() const;

   private:
    friend class StreamWatchdog;
    Lease(StreamWatchdog* watchdog, uint64_t id) : watchdog_(watchdog), id_(id) {}
    StreamWatchdog* const watchdog_;
    const uint64_t id_;
  };

  explicit StreamWatchdog(std::chrono::milliseconds idle_limit);
  ~StreamWatchdog();
  StreamWatchdog(const StreamWatchdog&) = delete;
  StreamWatchdog& operator=(const StreamWatchdog&) = delete;

  // Watches the call of `context` until the lease is destroyed, which must
  // happen before the handler returns.
  std::unique_ptr<Lease> Watch(grpc::ServerContext* context);

  std::chrono::milliseconds idle_limit() const { return idle_limit_; }

 private:
  using Clock = std::chrono::steady_clock;
  struct Watched {
    grpc::ServerContext* context;
    Clock::time_point last_touch;
    Clock::time_point cut_at = Clock::time_point::max();
    bool expired = false;
  };
  void Loop();

  const std::chrono::milliseconds idle_limit_;
  mutable absl::Mutex mu_;
  absl::CondVar wake_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<uint64_t, Watched> watched_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace fedcustoms::coordinator
