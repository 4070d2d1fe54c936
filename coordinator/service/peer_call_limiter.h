#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace fedcustoms::coordinator {

// Bounds the calls one certificate holder has in progress at once, over all
// services: a node flooding the coordinator with streams (that then sit
// silent) gets RESOURCE_EXHAUSTED past the bound instead of a server thread
// each. Thread-safe.
class PeerCallLimiter {
 public:
  // A call in progress; the slot is given back when the ticket goes.
  class Ticket {
   public:
    Ticket() = default;
    Ticket(Ticket&& other) noexcept
        : limiter_(std::exchange(other.limiter_, nullptr)), peer_(std::move(other.peer_)) {}
    Ticket& operator=(Ticket&& other) noexcept;
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    ~Ticket();

   private:
    friend class PeerCallLimiter;
    Ticket(PeerCallLimiter* limiter, std::string peer)
        : limiter_(limiter), peer_(std::move(peer)) {}
    PeerCallLimiter* limiter_ = nullptr;
    std::string peer_;
  };

  // `max_calls_per_peer` >= 1 (CoordinatorConfig limits.max_calls_per_peer).
  explicit PeerCallLimiter(uint32_t max_calls_per_peer) : max_calls_(max_calls_per_peer) {}

  // A slot for one more call of `peer` (its role and CN, "node EE") to `rpc`, or
  // RESOURCE_EXHAUSTED naming the peer and the bound when it has
  // max_calls_per_peer in progress.
  absl::StatusOr<Ticket> Acquire(const std::string& peer, std::string_view rpc);

  // Calls of `peer` in progress (tests, status).
  uint32_t InProgress(const std::string& peer) const;

 private:
  void Release(const std::string& peer);

  const uint32_t max_calls_;
  mutable absl::Mutex mu_;
  std::map<std::string, uint32_t> in_progress_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fedcustoms::coordinator
