#include "coordinator/service/peer_call_limiter.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace fedcustoms::coordinator {

PeerCallLimiter::Ticket& PeerCallLimiter::Ticket::operator=(Ticket&& other) noexcept {
  if (this != &other) {
    if (limiter_ != nullptr) limiter_->Release(peer_);
    limiter_ = std::exchange(other.limiter_, nullptr);
    peer_ = std::move(other.peer_);
  }
  return *this;
}

PeerCallLimiter::Ticket::~Ticket() {
  if (limiter_ != nullptr) limiter_->Release(peer_);
}

absl::StatusOr<PeerCallLimiter::Ticket> PeerCallLimiter::Acquire(const std::string& peer,
                                                                 std::string_view rpc) {
  absl::MutexLock lock(&mu_);
  uint32_t& calls = in_progress_[peer];
  if (calls >= max_calls_) {
    return absl::ResourceExhaustedError(
        absl::StrCat(std::string(rpc), ": ", peer, " already has ", calls,
                     " calls in progress (limits.max_calls_per_peer); retry when one ends"));
  }
  ++calls;
  return Ticket(this, peer);
}

uint32_t PeerCallLimiter::InProgress(const std::string& peer) const {
  absl::MutexLock lock(&mu_);
  auto it = in_progress_.find(peer);
  return it == in_progress_.end() ? 0 : it->second;
}

void PeerCallLimiter::Release(const std::string& peer) {
  absl::MutexLock lock(&mu_);
  auto it = in_progress_.find(peer);
  if (it == in_progress_.end()) return;
  if (--it->second == 0) in_progress_.erase(it);
}

}  // namespace fedcustoms::coordinator
