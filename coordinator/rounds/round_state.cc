#include "coordinator/rounds/round_state.h"

#include "absl/strings/str_cat.h"

namespace fedcustoms::coordinator {

void RoundState::Open(std::map<std::string, uint64_t> selected_rows, RoundRecord opened) {
  ++id;
  selected.clear();
  for (const auto& [node, node_rows] : selected_rows) selected.insert(node);
  rows = std::move(selected_rows);
  record = std::move(opened);
  submitted.clear();
  uploading.clear();
  evaluators.clear();
  privacy_reports.clear();
  reported.clear();
  rejected_updates = 0;
  boosting.reset();
}

uint64_t RoundState::RowsOf(const std::string& node) const {
  auto it = rows.find(node);
  return it == rows.end() ? 0 : it->second;
}

uint64_t RoundState::TotalRows() const {
  uint64_t total = 0;
  for (const std::string& node : selected) total += RowsOf(node);
  return total;
}

absl::Status RoundState::CheckPhase(const std::string& task, uint64_t round_id,
                                    RoundPhase expected) const {
  if (round_id == 0 || round_id > id) {
    return absl::FailedPreconditionError(
        absl::StrCat("unknown round ", round_id, " of task ", task, " (current round ", id, ")"));
  }
  if (round_id < id) {
    return absl::FailedPreconditionError(
        absl::StrCat("round ", round_id, " of task ", task, " is closed (current round ", id, ")"));
  }
  if (phase != expected) {
    return absl::FailedPreconditionError(absl::StrCat("round ", round_id, " of task ", task, " is ",
                                                      RoundPhaseName(phase), ", not ",
                                                      RoundPhaseName(expected)));
  }
  return absl::OkStatus();
}

}  // namespace fedcustoms::coordinator
