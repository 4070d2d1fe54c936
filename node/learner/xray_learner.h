#pragma once

#include <ATen/Tensor.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "node/learner/local_learner.h"

namespace fedcustoms::node {

// The learner of the X-ray task: the XrayCnn trained on the node's images
// (a labels CSV or IDX files, common/xray/), evaluated on a hold-out drawn by
// hashing each item's source path, so an item stays on its side when others
// are added.
class XrayLearner : public LocalLearner {
 public:
  // Loads every image named by config.xray (errors name the file and line).
  static absl::StatusOr<std::unique_ptr<XrayLearner>> Create(const v1::NodeConfig& config);

  v1::TaskKind kind() const override { return v1::TASK_XRAY; }
  task::ModelSpec SpecOf(const v1::TaskAssignment& assignment) const override;
  std::string input_hash() const override { return input_hash_; }
  v1::DataSummary data_summary() const override;
  absl::StatusOr<Trained> Train(const task::ModelSpec& spec, tensor::NamedTensors global,
                                const v1::TrainingConfig& training,
                                const training::DpSgdOptions* dp) override;
  absl::StatusOr<v1::EvaluationMetrics> Evaluate(const task::ModelSpec& spec,
                                                 const tensor::NamedTensors& state) override;

 private:
  XrayLearner() = default;

  std::string input_hash_;
  // Stored images (int16 bit patterns of 16-bit pixels, see
  // training::Uint16Images) and int64 labels of each side of the split.
  at::Tensor train_images_, train_labels_;
  at::Tensor holdout_images_, holdout_labels_;
};

}  // namespace fedcustoms::node
