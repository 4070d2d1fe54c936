#include "node/boosting/boosting_record.h"

#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/io/atomic_file.h"

namespace fedcustoms::node {
namespace {

std::vector<std::string> Sorted(std::vector<std::string> names) {
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

std::string BoostingRecordPath(const std::string& work_dir) {
  return work_dir + "/boosting_contributions.jsonl";
}

absl::StatusOr<std::unique_ptr<BoostingRecord>> BoostingRecord::Open(std::string path) {
  auto record = std::unique_ptr<BoostingRecord>(new BoostingRecord(path));
  absl::StatusOr<std::string> text = io::ReadFile(path);
  if (!text.ok()) {
    if (absl::IsNotFound(text.status())) return record;
    return text.status();
  }
  const std::vector<std::string> lines = absl::StrSplit(*text, '\n');
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    const bool last = i + 1 == lines.size();  // no newline after it: cut short
    nlohmann::json j = nlohmann::json::parse(lines[i], nullptr, /*allow_exceptions=*/false);
    const bool valid = !j.is_discarded() && j.is_object() && j.contains("data") &&
                       j["data"].is_string() && j.contains("members") && j["members"].is_array() &&
                       std::all_of(j["members"].begin(), j["members"].end(),
                                   [](const nlohmann::json& m) { return m.is_string(); });
    if (!valid) {
      if (last) {
        // Cut back to the last whole line, so that the next append does not
        // continue the torn one.
        const size_t keep = text->size() - lines[i].size();
        if (::truncate(path.c_str(), static_cast<off_t>(keep)) != 0) {
          return absl::InternalError(absl::StrCat(path, ": cannot cut a torn last line"));
        }
        break;
      }
      return absl::InvalidArgumentError(absl::StrCat(
          path, ":", i + 1, ": not a boosting record entry ({\"data\", \"members\"})"));
    }
    record->members_by_data_[j["data"].get<std::string>()] =
        Sorted(j["members"].get<std::vector<std::string>>());
  }
  return record;
}

absl::Status BoostingRecord::Check(const std::string& data,
                                   const std::vector<std::string>& members) const {
  auto it = members_by_data_.find(data);
  if (it == members_by_data_.end() || it->second == Sorted(members)) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "this node summed boosting vectors of these rows (", data.substr(0, 16), "...) with members ",
      absl::StrJoin(it->second, ","), "; summing them with ", absl::StrJoin(Sorted(members), ","),
      " would let the coordinator read the difference (", path_, ")"));
}

absl::Status BoostingRecord::Record(const std::string& task, uint64_t round_id,
                                    const std::string& data,
                                    const std::vector<std::string>& members) {
  if (absl::Status s = Check(data, members); !s.ok()) return s;
  if (members_by_data_.contains(data)) return absl::OkStatus();
  const nlohmann::json line = {
      {"task", task}, {"round", round_id}, {"data", data}, {"members", Sorted(members)}};
  if (absl::Status s = io::AppendDurably(path_, line.dump() + "\n"); !s.ok()) return s;
  members_by_data_[data] = Sorted(members);
  return absl::OkStatus();
}

}  // namespace fedcustoms::node
