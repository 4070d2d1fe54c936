#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "coordinator/rounds/clock.h"

namespace fedcustoms::coordinator {

// The nodes that joined one task since the coordinator started, the training
// rows each declared, and when each was last heard from. A node counts as
// available while it keeps calling; only available nodes are selected. A
// value without a lock: TaskRunner guards it with its mutex.
class NodeRoster {
 public:
  // A node that has not called for this long is no longer available.
  static constexpr std::chrono::seconds kAvailableWindow{25};

  // `node` joined (its feature schema already checked) declaring `train_rows`
  // training rows, which bound the sample count of its updates. A node joins
  // again after a coordinator restart; a later Join replaces the rows.
  void Join(const std::string& node, uint64_t train_rows, Clock::time_point now);
  // `node` called (any request): it stays available for kAvailableWindow.
  void Seen(const std::string& node, Clock::time_point now) { last_seen_[node] = now; }

  bool HasJoined(const std::string& node) const { return declared_rows_.contains(node); }
  // The rows `node` declared at its last Join; nullopt if it has not joined.
  std::optional<uint64_t> DeclaredRows(const std::string& node) const;
  // The rows all of `nodes` declared (W of a secure round); nodes that have
  // not joined count 0.
  uint64_t TotalDeclaredRows(const std::set<std::string>& nodes) const;

  // The nodes that joined and were heard from within kAvailableWindow of
  // `now`. A node seen through another call after a coordinator restart joins
  // again before it is available.
  std::set<std::string> Available(Clock::time_point now) const;

 private:
  std::map<std::string, Clock::time_point> last_seen_;
  std::map<std::string, uint64_t> declared_rows_;
};

}  // namespace fedcustoms::coordinator
