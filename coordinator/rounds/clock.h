#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>

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

  // Waits on `cv` (with `lock` held on entry and on return) until `done()`
  // holds or this clock reaches `deadline`, whichever comes first; returns
  // done(). `done` is called with the lock held. A wake-up of `cv` (notify)
  // re-checks `done`. Thread-safe.
  virtual bool WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                         time_point deadline, const std::function<bool()>& done) = 0;
};

// The real clock: std::chrono::steady_clock and condition_variable::wait_until.
class SteadyClock final : public Clock {
 public:
  time_point Now() const override { return std::chrono::steady_clock::now(); }
  bool WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                 time_point deadline, const std::function<bool()>& done) override {
    return cv.wait_until(lock, deadline, done);
  }
};

}  // namespace fedcustoms::coordinator
