#include "coordinator/service/stream_watchdog.h"

#include <grpcpp/server_context.h>

#include <algorithm>
#include <memory>

namespace fedcustoms::coordinator {

StreamWatchdog::StreamWatchdog(std::chrono::milliseconds idle_limit)
    : idle_limit_(idle_limit), thread_([this] { Loop(); }) {}

StreamWatchdog::~StreamWatchdog() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  wake_.SignalAll();
  thread_.join();
}

std::unique_ptr<StreamWatchdog::Lease> StreamWatchdog::Watch(grpc::ServerContext* context) {
  absl::MutexLock lock(&mu_);
  const uint64_t id = next_id_++;
  watched_[id] = Watched{context, Clock::now()};
  return std::unique_ptr<Lease>(new Lease(this, id));
}

StreamWatchdog::Lease::~Lease() {
  absl::MutexLock lock(&watchdog_->mu_);
  watchdog_->watched_.erase(id_);
}

void StreamWatchdog::Lease::Touch() {
  absl::MutexLock lock(&watchdog_->mu_);
  auto it = watchdog_->watched_.find(id_);
  if (it != watchdog_->watched_.end()) it->second.last_touch = Clock::now();
}

void StreamWatchdog::Lease::CutAt(std::chrono::steady_clock::time_point deadline) {
  absl::MutexLock lock(&watchdog_->mu_);
  auto it = watchdog_->watched_.find(id_);
  if (it != watchdog_->watched_.end()) it->second.cut_at = deadline;
}

bool StreamWatchdog::Lease::PastCut() const {
  absl::MutexLock lock(&watchdog_->mu_);
  auto it = watchdog_->watched_.find(id_);
  return it != watchdog_->watched_.end() && Clock::now() >= it->second.cut_at;
}

bool StreamWatchdog::Lease::expired() const {
  absl::MutexLock lock(&watchdog_->mu_);
  auto it = watchdog_->watched_.find(id_);
  return it != watchdog_->watched_.end() && it->second.expired;
}

void StreamWatchdog::Loop() {
  // Checks a few times per limit, so a stall is cut within 1.25 limits.
  const auto period =
      std::max<std::chrono::milliseconds>(idle_limit_ / 4, std::chrono::milliseconds(50));
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    wake_.WaitWithTimeout(&mu_, absl::FromChrono(period));
    if (stopping_) break;
    const auto now = Clock::now();
    for (auto& [id, w] : watched_) {
      const bool past_cut = w.cut_at != Clock::time_point::max() && now - w.cut_at > idle_limit_;
      if (!w.expired && (now - w.last_touch > idle_limit_ || past_cut)) {
        w.expired = true;
        // Under mu_: the lease (and so the call) cannot end meanwhile.
        w.context->TryCancel();
      }
    }
  }
}

}  // namespace fedcustoms::coordinator
