#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace fedcustoms::node {

// Where a node keeps its boosting record: <work_dir>/boosting_contributions.jsonl.
std::string BoostingRecordPath(const std::string& work_dir);

// The node's durable record of the member lists its boosting vectors were
// summed with, per data set (the digest of its training and validation
// rows, features and labels). Every boosting vector is a deterministic
// function of the node's rows and of what the coordinator sends, and almost
// anything the coordinator sends can be nudged without changing the vector
// (a leaf value, a grid bound by one ulp): so a coordinator that got two
// sums of the same vectors, with member lists that differ by one
// administration, would read that administration's vector from their
// difference. The node therefore sums vectors of one data set with one
// member list only, in every session and task, over the life of work_dir;
// new rows are a new data set. Not thread-safe: the node's one participant
// uses it.
class BoostingRecord {
 public:
  // Reads the record at `path` (a missing file is an empty record). A last
  // line cut short by a crash is dropped (its vector never left); any other
  // unreadable line is InvalidArgument naming path:line.
  static absl::StatusOr<std::unique_ptr<BoostingRecord>> Open(std::string path);

  // OK when vectors of `data` (hex digest) were never summed, or were summed
  // with exactly `members` (the same sums again). FailedPrecondition naming
  // the members that differ otherwise.
  absl::Status Check(const std::string& data, const std::vector<std::string>& members) const;
  // Check, then appends and fsyncs the entry (once per data set); returns
  // once it is durable.
  absl::Status Record(const std::string& task, uint64_t round_id, const std::string& data,
                      const std::vector<std::string>& members);

 private:
  explicit BoostingRecord(std::string path) : path_(std::move(path)) {}
  const std::string path_;
  // Data digest (hex) -> sorted member names.
  std::map<std::string, std::vector<std::string>> members_by_data_;
};

}  // namespace fedcustoms::node
