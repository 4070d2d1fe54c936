#include "coordinator/rounds/round_history.h"

#include <google/protobuf/util/json_util.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/manifest/model_manifest.h"

namespace fedcustoms::coordinator {
namespace {

// Records what became of the rounds of `task` a previous run left open.
absl::Status RecordInterruptedRounds(const std::string& task, uint64_t global_version,
                                     RoundLedger& ledger, const ModelRegistry& registry) {
  absl::StatusOr<std::vector<OpenRound>> open = ledger.OpenRounds(task);
  if (!open.ok()) return open.status();
  for (OpenRound& interrupted : *open) {
    RoundRecord r = std::move(interrupted.record);
    // The version a round makes is base_version + 1; it is this round's if
    // its signed manifest says so (the registry shows only whole versions).
    absl::StatusOr<manifest::ModelManifest> made = absl::NotFoundError("not published");
    if (auto m = registry.ReadManifest(task, r.base_version + 1); m.ok()) {
      made = manifest::ParseManifest(m->json, absl::StrCat(task, " v", r.base_version + 1));
    }
    if (made.ok() && made->round_id == r.round_id) {
      // Published, then stopped before the ledger said so.
      r.status = "completed";
      r.result_version = made->version;
      r.participants = static_cast<uint32_t>(made->contributing_nodes);
      r.dropped = r.selected_nodes > r.participants ? r.selected_nodes - r.participants : 0;
      r.samples = made->total_samples;
      r.metrics_json = made->metrics_json.empty() ? "{}" : made->metrics_json;
      r.reason = absl::StrCat("recorded at restart: the coordinator stopped after publishing ",
                              "version ", made->version);
      spdlog::warn(
          "task {}: round {} published version {} before the coordinator stopped; "
          "recorded as completed",
          task, r.round_id, made->version);
    } else {
      r.status = "aborted";
      r.reason =
          absl::StrCat("the coordinator stopped during ", interrupted.phase,
                       "; abandoned at restart, the model stays at version ", global_version);
      spdlog::warn(
          "task {}: round {} was interrupted during {} by a coordinator stop; recorded "
          "as aborted, the model stays at version {}",
          task, r.round_id, interrupted.phase, global_version);
    }
    if (absl::Status s = ledger.Record(r); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<RoundHistory> RecoverRoundHistory(const std::string& task,
                                                 const ModelSnapshot& global, RoundLedger& ledger,
                                                 const ModelRegistry& registry) {
  if (absl::Status s = RecordInterruptedRounds(task, global.version, ledger, registry); !s.ok()) {
    return s;
  }
  RoundHistory out;
  absl::StatusOr<std::vector<RoundRecord>> history = ledger.List(task);
  if (!history.ok()) return history.status();
  for (const RoundRecord& r : *history) {
    out.last_round_id = std::max(out.last_round_id, r.round_id);
    (r.status == "completed" ? out.rounds_completed : out.rounds_aborted)++;
  }
  // A crash between publishing a version and recording its round leaves the
  // ledger behind the registry: the published round's id is never reused and
  // its round counts as done.
  absl::StatusOr<manifest::ModelManifest> latest =
      manifest::ParseManifest(global.manifest.json, absl::StrCat(task, " latest"));
  if (latest.ok() && latest->round_id > out.last_round_id) {
    spdlog::warn(
        "task {}: the ledger ends at round {} but version {} was published by round {}; "
        "continuing after it",
        task, out.last_round_id, latest->version, latest->round_id);
    out.last_round_id = latest->round_id;
  }
  out.rounds_completed =
      std::max<uint32_t>(out.rounds_completed, static_cast<uint32_t>(global.version));
  // The status of the last completed round survives a restart: its metrics
  // and the administrations' random-control counts, from the ledger.
  for (auto r = history->rbegin(); r != history->rend(); ++r) {
    if (r->status != "completed") continue;
    if (r->result_version != global.version) break;
    v1::EvaluationMetrics metrics;
    if (r->metrics_json != "{}" &&
        google::protobuf::util::JsonStringToMessage(r->metrics_json, &metrics).ok()) {
      out.latest_metrics = metrics;
    }
    auto evaluations = ledger.SelectionEvaluations(task, r->round_id);
    if (!evaluations.ok()) return evaluations.status();
    for (const auto& [node, json] : *evaluations) {
      v1::NodeSelectionEvaluation e;
      e.set_node(node);
      e.set_round_id(r->round_id);
      if (google::protobuf::util::JsonStringToMessage(json, e.mutable_evaluation()).ok()) {
        out.latest_selection_evaluations.push_back(std::move(e));
      }
    }
    break;
  }
  return out;
}

}  // namespace fedcustoms::coordinator
