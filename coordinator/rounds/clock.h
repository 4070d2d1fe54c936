#pragma once

#include <chrono>
#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace fedcustoms::coordinator {

// The time a TaskRunner's deadlines run on, and the waits on them. Injected so
// that tests drive every deadline with a fake clock (advanced by hand, waking
// the waiters) instead of sleeping; production uses SteadyClock. Durations are
// steady_clock's: a clock never goes back.
class Clock {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  virtual ~Clock() = default;

  // The current time. Thread-safe.
  virtual time_point Now() const = 0;

  // Waits on `cv` (with `mu` held on entry and on return) until `done()`
  // holds or this clock reaches `deadline`, whichever comes first; returns
  // done(). `done` is called with `mu` held. A wake-up of `cv` (Signal)
  // re-checks `done`. Thread-safe.
  virtual bool WaitUntil(absl::CondVar& cv, absl::Mutex& mu, time_point deadline,
                         const std::function<bool()>& done) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) = 0;
};

// The real clock: std::chrono::steady_clock, and waits with a timeout.
class SteadyClock final : public Clock {
 public:
  time_point Now() const override { return std::chrono::steady_clock::now(); }
  bool WaitUntil(absl::CondVar& cv, absl::Mutex& mu, time_point deadline,
                 const std::function<bool()>& done) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    while (!done()) {
      const time_point now = Now();
      if (now >= deadline) return false;
      cv.WaitWithTimeout(&mu, absl::FromChrono(deadline - now));
    }
    return true;
  }
};

}  // namespace fedcustoms::coordinator
