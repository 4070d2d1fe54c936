#include "coordinator/rounds/node_roster.h"

namespace fedcustoms::coordinator {

void NodeRoster::Join(const std::string& node, uint64_t train_rows, Clock::time_point now) {
  last_seen_[node] = now;
  declared_rows_[node] = train_rows;
}

std::optional<uint64_t> NodeRoster::DeclaredRows(const std::string& node) const {
  auto it = declared_rows_.find(node);
  if (it == declared_rows_.end()) return std::nullopt;
  return it->second;
}

uint64_t NodeRoster::TotalDeclaredRows(const std::set<std::string>& nodes) const {
  uint64_t total = 0;
  for (const std::string& node : nodes) total += DeclaredRows(node).value_or(0);
  return total;
}

std::set<std::string> NodeRoster::Available(Clock::time_point now) const {
  std::set<std::string> out;
  for (const auto& [node, seen] : last_seen_) {
    if (now - seen <= kAvailableWindow && declared_rows_.contains(node)) out.insert(node);
  }
  return out;
}

}  // namespace fedcustoms::coordinator
