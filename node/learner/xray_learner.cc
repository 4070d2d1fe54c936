#include "node/learner/xray_learner.h"

#include <torch/torch.h>

#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/crypto/sha256.h"
#include "common/models/xray_cnn.h"
#include "common/task/model_update.h"
#include "common/training/xray_trainer.h"
#include "common/xray/idx_reader.h"
#include "common/xray/xray_labels_csv.h"
#include "common/xray/xray_model_config.h"

namespace fedcustoms::node {
namespace {

// The model config the node's data is read with: its declared input, the
// rest defaults (only the input fields matter for reading and hashing).
v1::XrayModelConfig InputConfig(const v1::XrayDataConfig& data) {
  v1::XrayModelConfig c;
  c.set_image_size(data.image_size());
  c.set_input_channels(data.input_channels());
  *c.mutable_classes() = data.classes();
  return xray::WithXrayDefaults(c);
}

// True when the item goes to the hold-out: the first 8 bytes of SHA-256 of
// its source, as a fraction of 2^64, below `fraction`.
bool InHoldout(const std::string& source, double fraction) {
  const std::string digest = crypto::Sha256Hex(source).substr(0, 16);
  const double u = static_cast<double>(std::stoull(digest, nullptr, 16)) / 18446744073709551616.0;
  return u < fraction;
}

absl::StatusOr<models::XrayCnn> BuildModel(const task::ModelSpec& spec) {
  if (absl::Status s = models::CheckXrayCnnConfig(spec.xray); !s.ok()) return s;
  return models::XrayCnn(spec.xray, 1);
}

}  // namespace

absl::StatusOr<std::unique_ptr<XrayLearner>> XrayLearner::Create(const v1::NodeConfig& config) {
  const v1::XrayModelConfig input = InputConfig(config.xray());
  if (absl::Status s = xray::CheckXrayModelConfig(input, "xray"); !s.ok()) return s;
  absl::StatusOr<xray::XrayDataset> data =
      config.xray().labels_csv().empty()
          ? xray::LoadIdxDataset(config.xray().idx_images(), config.xray().idx_labels(), input)
          : xray::LoadXrayLabelsCsv(config.xray().labels_csv(), input);
  if (!data.ok()) return data.status();
  if (!data->labeled) {
    return absl::InvalidArgumentError(
        absl::StrCat(config.xray().labels_csv(),
                     ": has no label column (images to score); a node trains on labelled images: "
                     "header path,label[,x_min,y_min,x_max,y_max]"));
  }
  std::vector<int64_t> train, holdout;
  for (size_t i = 0; i < data->size(); ++i) {
    (InHoldout(data->sources[i], config.holdout_fraction()) ? holdout : train)
        .push_back(static_cast<int64_t>(i));
  }
  const std::string what =
      config.xray().labels_csv().empty() ? config.xray().idx_images() : config.xray().labels_csv();
  if (train.size() < 2 || holdout.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", data->size(), " images give ", train.size(), " for training and ",
                     holdout.size(), " for the hold-out; a node needs at least 2 and 1"));
  }
  std::unique_ptr<XrayLearner> learner(new XrayLearner());
  task::ModelSpec spec;
  spec.kind = v1::TASK_XRAY;
  spec.xray = input;
  learner->input_hash_ = task::InputHash(spec);
  const at::Tensor all = training::Uint16Images(data->pixels, static_cast<int64_t>(data->size()),
                                                data->channels, data->height, data->width);
  const at::Tensor labels =
      torch::tensor(std::vector<int64_t>(data->labels.begin(), data->labels.end()), torch::kInt64);
  const at::Tensor train_index = torch::tensor(train, torch::kInt64);
  const at::Tensor holdout_index = torch::tensor(holdout, torch::kInt64);
  learner->train_images_ = all.index_select(0, train_index);
  learner->train_labels_ = labels.index_select(0, train_index);
  learner->holdout_images_ = all.index_select(0, holdout_index);
  learner->holdout_labels_ = labels.index_select(0, holdout_index);
  return learner;
}

task::ModelSpec XrayLearner::SpecOf(const v1::TaskAssignment& assignment) const {
  return task::SpecOf(assignment, v1::DeclarationSchema());
}

v1::DataSummary XrayLearner::data_summary() const {
  v1::DataSummary summary;
  summary.set_train_rows(static_cast<uint64_t>(train_labels_.size(0)));
  summary.set_holdout_rows(static_cast<uint64_t>(holdout_labels_.size(0)));
  return summary;
}

absl::StatusOr<LocalLearner::Trained> XrayLearner::Train(const task::ModelSpec& spec,
                                                         tensor::NamedTensors global,
                                                         const v1::TrainingConfig& training,
                                                         const training::DpSgdOptions* dp) {
  auto model = BuildModel(spec);
  if (!model.ok()) return model.status();
  if (absl::Status s = tensor::LoadState(**model, global); !s.ok()) return s;
  auto result = training::TrainXrayModel(*model, train_images_, train_labels_, training,
                                         /*augment=*/!spec.xray.no_augmentation(), dp);
  if (!result.ok()) return result.status();
  Trained out;
  out.samples = static_cast<uint64_t>(train_labels_.size(0));
  out.mean_loss = result->mean_loss;
  out.dp_steps = dp ? static_cast<uint64_t>(result->steps) : 0;
  out.dp_sampling_rate = result->sampling_rate;
  out.dp_excluded = result->dp_excluded;
  out.update = task::UpdateFrom(tensor::StateOf(**model), global);
  return out;
}

absl::StatusOr<v1::EvaluationMetrics> XrayLearner::Evaluate(const task::ModelSpec& spec,
                                                            const tensor::NamedTensors& state) {
  auto model = BuildModel(spec);
  if (!model.ok()) return model.status();
  if (absl::Status s = tensor::LoadState(**model, state); !s.ok()) return s;
  return training::EvaluateXray(*model, holdout_images_, holdout_labels_);
}

}  // namespace fedcustoms::node
