#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/task/task_model.h"
#include "common/tensor/named_tensors.h"
#include "node/learner/local_learner.h"

namespace fedcustoms::tools {

// A model to judge on every administration's hold-out.
struct NamedModel {
  std::string name;  // e.g. "EE local-only", "federated"
  tensor::NamedTensors state;
};

// An administration's hold-out, behind its learner.
struct HoldOut {
  std::string admin;
  node::LocalLearner* learner = nullptr;
};

// The demo's answer to "what does the federation add" when administrations
// see different things (the X-ray demo's threat mixes differ): each model's
// PR-AUC on each administration's hold-out and their mean. A local-only model
// knows what its own administration sees; the federated model should do well
// on all of them. Prints one row per model. Errors are the learners'.
//
// JSON: {"hold_outs": ["EE", ...],
//        "models": {"<name>": {"<admin>": pr_auc, ..., "mean": pr_auc}}}
absl::StatusOr<nlohmann::json> CrossEvaluate(const task::ModelSpec& spec,
                                             const std::vector<NamedModel>& models,
                                             const std::vector<HoldOut>& hold_outs);

}  // namespace fedcustoms::tools
