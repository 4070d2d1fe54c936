#include "node/privacy/privacy_budget.h"

#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/config/proto_json.h"
#include "common/io/atomic_file.h"

namespace fedcustoms::node {
absl::StatusOr<PrivacyBudget> PrivacyBudget::Open(const std::string& work_dir,
                                                  const std::string& task,
                                                  const v1::NodePrivacyConfig& limits,
                                                  uint64_t train_rows) {
  PrivacyBudget budget(absl::StrCat(work_dir, "/privacy_", task, ".json"), limits, train_rows);
  std::error_code error;
  if (!std::filesystem::exists(budget.path_, error)) {
    if (error) {
      return absl::FailedPreconditionError(
          absl::StrCat(budget.path_, ": cannot be checked: ", error.message()));
    }
    return budget;
  }
  if (absl::Status s = config::LoadProtoJson(budget.path_, &budget.spent_); !s.ok()) {
    return absl::DataLossError(
        absl::StrCat(s.message(),
                     " (the record of this node's spent privacy budget; it is never reset "
                     "silently: restore it from a backup, or remove it only if no update of "
                     "this task ever left the node)"));
  }
  // The stored ε must be what its segments give: a file edited by hand to
  // lower it is refused.
  absl::StatusOr<double> recomputed =
      privacy::EpsilonOfSegments(budget.spent_, budget.spent_.delta());
  if (!recomputed.ok() ||
      std::abs(*recomputed - budget.spent_.epsilon()) > 1e-9 * std::max(1.0, *recomputed)) {
    return absl::DataLossError(absl::StrCat(
        budget.path_, ": the recorded epsilon ", budget.spent_.epsilon(),
        " is not what its segments give (",
        recomputed.ok() ? absl::StrCat(*recomputed) : std::string(recomputed.status().message()),
        ")"));
  }
  return budget;
}

absl::StatusOr<double> PrivacyBudget::EpsilonWith(const privacy::DpSgdPlan& round) const {
  v1::PrivacySpent all = spent_;
  if (absl::Status s = privacy::AddRound(round, &all); !s.ok()) return s;
  return all.epsilon();
}

absl::StatusOr<std::optional<privacy::DpSgdPlan>> PrivacyBudget::Check(
    const v1::PrivacyConfig& privacy, const v1::TrainingConfig& training) const {
  const double max_epsilon = limits_.max_epsilon();
  if (!privacy::IsDpSgd(privacy)) {
    if (max_epsilon > 0) {
      return absl::PermissionDeniedError(absl::StrFormat(
          "the task does not train with differential privacy, and this node's privacy budget "
          "(max_epsilon %g) lets it train only with DP-SGD; nothing was trained",
          max_epsilon));
    }
    return std::nullopt;
  }
  const double max_delta =
      limits_.max_delta() > 0 ? limits_.max_delta() : privacy::DefaultMaxDelta(train_rows_);
  if (!(privacy.delta() > 0 && privacy.delta() <= max_delta)) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "the task's delta %g is above this node's max_delta %g; nothing was trained",
        privacy.delta(), max_delta));
  }
  absl::StatusOr<privacy::DpSgdPlan> plan = privacy::PlanDpSgd(privacy, training, train_rows_);
  if (!plan.ok()) return plan.status();
  if (max_epsilon > 0) {
    absl::StatusOr<double> after = EpsilonWith(*plan);
    if (!after.ok()) return after.status();
    if (*after > max_epsilon) {
      return absl::ResourceExhaustedError(absl::StrFormat(
          "privacy budget: this round (%d steps, sampling rate %.6g, noise multiplier %.6g) "
          "would bring the epsilon spent on this task from %.4g to %.4g at delta %g, above this "
          "node's max_epsilon %g; the node stops training for the task and keeps evaluating",
          plan->steps, plan->sampling_rate, plan->noise_multiplier, spent_.epsilon(), *after,
          plan->delta, max_epsilon));
    }
  }
  return std::optional<privacy::DpSgdPlan>(*plan);
}

absl::Status PrivacyBudget::Record(const privacy::DpSgdPlan& plan) {
  v1::PrivacySpent next = spent_;
  if (absl::Status s = privacy::AddRound(plan, &next); !s.ok()) return s;
  absl::StatusOr<std::string> json = config::PrintProtoJson(next);
  if (!json.ok()) return json.status();
  if (absl::Status s = io::WriteFileAtomically(path_, *json, 0600); !s.ok()) return s;
  spent_ = std::move(next);
  return absl::OkStatus();
}

std::string PrivacyBudget::DeclineReason() const {
  const double max_epsilon = limits_.max_epsilon();
  if (max_epsilon <= 0 || spent_.segments_size() == 0) return "";
  // One more round like the last.
  const v1::PrivacySpent::Segment& last = spent_.last_round();
  privacy::DpSgdPlan round;
  round.sampling_rate = last.sampling_rate();
  round.noise_multiplier = last.noise_multiplier();
  round.steps = last.steps();
  round.clip_norm = spent_.clip_norm();
  round.delta = spent_.delta();
  round.stats_noise_multiplier = spent_.stats_noise_multiplier();
  absl::StatusOr<double> after = EpsilonWith(round);
  if (after.ok() && *after <= max_epsilon) return "";
  return absl::StrFormat(
      "privacy budget spent: epsilon %.4g of max_epsilon %g at delta %g after %d rounds; one "
      "more round would reach %.4g",
      spent_.epsilon(), max_epsilon, spent_.delta(), spent_.rounds(),
      after.ok() ? *after : spent_.epsilon());
}

}  // namespace fedcustoms::node
