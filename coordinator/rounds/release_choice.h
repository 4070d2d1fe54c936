#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace fedcustoms::coordinator {

// Which version of a task the coordinator releases: the published version
// with the best validation PR-AUC so far, not simply the newest. The figure
// of a round is the lower median over the reporting nodes of the PR-AUC on
// their validation splits (EvaluationMetrics.validation, never a hold-out),
// and only when enough nodes report one (SummarizeReports), so that one
// hostile node can neither choose nor, by withholding its figure, reset the
// choice. Federated rounds overfit small tables like epochs do; keeping the
// best version is early stopping that needs no tuning.
//
// The rules, for a newly published version:
//   - until a figure has been seen, the newest version is released (as
//     when no node has a validation split);
//   - a figure above the released version's releases the new version (a
//     tie keeps the earlier one);
//   - a round without a figure keeps the release and does not count as a
//     round without improvement.
// Not thread-safe: the task's runner owns it under its lock.
class ReleaseChoice {
 public:
  struct Decision {
    uint64_t released_version = 0;
    // Empty when the new version releases itself (its hash is known only once
    // it is written; the manifest's own weights_sha256 then says it).
    std::string released_weights_sha256;
    std::optional<double> best;
    uint32_t rounds_without_improvement = 0;
    // The manifest's "release" object (manifest::ModelManifest::release_json).
    std::string release_json;
  };

  // Restores the choice a published manifest recorded, so a restarted
  // coordinator goes on choosing as before. `release_json` "{}" (v0, older
  // manifests) leaves no choice.
  void Restore(uint64_t released_version, const std::string& released_weights_sha256,
               const std::string& release_json);

  // The choice once `version` is published with the round's figure
  // `validation_pr_auc` (none: not enough figures). Does not change the
  // state: Accept it once published, with the published version's
  // weights_sha256.
  Decision Decide(uint64_t version, std::optional<double> validation_pr_auc) const;
  void Accept(const Decision& decision, uint64_t published_version,
              const std::string& published_weights_sha256);

  // The released version (0: none yet).
  uint64_t released_version() const { return released_version_; }
  // Rounds with a figure since the released version was chosen: federated
  // early stopping counts them.
  uint32_t rounds_without_improvement() const { return rounds_without_improvement_; }

 private:
  uint64_t released_version_ = 0;
  std::string released_weights_sha256_;
  // The released version's figure; none until a figure has been seen.
  std::optional<double> best_;
  uint32_t rounds_without_improvement_ = 0;
};

}  // namespace fedcustoms::coordinator
