#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace fedcustoms::coordinator {

// What one round did, as recorded in the ledger. Counts only: the ledger never
// says which node sent which update. (Evaluation counts are per
// administration: each node reports them in the clear, see
// selection_evaluations.)
struct RoundRecord {
  std::string task;
  uint64_t round_id = 0;
  // Global model version the round trained from.
  uint64_t base_version = 0;
  // Version it produced; 0 when the round aborted.
  uint64_t result_version = 0;
  // "completed" or "aborted".
  std::string status;
  // Why the round aborted; for a completed round empty, or how it came to be
  // recorded (after a restart).
  std::string reason;
  // "secure" or "trusted".
  std::string mode;
  // "fedavg".
  std::string strategy;
  uint32_t selected_nodes = 0;
  uint32_t participants = 0;
  uint32_t dropped = 0;
  uint32_t rejected_updates = 0;
  uint64_t samples = 0;
  // Unix time the round opened, and seconds spent in each phase.
  double opened_at = 0;
  double train_seconds = 0;
  double aggregate_seconds = 0;
  double eval_seconds = 0;
  // Aggregated evaluation metrics of the result version as JSON ("{}" if none).
  std::string metrics_json = "{}";
  // Random-control evaluation counts per administration, (node, JSON of
  // v1::SelectionEvaluation), stored in the selection_evaluations table with
  // the round in the same transaction.
  std::vector<std::pair<std::string, std::string>> selection_evaluations;
};

// A round that was opened and never finished: the coordinator stopped (or was
// killed) in `phase`.
struct OpenRound {
  RoundRecord record;  // status empty; counts as known when it opened
  std::string phase;
};

// The coordinator's round ledger, written with full durability (WAL,
// synchronous=FULL). Thread-safe. A round is in it from the moment it opens:
// OpenRecord writes it to the table of open rounds with its phase, SetPhase
// follows it, and Record moves it, finished, to the table of rounds in one
// transaction. After a crash, OpenRounds says which rounds were interrupted
// and in which phase, so the restart can record what became of them.
class RoundLedger {
 public:
  // Opens or creates the ledger at `path`; the error names the path.
  static absl::StatusOr<std::unique_ptr<RoundLedger>> Open(const std::string& path);
  ~RoundLedger();
  RoundLedger(const RoundLedger&) = delete;
  RoundLedger& operator=(const RoundLedger&) = delete;

  // A round opens in `phase`; (task, round_id) must not be recorded yet.
  // The coordinator does not open a round this fails for.
  absl::Status OpenRecord(const RoundRecord& record, const std::string& phase);
  // The open round moved to `phase`.
  absl::Status SetPhase(const std::string& task, uint64_t round_id, const std::string& phase);
  // Appends a finished round (status "completed" or "aborted") and removes it
  // from the open rounds; (task, round_id) must not be recorded yet.
  absl::Status Record(const RoundRecord& record);

  // The (node, evaluation JSON) pairs recorded with round `round_id` of
  // `task`, by node; empty when there are none.
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> SelectionEvaluations(
      const std::string& task, uint64_t round_id) const;
  // Rounds of `task` (all tasks when empty) that were opened and never
  // recorded, by task then round.
  absl::StatusOr<std::vector<OpenRound>> OpenRounds(const std::string& task) const;

  // All records of `task` (all tasks when empty), by task then round.
  absl::StatusOr<std::vector<RoundRecord>> List(const std::string& task) const;

  // Highest round id recorded for `task`, 0 when none.
  absl::StatusOr<uint64_t> LastRoundId(const std::string& task) const;

 private:
  RoundLedger(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  absl::Status Exec(const char* sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Inserts into rounds and deletes from open_rounds (in a transaction).
  absl::Status InsertFinished(const RoundRecord& record) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // An error naming the ledger, `what` failed and SQLite's message.
  absl::Status Fail(const std::string& what) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  sqlite3* db_ ABSL_GUARDED_BY(mu_);  // Owned.
  const std::string path_;
};

}  // namespace fedcustoms::coordinator
