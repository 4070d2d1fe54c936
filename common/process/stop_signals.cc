#include "common/process/stop_signals.h"

#include <pthread.h>
#include <signal.h>

#include <thread>
#include <utility>

namespace fedcustoms::process {
namespace {

sigset_t StopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  return signals;
}

}  // namespace

void BlockStopSignals() {
  const sigset_t signals = StopSignals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
}

void OnStopSignal(std::function<void(int signal)> on_stop) {
  std::thread([on_stop = std::move(on_stop)] {
    const sigset_t signals = StopSignals();
    int signal = 0;
    if (sigwait(&signals, &signal) == 0) on_stop(signal);
  }).detach();
}

}  // namespace fedcustoms::process
