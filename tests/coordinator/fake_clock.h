#pragma once
// A coordinator::Clock for tests: time moves only when the test calls
// Advance, which wakes every thread waiting on a deadline of this clock so it
// re-checks; nothing sleeps.
#include <algorithm>
#include <chrono>
#include <functional>
#include <mutex>
#include <utility>
#include <vector>

#include "coordinator/rounds/clock.h"

namespace fedcustoms::testing_support {

class FakeClock final : public coordinator::Clock {
 public:
  time_point Now() const override {
    std::lock_guard lock(mu_);
    return now_;
  }

  bool WaitUntil(absl::CondVar& cv, absl::Mutex& mu, time_point deadline,
                 const std::function<bool()>& done) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    const Waiter self{&cv, &mu};
    {
      std::lock_guard guard(mu_);
      waiters_.push_back(self);
    }
    bool result = false;
    while (true) {
      if (done()) {
        result = true;
        break;
      }
      if (Now() >= deadline) break;
      cv.Wait(&mu);  // Advance signals while holding `mu`: no lost wake-up
    }
    {
      std::lock_guard guard(mu_);
      waiters_.erase(std::find(waiters_.begin(), waiters_.end(), self));
    }
    return result;
  }

  // Moves time forward by `d` and wakes every waiter. The waiters' mutexes and
  // condition variables must outlive the call; the caller holds none of them.
  void Advance(std::chrono::steady_clock::duration d) {
    std::vector<Waiter> waiters;
    {
      std::lock_guard guard(mu_);
      now_ += d;
      waiters = waiters_;
    }
    for (const Waiter& w : waiters) {
      absl::MutexLock guard(w.mutex);
      w.cv->SignalAll();
    }
  }

  // Threads currently waiting on a deadline of this clock.
  size_t waiters() const {
    std::lock_guard lock(mu_);
    return waiters_.size();
  }

 private:
  struct Waiter {
    absl::CondVar* cv;
    absl::Mutex* mutex;
    bool operator==(const Waiter&) const = default;
  };
  mutable std::mutex mu_;
  time_point now_{std::chrono::hours(1000)};
  std::vector<Waiter> waiters_;
};

}  // namespace fedcustoms::testing_support
