#include "coordinator/rounds/round_state.h"

#include "absl/strings/str_cat.h"

namespace fedcustoms::coordinator {

void RoundState::Open(std::set<std::string> selected_nodes, RoundRecord opened) {
  ++id;
  selected = std::move(selected_nodes);
  record = std::move(opened);
  submitted.clear();
  uploading.clear();
  reported.clear();
  rejected_updates = 0;
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
