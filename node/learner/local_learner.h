#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/task/task_model.h"
#include "common/tensor/named_tensors.h"
#include "common/training/risk_trainer.h"
#include "fedcustoms/v1/config.pb.h"
#include "fedcustoms/v1/metrics.pb.h"
#include "fedcustoms/v1/node_service.pb.h"

namespace fedcustoms::node {

// The seed of one round's local training. By default it mixes 64 bits of OS
// randomness into the coordinator's seed, so no two runs on the same model
// give the same update (a coordinator rerunning a round cannot cancel the
// other nodes' updates out of a difference of sums). `reproducible` (node
// config reproducible_training, for tests and benchmarks) derives it from
// the coordinator's seed and the round alone.
uint64_t RoundTrainingSeed(uint64_t coordinator_seed, uint64_t round_id, bool reproducible);

// What a node does with its own data for one kind of task: train a global
// model into an update, evaluate a model on the hold-out. The data is loaded
// once, when the learner is made, and never leaves it; only updates and
// metrics come out.
class LocalLearner {
 public:
  struct Trained {
    // Δ = trained − global for every aggregatable tensor (task::UpdateFrom).
    tensor::NamedTensors update;
    // Training examples: the update's weight.
    uint64_t samples = 0;
    // Mean training loss of the last local epoch.
    double mean_loss = 0;
    // DP-SGD only: the steps taken and their sampling rate, which the node's
    // accountant records.
    uint64_t dp_steps = 0;
    double dp_sampling_rate = 0;
    // DP-SGD only: drawn rows left out because their loss was not finite.
    int64_t dp_excluded = 0;
  };

  virtual ~LocalLearner() = default;

  virtual v1::TaskKind kind() const = 0;
  // The spec of the model an assignment asks for, with this node's schema
  // where the task uses declarations.
  virtual task::ModelSpec SpecOf(const v1::TaskAssignment& assignment) const = 0;
  // Hash of this node's model input (task::InputHash); the coordinator's
  // task must have the same.
  virtual std::string input_hash() const = 0;
  // Row counts reported at join.
  virtual v1::DataSummary data_summary() const = 0;

  // Trains `spec`'s model, starting from `global`, on the local training
  // split; `global` is consumed. With `dp` (not null) the training is DP-SGD
  // (Unimplemented for a learner without per-example gradients). Errors name
  // what failed (a model that does not fit, a diverging training).
  virtual absl::StatusOr<Trained> Train(const task::ModelSpec& spec, tensor::NamedTensors global,
                                        const v1::TrainingConfig& training,
                                        const training::DpSgdOptions* dp) = 0;
  // From now on, evaluation reads no training row (the node trains with
  // differential privacy, whose guarantee covers the training rows only
  // through DP-SGD). Only the anomaly task's flagging threshold reads them;
  // it then comes from the hold-out.
  virtual void KeepTrainingRowsOutOfEvaluation() {}

  // Metrics of a model state on the local hold-out.
  virtual absl::StatusOr<v1::EvaluationMetrics> Evaluate(const task::ModelSpec& spec,
                                                         const tensor::NamedTensors& state) = 0;

  // The local-only baseline: a fresh model (task::InitialState with
  // training.seed) trained by this node alone for `epochs` epochs without a
  // proximal term. Returns the trained state.
  absl::StatusOr<tensor::NamedTensors> TrainFromScratch(const task::ModelSpec& spec,
                                                        v1::TrainingConfig training,
                                                        uint32_t epochs);
  // TrainFromScratch, evaluated on this node's hold-out.
  absl::StatusOr<v1::EvaluationMetrics> TrainLocalOnly(const task::ModelSpec& spec,
                                                       const v1::TrainingConfig& training,
                                                       uint32_t epochs);
};

// The learner of the node config's task kind, with its data loaded (errors
// name the file, line and field).
absl::StatusOr<std::unique_ptr<LocalLearner>> CreateLocalLearner(const v1::NodeConfig& config);

}  // namespace fedcustoms::node
