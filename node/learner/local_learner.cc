#include "node/learner/local_learner.h"

#include <torch/torch.h>

#include <map>
#include <random>

#include "absl/strings/str_cat.h"
#include "node/learner/declaration_learner.h"
#include "node/learner/xray_learner.h"

namespace fedcustoms::node {

uint64_t RoundTrainingSeed(uint64_t coordinator_seed, uint64_t round_id, bool reproducible) {
  const uint64_t seed = coordinator_seed * 1000003 + round_id;
  if (reproducible) return seed;
  std::random_device entropy;  // the OS's random source (getrandom)
  return seed ^ ((uint64_t{entropy()} << 32) | entropy());
}

absl::StatusOr<tensor::NamedTensors> LocalLearner::TrainFromScratch(const task::ModelSpec& spec,
                                                                    v1::TrainingConfig training,
                                                                    uint32_t epochs) {
  auto state = task::InitialState(spec, training.seed());
  if (!state.ok()) return state.status();
  tensor::NamedTensors start;
  for (const auto& [name, t] : *state) start.emplace_back(name, t.clone());
  training.set_local_epochs(epochs);
  training.set_proximal_mu(0);
  auto trained = Train(spec, std::move(start), training, /*dp=*/nullptr);
  if (!trained.ok()) return trained.status();
  // The trained model is the fresh one plus its update.
  std::map<std::string, const torch::Tensor*> delta;
  for (const auto& [name, t] : trained->update) delta[name] = &t;
  torch::NoGradGuard no_grad;
  for (auto& [name, t] : *state) {
    if (auto it = delta.find(name); it != delta.end()) t.add_(it->second->to(t.scalar_type()));
  }
  return state;
}

absl::StatusOr<v1::EvaluationMetrics> LocalLearner::TrainLocalOnly(
    const task::ModelSpec& spec, const v1::TrainingConfig& training, uint32_t epochs) {
  auto state = TrainFromScratch(spec, training, epochs);
  if (!state.ok()) return state.status();
  return Evaluate(spec, *state);
}

absl::StatusOr<std::unique_ptr<LocalLearner>> CreateLocalLearner(const v1::NodeConfig& config) {
  switch (task::ResolveKind(config.task_kind(), config.task())) {
    case v1::TASK_XRAY:
      return XrayLearner::Create(config);
    default:
      return DeclarationLearner::Create(config);
  }
}

}  // namespace fedcustoms::node
