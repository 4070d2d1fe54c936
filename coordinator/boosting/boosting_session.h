#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/secagg/key_advertisement.h"
#include "common/trees/feature_bins.h"
#include "common/trees/tree_builder.h"
#include "common/trees/tree_ensemble.h"
#include "fedcustoms/v1/config.pb.h"
#include "fedcustoms/v1/node_service.pb.h"

namespace fedcustoms::coordinator {

// The coordinator's side of one boosting session (a round of a risk task of
// kind BOOSTED_TREES): the steps of trees::TrainBoostedTrees, with every sum
// coming from the members over the network. In mode SECURE the members first
// advertise signed session keys (KEYS), and each vector step then receives
// one masked vector per member, added word by word as its parts arrive: the
// coordinator holds only the running sum (one vector, whatever the number of
// members), and the pairwise masks cancel only when every member's vector is
// in it. So a step missing a member cannot be read, and the session ends
// there, keeping the trees finished so far (there is nothing to unmask and
// no self mask to reveal).
//
// The steps: KEYS (mode SECURE), MOMENTS (base score and sketch grids),
// SKETCH (the bins), then per tree one LEVEL per depth and VALIDATION
// (early stopping on the members' validation loss). A value type without a
// lock: TaskRunner guards it with its mutex.
class BoostingSession {
 public:
  struct Options {
    std::string task;
    uint64_t round_id = 0;
    bool secure = true;
    v1::BoostedTreesConfig config;  // finalized
    // The schema's features: numeric width and categorical hash buckets.
    size_t numeric_width = 0;
    std::vector<uint32_t> categorical_buckets;
    // Mode SECURE: checks the members' signed keys. Outlives the session.
    const secagg::KeyAdvertisementVerifier* verifier = nullptr;
    // Fewest members a step may have (the task's min_nodes).
    uint32_t min_members = 1;
  };

  // `members`: the selected nodes (at most boosting::kMaxMembers).
  BoostingSession(Options options, std::set<std::string> members);
  // The tree builder refers to the ensemble's bins: never copied or moved.
  BoostingSession(const BoostingSession&) = delete;
  BoostingSession& operator=(const BoostingSession&) = delete;

  // The step `node` has to take now; nullopt when it is not a member or has
  // sent everything for the current step.
  std::optional<v1::BoostingStep> StepFor(const std::string& node) const;

  // A member's signed session key (step KEYS). PermissionDenied when the
  // signature or certificate does not check out; FailedPrecondition outside
  // KEYS or for a non-member; a second, different key is refused.
  absl::Status AdvertiseKey(const std::string& node, const v1::BoostingKey& key);
  // One part of a member's vector for the current step, added to the sum.
  // FailedPrecondition for another step, a non-member or a part already
  // received; InvalidArgument for a part of the wrong size or form.
  absl::Status Submit(const std::string& node, const v1::SubmitBoostingVectorRequest& part);

  // Every member has sent the whole of the current step.
  bool StepComplete() const;
  // The members that have not (for the deadline).
  std::set<std::string> Missing() const;
  // After a deadline: in KEYS the members without a key leave the session
  // (OK while at least min_members remain); in a vector step the step's sum
  // cannot be read and the session ends with the trees finished so far.
  // FailedPrecondition when nothing usable is left (fewer than min_members
  // keys, or no finished tree).
  absl::Status CloseStepIncomplete();
  // Reads the complete step's sum and moves to the next step, or finishes.
  // InvalidArgument (naming the step) when the sum is malformed: the round
  // aborts.
  absl::Status Advance();

  bool done() const { return done_; }
  // The model: after done(), the best number of trees on validation.
  const trees::TreeEnsemble& ensemble() const { return ensemble_; }
  const std::set<std::string>& members() const { return members_; }
  // Validation loss after each finished tree (empty without validation rows).
  const std::vector<double>& validation_loss() const { return validation_loss_; }
  // "keys", "moments", "sketch", "tree 3 level 2", "validation of tree 3".
  std::string StepName() const;
  uint64_t step() const { return step_; }
  // Why the session ended before its last tree (empty otherwise).
  const std::string& ended_early() const { return ended_early_; }

 private:
  // Enters `kind` as the next step: numbers it, sizes its sum, builds the
  // message the members get.
  void Enter(v1::BoostingStep::Kind kind);
  // Finishes: keeps the best number of trees on validation.
  void Finish();
  uint64_t Values() const;

  const Options options_;
  std::set<std::string> members_;
  v1::BoostingStep::Kind kind_ = v1::BoostingStep::KIND_UNSPECIFIED;
  uint64_t step_ = 0;
  bool done_ = false;
  std::string ended_early_;
  // KEYS: the members' keys.
  std::map<std::string, v1::BoostingKey> keys_;
  // The current step's message (without members' keys), its sum and who sent
  // which parts.
  v1::BoostingStep message_;
  // The running sum of the members' encoded vectors (boosting::kDigits words
  // per value; in mode TRUSTED the coordinator encodes the plain values).
  std::vector<uint32_t> sum_words_;
  // Per member, the SHA-256 of each part received ("" while missing).
  std::map<std::string, std::vector<std::string>> parts_received_;
  // The current LEVEL's depth in its tree.
  uint32_t level_ = 0;
  // The model being grown.
  std::vector<trees::SketchGrid> grids_;
  trees::TreeEnsemble ensemble_;
  std::optional<trees::TreeBuilder> builder_;
  std::vector<double> validation_loss_;
  double best_loss_ = 0;
  size_t best_trees_ = 0;
};

}  // namespace fedcustoms::coordinator
