#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace fedcustoms::node {

// The node's durable record, one JSON line each in
// work_dir/contributions.jsonl, of every masked update it let leave and of
// every survivor list it confirmed. It stops the re-run attack of
// docs/threat_model.md: a coordinator that runs a second round on the same
// global model without one node would learn that node's update from the
// difference of the two sums (fresh training randomness hides little of
// it: tests/adversarial/rerun_attack_test.cc). So a node
//   - computes at most `max_per_model` masked updates from one model, and
//   - confirms at most one survivor list for sums from one model: a rerun
//     with the same list (after a crash, a failed publish gate) is allowed,
//     one with another list is refused.
// A model is counted by version and by the weights' SHA-256 (a model
// re-published under a new version is the same model). Not thread-safe: the
// node's one session uses it.
// Where a node keeps its record: <work_dir>/contributions.jsonl.
std::string ContributionRecordPath(const std::string& work_dir);

class ContributionRecord {
 public:
  struct Entry {
    std::string task;
    uint64_t model_version = 0;
    std::string model_sha256;  // hex SHA-256 of the model's wire bytes (signed manifest)
    uint64_t round_id = 0;
    // Empty for a masked update; for a confirmation, the survivor list
    // (sorted).
    std::vector<std::string> survivors;
    // Non-empty only on a release (Release): why the administration let
    // this model's earlier entries stop counting.
    std::string release_reason;
  };

  // Reads the record at `path` (a missing file is an empty record). A last
  // line cut short by a crash is dropped: its write never completed, so its
  // update never left. Any other unreadable line is InvalidArgument naming
  // path:line, and nothing is trusted.
  //
  // The record is held exclusively (a lock on <path>.lock) for as long as
  // the object lives, so that `fedcustoms contributions release` cannot
  // write beside a running node: a second Open is FailedPrecondition naming
  // the lock.
  static absl::StatusOr<std::unique_ptr<ContributionRecord>> Open(std::string path,
                                                                  uint32_t max_per_model);
  // The entries at `path` for reading only (`contributions list`, beside a
  // running node): no lock, and a cut-short last line is left as it is.
  static absl::StatusOr<std::vector<Entry>> Read(const std::string& path);

  ~ContributionRecord();
  ContributionRecord(const ContributionRecord&) = delete;
  ContributionRecord& operator=(const ContributionRecord&) = delete;

  // OK when one more contribution computed from `entry`'s model is allowed;
  // FailedPrecondition naming the model and the earlier rounds otherwise,
  // and when the round is not after every round recorded for that model (a
  // round id the coordinator reuses).
  absl::Status CheckAllowed(const Entry& entry) const;

  // CheckAllowed, then appends the entry and fsyncs the file (and its
  // directory when the file is new); returns only once the line is durable.
  absl::Status Record(const Entry& entry);

  // OK unless this node confirmed another survivor list for a sum computed
  // from `confirmation`'s model, or confirmed one in this round or a later
  // one; then FailedPrecondition naming the round and the nodes that differ.
  absl::Status CheckConfirmation(const Entry& confirmation) const;
  // CheckConfirmation, then appends and fsyncs as Record does.
  absl::Status RecordConfirmation(const Entry& confirmation);

  // The way out of a stalled task, decided by the administration (never by
  // the coordinator): when a round aborted after this node confirmed its
  // survivor list and a node of that list left for good, every other list
  // on that model is refused and no round can complete on it. A release
  // makes the entries recorded so far for `task` v`model_version` (and the
  // same weights under other versions) stop counting, so the node may mask
  // again and confirm one other list on that model; round ids must still
  // grow. The price, which the caller must state to the operator: the
  // coordinator may then unmask a second sum on that model, whose
  // difference to the first is close to the update of the nodes left out.
  // Returns the entries that stopped counting; FailedPrecondition when no
  // list was confirmed on that model since the last release (nothing
  // stalls), InvalidArgument for an empty or multi-line reason.
  absl::StatusOr<std::vector<Entry>> Release(const std::string& task, uint64_t model_version,
                                             const std::string& reason);

  const std::vector<Entry>& entries() const { return entries_; }

 private:
  ContributionRecord(std::string path, uint32_t max_per_model, std::vector<Entry> entries,
                     int lock_fd)
      : path_(std::move(path)),
        max_per_model_(max_per_model),
        entries_(std::move(entries)),
        lock_fd_(lock_fd) {}
  // Parses the record at `path`; when `repair`, cuts off a torn last line.
  static absl::StatusOr<std::vector<Entry>> Load(const std::string& path, bool repair);
  // Appends `entry` as a JSON line and fsyncs; on success adds it to entries_.
  absl::Status Append(const Entry& entry);
  // Whether entries_[index] still counts: it is not a release and no later
  // release covers it (SameModel with the entry itself, as Release lists
  // what it lifts; never with the model a caller asks about, which a
  // coordinator could give the version of a released model and the weights
  // of another).
  bool Counts(size_t index) const;

  const std::string path_;
  const uint32_t max_per_model_;
  std::vector<Entry> entries_;
  int lock_fd_ = -1;  // holds the flock on path_ + ".lock"
};

}  // namespace fedcustoms::node
