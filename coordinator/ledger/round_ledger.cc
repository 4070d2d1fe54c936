#include "coordinator/ledger/round_ledger.h"

#include "absl/strings/str_cat.h"

namespace fedcustoms::coordinator {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS rounds (
  task TEXT NOT NULL,
  round_id INTEGER NOT NULL,
  base_version INTEGER NOT NULL,
  result_version INTEGER NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('completed', 'aborted')),
  reason TEXT NOT NULL,
  mode TEXT NOT NULL,
  strategy TEXT NOT NULL,
  selected_nodes INTEGER NOT NULL,
  participants INTEGER NOT NULL,
  dropped INTEGER NOT NULL,
  rejected_updates INTEGER NOT NULL,
  samples INTEGER NOT NULL,
  opened_at REAL NOT NULL,
  train_seconds REAL NOT NULL,
  aggregate_seconds REAL NOT NULL,
  eval_seconds REAL NOT NULL,
  metrics_json TEXT NOT NULL,
  PRIMARY KEY (task, round_id)
);
CREATE TABLE IF NOT EXISTS selection_evaluations (
  task TEXT NOT NULL,
  round_id INTEGER NOT NULL,
  node TEXT NOT NULL,
  evaluation_json TEXT NOT NULL,
  PRIMARY KEY (task, round_id, node)
);
CREATE TABLE IF NOT EXISTS open_rounds (
  task TEXT NOT NULL,
  round_id INTEGER NOT NULL,
  base_version INTEGER NOT NULL,
  mode TEXT NOT NULL,
  strategy TEXT NOT NULL,
  selected_nodes INTEGER NOT NULL,
  opened_at REAL NOT NULL,
  phase TEXT NOT NULL,
  PRIMARY KEY (task, round_id)
);)sql";

// Finalizes a statement when it goes out of scope.
struct StatementDeleter {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Statement = std::unique_ptr<sqlite3_stmt, StatementDeleter>;

}  // namespace

absl::StatusOr<std::unique_ptr<RoundLedger>> RoundLedger::Open(const std::string& path) {
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return absl::UnavailableError(absl::StrCat("round ledger ", path, ": ", message));
  }
  std::unique_ptr<RoundLedger> ledger(new RoundLedger(db, path));
  sqlite3_busy_timeout(db, 5000);
  {
    absl::MutexLock lock(&ledger->mu_);
    for (const char* sql : {"PRAGMA journal_mode=WAL;", "PRAGMA synchronous=FULL;", kSchema}) {
      if (absl::Status s = ledger->Exec(sql); !s.ok()) return s;
    }
  }
  return ledger;
}

RoundLedger::~RoundLedger() { sqlite3_close(db_); }

absl::Status RoundLedger::Exec(const char* sql) {
  char* error = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &error) != SQLITE_OK) {
    std::string message = error ? error : "unknown error";
    sqlite3_free(error);
    return absl::InternalError(absl::StrCat("round ledger ", path_, ": ", message));
  }
  return absl::OkStatus();
}

absl::Status RoundLedger::Fail(const std::string& what) const {
  return absl::InternalError(
      absl::StrCat("round ledger ", path_, ": ", what, ": ", sqlite3_errmsg(db_)));
}

absl::Status RoundLedger::OpenRecord(const RoundRecord& r, const std::string& phase) {
  absl::MutexLock lock(&mu_);
  const std::string what = absl::StrCat("cannot open round ", r.round_id, " of task ", r.task);
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db_, "INSERT INTO open_rounds VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", -1,
                         &raw, nullptr) != SQLITE_OK) {
    return Fail(what);
  }
  Statement stmt(raw);
  sqlite3_bind_text(raw, 1, r.task.c_str(), static_cast<int>(r.task.size()), SQLITE_TRANSIENT);
  sqlite3_bind_int64(raw, 2, static_cast<sqlite3_int64>(r.round_id));
  sqlite3_bind_int64(raw, 3, static_cast<sqlite3_int64>(r.base_version));
  sqlite3_bind_text(raw, 4, r.mode.c_str(), static_cast<int>(r.mode.size()), SQLITE_TRANSIENT);
  sqlite3_bind_text(raw, 5, r.strategy.c_str(), static_cast<int>(r.strategy.size()),
                    SQLITE_TRANSIENT);
  sqlite3_bind_int64(raw, 6, r.selected_nodes);
  sqlite3_bind_double(raw, 7, r.opened_at);
  sqlite3_bind_text(raw, 8, phase.c_str(), static_cast<int>(phase.size()), SQLITE_TRANSIENT);
  if (sqlite3_step(raw) != SQLITE_DONE) return Fail(what);
  return absl::OkStatus();
}

absl::Status RoundLedger::SetPhase(const std::string& task, uint64_t round_id,
                                   const std::string& phase) {
  absl::MutexLock lock(&mu_);
  const std::string what =
      absl::StrCat("cannot record phase ", phase, " of round ", round_id, " of task ", task);
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db_, "UPDATE open_rounds SET phase = ?3 WHERE task = ?1 AND round_id = ?2",
                         -1, &raw, nullptr) != SQLITE_OK) {
    return Fail(what);
  }
  Statement stmt(raw);
  sqlite3_bind_text(raw, 1, task.c_str(), static_cast<int>(task.size()), SQLITE_TRANSIENT);
  sqlite3_bind_int64(raw, 2, static_cast<sqlite3_int64>(round_id));
  sqlite3_bind_text(raw, 3, phase.c_str(), static_cast<int>(phase.size()), SQLITE_TRANSIENT);
  if (sqlite3_step(raw) != SQLITE_DONE) return Fail(what);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<OpenRound>> RoundLedger::OpenRounds(const std::string& task) const {
  absl::MutexLock lock(&mu_);
  sqlite3_stmt* raw = nullptr;
  const char* sql =
      "SELECT task, round_id, base_version, mode, strategy, selected_nodes, opened_at, phase "
      "FROM open_rounds WHERE (?1 = '' OR task = ?1) ORDER BY task, round_id";
  if (sqlite3_prepare_v2(db_, sql, -1, &raw, nullptr) != SQLITE_OK) {
    return Fail("cannot list open rounds");
  }
  Statement stmt(raw);
  sqlite3_bind_text(raw, 1, task.c_str(), static_cast<int>(task.size()), SQLITE_TRANSIENT);
  auto text = [&](int i) {
    const unsigned char* v = sqlite3_column_text(raw, i);
    return v ? std::string(reinterpret_cast<const char*>(v)) : std::string();
  };
  std::vector<OpenRound> out;
  int rc;
  while ((rc = sqlite3_step(raw)) == SQLITE_ROW) {
    OpenRound open;
    open.record.task = text(0);
    open.record.round_id = sqlite3_column_int64(raw, 1);
    open.record.base_version = sqlite3_column_int64(raw, 2);
    open.record.mode = text(3);
    open.record.strategy = text(4);
    open.record.selected_nodes = static_cast<uint32_t>(sqlite3_column_int64(raw, 5));
    open.record.opened_at = sqlite3_column_double(raw, 6);
    open.phase = text(7);
    out.push_back(std::move(open));
  }
  if (rc != SQLITE_DONE) return Fail("cannot list open rounds");
  return out;
}

absl::Status RoundLedger::Record(const RoundRecord& r) {
  absl::MutexLock lock(&mu_);
  // The finished row and the removal of the open one commit together.
  if (absl::Status s = Exec("BEGIN IMMEDIATE;"); !s.ok()) return s;
  absl::Status status = InsertFinished(r);
  if (status.ok()) status = Exec("COMMIT;");
  if (!status.ok()) (void)Exec("ROLLBACK;");
  return status;
}

absl::Status RoundLedger::InsertFinished(const RoundRecord& r) {
  sqlite3_stmt* raw = nullptr;
  const char* sql =
      "INSERT INTO rounds VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
      "?15, ?16, ?17, ?18)";
  if (sqlite3_prepare_v2(db_, sql, -1, &raw, nullptr) != SQLITE_OK) {
    return absl::InternalError(absl::StrCat("round ledger ", path_, ": ", sqlite3_errmsg(db_)));
  }
  Statement stmt(raw);
  auto text = [&](int i, const std::string& v) {
    sqlite3_bind_text(raw, i, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  };
  text(1, r.task);
  sqlite3_bind_int64(raw, 2, static_cast<sqlite3_int64>(r.round_id));
  sqlite3_bind_int64(raw, 3, static_cast<sqlite3_int64>(r.base_version));
  sqlite3_bind_int64(raw, 4, static_cast<sqlite3_int64>(r.result_version));
  text(5, r.status);
  text(6, r.reason);
  text(7, r.mode);
  text(8, r.strategy);
  sqlite3_bind_int64(raw, 9, r.selected_nodes);
  sqlite3_bind_int64(raw, 10, r.participants);
  sqlite3_bind_int64(raw, 11, r.dropped);
  sqlite3_bind_int64(raw, 12, r.rejected_updates);
  sqlite3_bind_int64(raw, 13, static_cast<sqlite3_int64>(r.samples));
  sqlite3_bind_double(raw, 14, r.opened_at);
  sqlite3_bind_double(raw, 15, r.train_seconds);
  sqlite3_bind_double(raw, 16, r.aggregate_seconds);
  sqlite3_bind_double(raw, 17, r.eval_seconds);
  text(18, r.metrics_json);
  const std::string what = absl::StrCat("cannot record round ", r.round_id, " of task ", r.task);
  if (sqlite3_step(raw) != SQLITE_DONE) return Fail(what);
  sqlite3_stmt* raw_delete = nullptr;
  if (sqlite3_prepare_v2(db_, "DELETE FROM open_rounds WHERE task = ?1 AND round_id = ?2", -1,
                         &raw_delete, nullptr) != SQLITE_OK) {
    return Fail(what);
  }
  Statement remove(raw_delete);
  sqlite3_bind_text(raw_delete, 1, r.task.c_str(), static_cast<int>(r.task.size()),
                    SQLITE_TRANSIENT);
  sqlite3_bind_int64(raw_delete, 2, static_cast<sqlite3_int64>(r.round_id));
  if (sqlite3_step(raw_delete) != SQLITE_DONE) return Fail(what);
  for (const auto& [node, json] : r.selection_evaluations) {
    sqlite3_stmt* raw_insert = nullptr;
    if (sqlite3_prepare_v2(db_, "INSERT INTO selection_evaluations VALUES (?1, ?2, ?3, ?4)", -1,
                           &raw_insert, nullptr) != SQLITE_OK) {
      return Fail(what);
    }
    Statement insert(raw_insert);
    auto bind = [&](int i, const std::string& v) {
      sqlite3_bind_text(raw_insert, i, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    };
    bind(1, r.task);
    sqlite3_bind_int64(raw_insert, 2, static_cast<sqlite3_int64>(r.round_id));
    bind(3, node);
    bind(4, json);
    if (sqlite3_step(raw_insert) != SQLITE_DONE) return Fail(what);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> RoundLedger::SelectionEvaluations(
    const std::string& task, uint64_t round_id) const {
  absl::MutexLock lock(&mu_);
  sqlite3_stmt* raw = nullptr;
  const char* sql =
      "SELECT node, evaluation_json FROM selection_evaluations WHERE task = ?1 AND round_id = ?2 "
      "ORDER BY node";
  if (sqlite3_prepare_v2(db_, sql, -1, &raw, nullptr) != SQLITE_OK) {
    return absl::InternalError(absl::StrCat("round ledger ", path_, ": ", sqlite3_errmsg(db_)));
  }
  Statement stmt(raw);
  sqlite3_bind_text(raw, 1, task.c_str(), static_cast<int>(task.size()), SQLITE_TRANSIENT);
  sqlite3_bind_int64(raw, 2, static_cast<sqlite3_int64>(round_id));
  std::vector<std::pair<std::string, std::string>> out;
  int rc;
  while ((rc = sqlite3_step(raw)) == SQLITE_ROW) {
    out.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(raw, 0)),
                     reinterpret_cast<const char*>(sqlite3_column_text(raw, 1)));
  }
  if (rc != SQLITE_DONE) {
    return absl::InternalError(absl::StrCat("round ledger ", path_, ": ", sqlite3_errmsg(db_)));
  }
  return out;
}

absl::StatusOr<std::vector<RoundRecord>> RoundLedger::List(const std::string& task) const {
  absl::MutexLock lock(&mu_);
  sqlite3_stmt* raw = nullptr;
  const char* sql = "SELECT * FROM rounds WHERE (?1 = '' OR task = ?1) ORDER BY task, round_id";
  if (sqlite3_prepare_v2(db_, sql, -1, &raw, nullptr) != SQLITE_OK) {
    return absl::InternalError(absl::StrCat("round ledger ", path_, ": ", sqlite3_errmsg(db_)));
  }
  Statement stmt(raw);
  sqlite3_bind_text(raw, 1, task.c_str(), static_cast<int>(task.size()), SQLITE_TRANSIENT);
  std::vector<RoundRecord> out;
  auto text = [&](int i) {
    const unsigned char* v = sqlite3_column_text(raw, i);
    return v ? std::string(reinterpret_cast<const char*>(v)) : std::string();
  };
  int rc;
  while ((rc = sqlite3_step(raw)) == SQLITE_ROW) {
    RoundRecord r;
    r.task = text(0);
    r.round_id = sqlite3_column_int64(raw, 1);
    r.base_version = sqlite3_column_int64(raw, 2);
    r.result_version = sqlite3_column_int64(raw, 3);
    r.status = text(4);
    r.reason = text(5);
    r.mode = text(6);
    r.strategy = text(7);
    r.selected_nodes = static_cast<uint32_t>(sqlite3_column_int64(raw, 8));
    r.participants = static_cast<uint32_t>(sqlite3_column_int64(raw, 9));
    r.dropped = static_cast<uint32_t>(sqlite3_column_int64(raw, 10));
    r.rejected_updates = static_cast<uint32_t>(sqlite3_column_int64(raw, 11));
    r.samples = sqlite3_column_int64(raw, 12);
    r.opened_at = sqlite3_column_double(raw, 13);
    r.train_seconds = sqlite3_column_double(raw, 14);
    r.aggregate_seconds = sqlite3_column_double(raw, 15);
    r.eval_seconds = sqlite3_column_double(raw, 16);
    r.metrics_json = text(17);
    out.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) {
    return absl::InternalError(absl::StrCat("round ledger ", path_, ": ", sqlite3_errmsg(db_)));
  }
  return out;
}

absl::StatusOr<uint64_t> RoundLedger::LastRoundId(const std::string& task) const {
  absl::StatusOr<std::vector<RoundRecord>> records = List(task);
  if (!records.ok()) return records.status();
  uint64_t last = 0;
  for (const RoundRecord& r : *records) last = std::max(last, r.round_id);
  return last;
}

}  // namespace fedcustoms::coordinator
