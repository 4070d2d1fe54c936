#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/task/task_model.h"
#include "node/config/node_config.h"
#include "node/learner/local_learner.h"
#include "tests/support/federation_dir.h"
#include "tests/support/loopback_federation.h"

namespace fedcustoms::testing_support {

// EE's real learner of a declaration task over synthetic data, and the spec
// of the task's default model.
struct SyntheticLearner {
  std::unique_ptr<node::LocalLearner> learner;
  task::ModelSpec spec;
};

// A fresh federation directory `tag` with `rows` synthetic declarations for
// EE (generator seed 7), and EE's learner of `task_kind`'s task, named as
// the kind ("risk" or "anomaly"), with `validation_fraction` in its config.
inline absl::StatusOr<SyntheticLearner> MakeSyntheticLearner(const std::string& tag,
                                                             v1::TaskKind task_kind, uint64_t rows,
                                                             double validation_fraction = 0) {
  absl::StatusOr<std::string> root = MakeFederationWithData(tag, {"EE"}, {"EE"}, rows);
  if (!root.ok()) return root.status();
  const std::string task = task_kind == v1::TASK_ANOMALY ? "anomaly" : "risk";
  v1::NodeConfig raw = LoopbackNodeConfig(*root, "EE", 1, tag, task);
  raw.set_validation_fraction(validation_fraction);
  absl::StatusOr<v1::NodeConfig> config = node::FinalizeNodeConfig(raw, "test", "");
  if (!config.ok()) return config.status();
  absl::StatusOr<std::unique_ptr<node::LocalLearner>> learner = node::CreateLocalLearner(*config);
  if (!learner.ok()) return learner.status();
  v1::TaskAssignment assignment;
  assignment.set_task(task);
  assignment.set_task_kind(task_kind);
  SyntheticLearner out;
  out.spec = (*learner)->SpecOf(assignment);
  out.learner = *std::move(learner);
  return out;
}

}  // namespace fedcustoms::testing_support
