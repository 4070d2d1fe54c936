#include "coordinator/rounds/node_roster.h"

#include <algorithm>
#include <iterator>
#include <vector>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace fedcustoms::coordinator {

NodeRoster::NodeRoster(uint64_t max_rows, std::map<std::string, uint64_t> max_rows_by_node)
    : max_rows_(max_rows), max_rows_by_node_(std::move(max_rows_by_node)) {}

absl::Status NodeRoster::Join(const std::string& node, uint64_t train_rows, Clock::time_point now,
                              uint64_t holdout_rows) {
  auto own = max_rows_by_node_.find(node);
  const bool capped_by_node = own != max_rows_by_node_.end() && own->second < max_rows_;
  const uint64_t cap = capped_by_node ? own->second : max_rows_;
  if (train_rows == 0 || train_rows > cap) {
    return absl::InvalidArgumentError(absl::StrCat(
        "node ", node, " declared ", train_rows, " training rows; the task takes 1..", cap,
        capped_by_node ? " from this administration (max_train_rows_by_node)"
                       : " from an administration (max_train_rows)"));
  }
  last_seen_[node] = now;
  declared_rows_[node] = train_rows;
  declared_holdout_[node] = holdout_rows;
  return absl::OkStatus();
}

uint64_t NodeRoster::DeclaredHoldout(const std::string& node) const {
  auto it = declared_holdout_.find(node);
  return it == declared_holdout_.end() ? 0 : it->second;
}

std::optional<uint64_t> NodeRoster::DeclaredRows(const std::string& node) const {
  auto it = declared_rows_.find(node);
  if (it == declared_rows_.end()) return std::nullopt;
  return it->second;
}

std::set<std::string> NodeRoster::Select(const std::set<std::string>& available,
                                         uint32_t max_nodes) {
  if (available.size() <= max_nodes) return available;
  std::vector<std::string> drawn;
  std::sample(available.begin(), available.end(), std::back_inserter(drawn), max_nodes, random_);
  return std::set<std::string>(drawn.begin(), drawn.end());
}

std::map<std::string, uint64_t> NodeRoster::RowsOf(const std::set<std::string>& nodes) const {
  std::map<std::string, uint64_t> out;
  for (const std::string& node : nodes) out[node] = DeclaredRows(node).value_or(0);
  return out;
}

void NodeRoster::SetTrainingDeclined(const std::string& node, const std::string& reason) {
  if (reason.empty()) {
    if (training_declined_.erase(node) > 0) spdlog::info("node {} trains again", node);
    return;
  }
  // The node's words go to the log: printable ASCII, at most 300 characters.
  std::string clean;
  for (char c : reason.substr(0, 300)) clean.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  auto [it, inserted] = training_declined_.insert_or_assign(node, clean);
  if (inserted) spdlog::info("node {} no longer trains, it only evaluates: {}", node, it->second);
}

std::set<std::string> NodeRoster::EvaluatingOnly(Clock::time_point now) const {
  std::set<std::string> out;
  for (const auto& [node, reason] : training_declined_) {
    auto seen = last_seen_.find(node);
    if (seen != last_seen_.end() && now - seen->second <= kAvailableWindow &&
        declared_rows_.contains(node)) {
      out.insert(node);
    }
  }
  return out;
}

std::set<std::string> NodeRoster::Available(Clock::time_point now) const {
  std::set<std::string> out;
  for (const auto& [node, seen] : last_seen_) {
    if (now - seen <= kAvailableWindow && declared_rows_.contains(node) &&
        !training_declined_.contains(node)) {
      out.insert(node);
    }
  }
  return out;
}

}  // namespace fedcustoms::coordinator
