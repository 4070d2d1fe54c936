#pragma once

#include <functional>

namespace fedcustoms::process {

// Graceful stop on SIGINT/SIGTERM for the long-running binaries. Call
// BlockStopSignals() first in main, before any thread starts, so that every
// thread inherits the mask and no thread is interrupted mid-write; then
// OnStopSignal() starts one detached thread that waits for the first signal
// and calls `on_stop(signal)` (it must be thread-safe and not block long).
void BlockStopSignals();
void OnStopSignal(std::function<void(int signal)> on_stop);

}  // namespace fedcustoms::process
