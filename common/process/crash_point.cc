#include "common/process/crash_point.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string>

namespace fedcustoms::process {
namespace {

struct Armed {
  std::string name;  // empty: disarmed
  long hit = 1;      // which hit kills
  std::atomic<long> hits{0};
};

// Parsed once; the environment is read before any crash point can race it.
Armed& ArmedPoint() {
  static Armed* armed = [] {
    auto* a = new Armed;
    const char* value = std::getenv("FEDCUSTOMS_CRASH_POINT");
    if (value == nullptr || *value == '\0') return a;
    std::string spec(value);
    const size_t at = spec.find('@');
    a->name = spec.substr(0, at);
    if (at != std::string::npos)
      a->hit = std::max(1L, std::strtol(spec.c_str() + at + 1, nullptr, 10));
    return a;
  }();
  return *armed;
}

}  // namespace

void CrashPoint(std::string_view name) {
  Armed& armed = ArmedPoint();
  if (armed.name.empty() || armed.name != name) return;
  if (armed.hits.fetch_add(1) + 1 != armed.hit) return;
  // write(2), not a logger: nothing buffered may be needed to see this line.
  const std::string line = "crash point " + armed.name + ": SIGKILL\n";
  (void)!::write(STDERR_FILENO, line.data(), line.size());
  ::kill(::getpid(), SIGKILL);
  ::pause();
}

}  // namespace fedcustoms::process
