#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "coordinator/boosting/boosting_session.h"
#include "coordinator/ledger/round_ledger.h"
#include "coordinator/rounds/clock.h"
#include "coordinator/rounds/round_phase.h"
#include "coordinator/rounds/secure_round.h"
#include "fedcustoms/v1/metrics.pb.h"
#include "fedcustoms/v1/node_service.pb.h"

namespace fedcustoms::coordinator {

// The open round of one task: its phase and deadline, who was selected and
// how far each node got, and what the ledger will record. The driver moves it
// along; the nodes' requests read it and record their steps. A value without
// a lock: TaskRunner guards it with its mutex.
struct RoundState {
  uint64_t id = 0;  // the last round opened; 0 before the first
  RoundPhase phase = RoundPhase::kGathering;
  Clock::time_point deadline;  // of the current phase
  // The nodes selected when the round opened; in mode SECURE narrowed to U2
  // (the nodes whose shares went out) before training.
  std::set<std::string> selected;
  // The training rows each selected node had declared when the round opened:
  // its weight and the bound of its sample count for the whole round, so a
  // Join in the middle of a round changes nothing before the next one.
  std::map<std::string, uint64_t> rows;
  std::set<std::string> uploading;            // an upload is between Begin and Finish
  std::map<std::string, uint64_t> submitted;  // folded in: node → sample count
  // Who evaluates the candidate: the nodes whose update was folded in, and
  // the available nodes that no longer train (privacy budget spent) but
  // still evaluate. Set when evaluation opens.
  std::set<std::string> evaluators;
  std::map<std::string, v1::EvaluationMetrics> reported;  // by node
  // Mode DP_SGD: what each uploading node reported it has spent.
  std::map<std::string, v1::PrivacySpent> privacy_reports;
  uint32_t rejected_updates = 0;
  RoundRecord record;
  // Mode SECURE: the protocol state, and the parameters sent with every
  // secure assignment.
  std::unique_ptr<SecureRound> secure;
  v1::SecureRound secure_params;
  // Mode SECURE: the spool files of folded masked inputs, by node, kept until
  // masking closes (TaskRunner::KeepMaskedInput).
  std::map<std::string, std::string> kept_inputs;
  // Boosted trees: the round's boosting session, and the revocation list
  // relayed with its steps.
  std::unique_ptr<BoostingSession> boosting;
  std::string boosting_crl_pem;

  // Opens the next round (id + 1) with the selected nodes and their rows, and
  // its ledger `record`:
  // every per-round set is cleared; the phase, its deadline and the secure
  // state are the caller's to set as the round moves on.
  void Open(std::map<std::string, uint64_t> selected_rows, RoundRecord opened);

  // The rows of `node` as the round opened; 0 if it was not selected.
  uint64_t RowsOf(const std::string& node) const;
  // Σ rows over the selected nodes (W of a secure round).
  uint64_t TotalRows() const;

  // OK when `round_id` is this round and it is in `expected`;
  // FAILED_PRECONDITION saying which round of `task` is current and in which
  // phase otherwise.
  absl::Status CheckPhase(const std::string& task, uint64_t round_id, RoundPhase expected) const;
};

}  // namespace fedcustoms::coordinator
