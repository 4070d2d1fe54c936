#include "node/secure/contribution_record.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/io/atomic_file.h"

namespace fedcustoms::node {
namespace {

bool IsRelease(const ContributionRecord::Entry& e) { return !e.release_reason.empty(); }
bool IsConfirmation(const ContributionRecord::Entry& e) {
  return !e.survivors.empty() && !IsRelease(e);
}

bool SameModel(const ContributionRecord::Entry& a, const ContributionRecord::Entry& b) {
  return a.task == b.task && (a.model_version == b.model_version ||
                              (!a.model_sha256.empty() && a.model_sha256 == b.model_sha256));
}

absl::Status RoundNotAfter(const ContributionRecord::Entry& entry, uint64_t recorded) {
  return absl::FailedPreconditionError(
      absl::StrCat("round ", entry.round_id, " of ", entry.task, " is not after round ", recorded,
                   ", in which this node already took part with a model the same as v",
                   entry.model_version, "; a coordinator reusing a round id is refused"));
}

absl::Status SystemError(const std::string& path, const char* call) {
  return absl::InternalError(absl::StrCat(path, ": ", call, ": ", std::strerror(errno)));
}

}  // namespace

std::string ContributionRecordPath(const std::string& work_dir) {
  return work_dir + "/contributions.jsonl";
}

absl::StatusOr<std::unique_ptr<ContributionRecord>> ContributionRecord::Open(
    std::string path, uint32_t max_per_model) {
  const std::string lock_path = path + ".lock";
  const int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0) return SystemError(lock_path, "open");
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    const bool held = errno == EWOULDBLOCK;
    absl::Status s = held ? absl::FailedPreconditionError(absl::StrCat(
                                lock_path,
                                " is held: a node (or another `fedcustoms contributions "
                                "release`) has the record open; stop the node first"))
                          : SystemError(lock_path, "flock");
    ::close(lock_fd);
    return s;
  }
  absl::StatusOr<std::vector<Entry>> entries = Load(path, /*repair=*/true);
  if (!entries.ok()) {
    ::close(lock_fd);
    return entries.status();
  }
  return std::unique_ptr<ContributionRecord>(
      new ContributionRecord(std::move(path), max_per_model, *std::move(entries), lock_fd));
}

absl::StatusOr<std::vector<ContributionRecord::Entry>> ContributionRecord::Read(
    const std::string& path) {
  return Load(path, /*repair=*/false);
}

ContributionRecord::~ContributionRecord() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

absl::StatusOr<std::vector<ContributionRecord::Entry>> ContributionRecord::Load(
    const std::string& path, bool repair) {
  std::vector<Entry> entries;
  absl::StatusOr<std::string> text = io::ReadFile(path);
  if (!text.ok() && !absl::IsNotFound(text.status())) return text.status();
  if (text.ok()) {
    std::vector<std::string> lines = absl::StrSplit(*text, '\n');
    // The text ends with '\n' unless a crash cut the last write short: that
    // line was never acknowledged, so no update left after it. It is cut off
    // so that the next line starts on a line of its own.
    if (repair && !lines.back().empty()) {
      std::error_code ec;
      std::filesystem::resize_file(path, text->size() - lines.back().size(), ec);
      if (ec) {
        return absl::InternalError(
            absl::StrCat(path, ": cannot cut off an unfinished last line: ", ec.message()));
      }
      const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
      const bool synced = fd >= 0 && ::fsync(fd) == 0;
      if (fd >= 0) ::close(fd);
      if (!synced) return SystemError(path, "fsync");
    }
    lines.pop_back();
    for (size_t i = 0; i < lines.size(); ++i) {
      const std::string where = absl::StrCat(path, ":", i + 1);
      nlohmann::json line = nlohmann::json::parse(lines[i], nullptr, /*allow_exceptions=*/false);
      const bool survivors_ok =
          !line.is_object() || !line.contains("survivors") ||
          (line["survivors"].is_array() && !line["survivors"].empty() &&
           std::all_of(line["survivors"].begin(), line["survivors"].end(),
                       [](const nlohmann::json& v) { return v.is_string(); }));
      const bool release_ok =
          !line.is_object() || !line.contains("release") ||
          (line["release"].is_string() && !line["release"].get<std::string>().empty());
      if (!line.is_object() || !line["task"].is_string() ||
          !line["model_version"].is_number_unsigned() || !line["model_sha256"].is_string() ||
          !line["round"].is_number_unsigned() || !survivors_ok || !release_ok) {
        return absl::InvalidArgumentError(absl::StrCat(
            where,
            ": expected {\"task\", \"model_version\", \"model_sha256\", \"round\"}; the "
            "record of this node's contributions is damaged (restore it from backup: "
            "deleting it would let the node contribute twice on one model)"));
      }
      Entry entry{line["task"].get<std::string>(),
                  line["model_version"].get<uint64_t>(),
                  line["model_sha256"].get<std::string>(),
                  line["round"].get<uint64_t>(),
                  {},
                  line.contains("release") ? line["release"].get<std::string>() : ""};
      if (line.contains("survivors")) {
        entry.survivors = line["survivors"].get<std::vector<std::string>>();
        std::sort(entry.survivors.begin(), entry.survivors.end());
      }
      entries.push_back(std::move(entry));
    }
  }
  return entries;
}

absl::Status ContributionRecord::CheckAllowed(const Entry& entry) const {
  std::vector<uint64_t> rounds;
  for (size_t i = 0; i < entries_.size(); ++i) {
    const Entry& e = entries_[i];
    if (IsConfirmation(e) || IsRelease(e) || !SameModel(e, entry)) continue;
    // A round id the coordinator reuses is a new round to this node (new keys,
    // new training): refused, so reuse cannot lift the allowance (nor can a
    // release).
    if (e.round_id >= entry.round_id) return RoundNotAfter(entry, e.round_id);
    if (Counts(i)) rounds.push_back(e.round_id);
  }
  if (rounds.size() < max_per_model_) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "this node already contributed a masked update computed from ", entry.task, " v",
      entry.model_version, " (the same version or the same weights) in round",
      rounds.size() > 1 ? "s " : " ", absl::StrJoin(rounds, ", "), "; it contributes at most ",
      max_per_model_,
      " per model, so that a coordinator rerunning the round without one node cannot learn that "
      "node's update (",
      path_, ")"));
}

absl::Status ContributionRecord::Record(const Entry& entry) {
  if (absl::Status s = CheckAllowed(entry); !s.ok()) return s;
  Entry masked = entry;
  masked.survivors.clear();
  return Append(masked);
}

absl::Status ContributionRecord::CheckConfirmation(const Entry& confirmation) const {
  std::vector<std::string> survivors = confirmation.survivors;
  std::sort(survivors.begin(), survivors.end());
  for (size_t i = 0; i < entries_.size(); ++i) {
    const Entry& e = entries_[i];
    if (!IsConfirmation(e) || !SameModel(e, confirmation)) continue;
    if (e.round_id >= confirmation.round_id) return RoundNotAfter(confirmation, e.round_id);
    if (e.survivors == survivors || !Counts(i)) continue;
    std::vector<std::string> only_then, only_now;
    std::set_difference(e.survivors.begin(), e.survivors.end(), survivors.begin(), survivors.end(),
                        std::back_inserter(only_then));
    std::set_difference(survivors.begin(), survivors.end(), e.survivors.begin(), e.survivors.end(),
                        std::back_inserter(only_now));
    return absl::FailedPreconditionError(absl::StrCat(
        "this node already confirmed another survivor list for a sum computed from ",
        confirmation.task, " v", confirmation.model_version, " (round ", e.round_id,
        "; that list also had [", absl::StrJoin(only_then, ", "), "], this one also has [",
        absl::StrJoin(only_now, ", "),
        "]); two sums over different lists from one model would give away the difference (", path_,
        ")"));
  }
  return absl::OkStatus();
}

absl::Status ContributionRecord::RecordConfirmation(const Entry& confirmation) {
  if (confirmation.survivors.empty()) {
    return absl::InvalidArgumentError("a confirmation needs its survivor list");
  }
  if (absl::Status s = CheckConfirmation(confirmation); !s.ok()) return s;
  Entry sorted = confirmation;
  std::sort(sorted.survivors.begin(), sorted.survivors.end());
  return Append(sorted);
}

bool ContributionRecord::Counts(size_t index) const {
  if (IsRelease(entries_[index])) return false;
  for (size_t j = index + 1; j < entries_.size(); ++j) {
    if (IsRelease(entries_[j]) && SameModel(entries_[j], entries_[index])) return false;
  }
  return true;
}

absl::StatusOr<std::vector<ContributionRecord::Entry>> ContributionRecord::Release(
    const std::string& task, uint64_t model_version, const std::string& reason) {
  if (reason.empty() || reason.find('\n') != std::string::npos || reason.size() > 500) {
    return absl::InvalidArgumentError(
        "a release needs a reason of one line (at most 500 characters): it stays in the record");
  }
  Entry model{task, model_version, "", 0, {}, ""};
  std::vector<Entry> lifted;
  bool confirmed = false;
  for (size_t i = 0; i < entries_.size(); ++i) {
    const Entry& e = entries_[i];
    // The weights' hash is taken from the entries of that version, so that
    // the release also covers them re-published under another version.
    if (e.task == task && e.model_version == model_version && model.model_sha256.empty()) {
      model.model_sha256 = e.model_sha256;
    }
  }
  for (size_t i = 0; i < entries_.size(); ++i) {
    const Entry& e = entries_[i];
    if (!SameModel(e, model) || !Counts(i)) continue;
    lifted.push_back(e);
    confirmed = confirmed || IsConfirmation(e);
    model.round_id = std::max(model.round_id, e.round_id);
  }
  if (!confirmed) {
    return absl::FailedPreconditionError(absl::StrCat(
        "nothing to release: this node confirmed no survivor list for a sum computed from ", task,
        " v", model_version, model.model_sha256.empty() ? "" : " (or the same weights)",
        lifted.empty() ? "" : " since its last release", " (", path_, ")"));
  }
  model.release_reason = reason;
  if (absl::Status s = Append(model); !s.ok()) return s;
  return lifted;
}

absl::Status ContributionRecord::Append(const Entry& entry) {
  nlohmann::json line = {{"task", entry.task},
                         {"model_version", entry.model_version},
                         {"model_sha256", entry.model_sha256},
                         {"round", entry.round_id}};
  if (!entry.survivors.empty()) line["survivors"] = entry.survivors;
  if (!entry.release_reason.empty()) line["release"] = entry.release_reason;
  if (absl::Status s = io::AppendDurably(path_, line.dump() + "\n"); !s.ok()) return s;
  entries_.push_back(entry);
  return absl::OkStatus();
}

}  // namespace fedcustoms::node
