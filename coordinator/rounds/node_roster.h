#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "coordinator/rounds/clock.h"

namespace fedcustoms::coordinator {

// The nodes that joined one task since the coordinator started, the training
// rows each declared, and when each was last heard from. A node counts as
// available while it keeps calling; only available nodes are selected. A
// value without a lock: TaskRunner guards it with its mutex.
class NodeRoster {
 public:
  // Caps on the rows a node may declare: `max_rows` for all, lower ones by
  // node (TaskConfig.max_train_rows, max_train_rows_by_node).
  NodeRoster(uint64_t max_rows, std::map<std::string, uint64_t> max_rows_by_node);

  // A node that has not called for this long is no longer available.
  static constexpr std::chrono::seconds kAvailableWindow{25};

  // `node` joined (its feature schema already checked) declaring `train_rows`
  // training rows, which bound the sample count of its updates and are its
  // weight. A node joins again after a coordinator restart; a later Join
  // replaces the rows (a round already open keeps the rows it opened with).
  // INVALID_ARGUMENT naming the cap when train_rows is 0 or above the node's
  // cap; the roster is unchanged then. `holdout_rows` (0: not declared)
  // bounds the examples of the node's evaluation reports.
  absl::Status Join(const std::string& node, uint64_t train_rows, Clock::time_point now,
                    uint64_t holdout_rows = 0);
  // `node` called (any request): it stays available for kAvailableWindow.
  void Seen(const std::string& node, Clock::time_point now) { last_seen_[node] = now; }

  bool HasJoined(const std::string& node) const { return declared_rows_.contains(node); }
  // The rows `node` declared at its last Join; nullopt if it has not joined.
  std::optional<uint64_t> DeclaredRows(const std::string& node) const;
  // The hold-out rows `node` declared at its last Join; 0 if none.
  uint64_t DeclaredHoldout(const std::string& node) const;

  // `node` said in its last poll whether it still trains for the task (a
  // node whose privacy budget is spent only evaluates). Logged when it
  // changes.
  void SetTrainingDeclined(const std::string& node, const std::string& reason);

  // The nodes that joined, were heard from within kAvailableWindow of `now`
  // and have not declined training. A node seen through another call after a
  // coordinator restart joins again before it is available.
  std::set<std::string> Available(Clock::time_point now) const;
  // The nodes that joined, were heard from within kAvailableWindow and
  // declined training: they only evaluate.
  std::set<std::string> EvaluatingOnly(Clock::time_point now) const;
  // The reason each node that declined training gave.
  const std::map<std::string, std::string>& training_declined() const { return training_declined_; }

  // At most `max_nodes` of `available`, drawn uniformly at random when there
  // are more (then no node can count on being in a given round); all of
  // them otherwise.
  std::set<std::string> Select(const std::set<std::string>& available, uint32_t max_nodes);
  // The rows each of `nodes` declared (a round freezes them when it opens);
  // 0 for a node that has not joined.
  std::map<std::string, uint64_t> RowsOf(const std::set<std::string>& nodes) const;

 private:
  std::map<std::string, Clock::time_point> last_seen_;
  std::map<std::string, uint64_t> declared_rows_;
  std::map<std::string, uint64_t> declared_holdout_;
  std::map<std::string, std::string> training_declined_;
  const uint64_t max_rows_;
  const std::map<std::string, uint64_t> max_rows_by_node_;
  std::mt19937_64 random_{std::random_device{}()};
};

}  // namespace fedcustoms::coordinator
