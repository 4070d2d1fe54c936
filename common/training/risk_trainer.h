#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/data/declaration_table.h"
#include "common/models/risk_mlp.h"
#include "common/privacy/noisy_column_moments.h"
#include "fedcustoms/v1/config.pb.h"

namespace fedcustoms::training {

// `config` with every zero value replaced by its documented default:
// local_epochs 1, batch_size 256, learning_rate 1e-3, optimizer "adam",
// max_positive_weight 30, seed 1 (positive_weight 0 keeps its meaning "derive
// from the local positive rate"); weight_decay 0 stays 0 (none).
v1::TrainingConfig WithDefaults(const v1::TrainingConfig& config);

// OK when the config (after WithDefaults) is usable: local_epochs 1..1000,
// batch_size 1..65536, learning_rate in (0, 10], optimizer "adam" or "sgd",
// positive_weight 0 or in (0, 1e6], max_positive_weight in [1, 1e6],
// weight_decay in [0, 1]. The error
// names the field.
absl::Status CheckTrainingConfig(const v1::TrainingConfig& config);

// What every declaration trainer checks first: `config` with its defaults
// (WithDefaults), usable (CheckTrainingConfig); `rows` fitting a model of
// `numeric_width` and `buckets` (CheckRows, with labels when `need_labels`);
// and at least 2 of them (BatchNorm cannot train on one). Returns the config
// with defaults.
absl::StatusOr<v1::TrainingConfig> CheckDeclarationTraining(
    const v1::TrainingConfig& config, const data::DeclarationTable& table, int64_t numeric_width,
    const std::vector<uint32_t>& buckets, std::span<const int64_t> rows, bool need_labels);

// The weight of the positive class in the loss: config.positive_weight() when
// set, else sqrt(negatives / positives) capped at max_positive_weight; 1 when
// either class is absent (the weight is then meaningless or would zero the
// loss).
double PositiveWeight(int64_t positives, int64_t negatives, const v1::TrainingConfig& config);

struct TrainResult {
  // Mean per-sample (weighted BCE) loss over the last epoch.
  double mean_loss = 0;
  // Distinct training rows: the weight of this update in FedAvg.
  int64_t samples = 0;
  // Rows processed over all epochs (samples x epochs).
  int64_t samples_seen = 0;
  // Positive-class weight used in the loss.
  double positive_weight = 1;
  // Optimizer steps taken.
  int64_t steps = 0;
  // DP-SGD only: the Poisson sampling rate q of every step (0 otherwise).
  double sampling_rate = 0;
  // DP-SGD only: drawn examples left out because their loss or gradient was
  // not finite.
  int64_t dp_excluded = 0;
};

// DP-SGD's settings for one local training (task privacy mode DP_SGD).
struct DpSgdOptions {
  // C: the L2 bound of each example's gradient.
  double clip_norm = 1;
  // σ: the noise's standard deviation is σ·C.
  double noise_multiplier = 1;
  // Keys the batch sampling and the noise (privacy::SecureGaussian). Neither
  // may be predictable by anyone who sees the update (the guarantee assumes
  // both are secret): a node draws 32 bytes from the OS; tests fix it.
  std::string secret;
  // σ of the standardization statistics (privacy::NoisyColumnMoments) and
  // the range their values are clipped to. 0: the numerics are not
  // standardized at all.
  double stats_noise_multiplier = 0;
  double numeric_low = 0;
  double numeric_high = 30;
};

// The standardization statistics DP-SGD training uses and sends back: the
// noisy moments of `numeric` (privacy::NoisyColumnMoments, noise keyed by
// dp.secret apart from the gradients' noise), or nullopt when dp asks for
// none or there is no numeric column.
std::optional<privacy::ColumnMoments> PrivateColumnMoments(const at::Tensor& numeric,
                                                           const DpSgdOptions& dp);

// Trains `model` in place on `rows` of `table` (which must have labels).
//
// Each epoch shuffles the rows with a generator seeded once from config.seed;
// mini-batches of batch_size are gathered with index_select from tensors of
// the training rows built once per call. A batch_size of 1 is treated as 2
// and a final single-row batch is merged into the previous one. Loss: BCE-with-logits with the
// PositiveWeight() above; optimizer Adam or plain SGD, fresh for each call (no
// optimizer state crosses rounds). Dropout is reseeded from config.seed.
// Standardization: training uses the model's statistics (a fresh model first
// gets the local ones); afterwards the model holds the local column means and
// variances of `rows`, so averaging states yields the federation's statistics.
// Everything is deterministic for a given model state, table, rows and
// config on one thread count; the global torch RNG is not used, and the
// number of torch threads is left to the caller.
//
// Errors, with the model unchanged: InvalidArgument for a bad config, a table
// that does not fit the model, an out-of-range row, a non-finite feature, a
// label other than 0/1 (messages name row and feature), fewer than 2 rows.
// Error with the model's weights unspecified (reload the global model):
// Internal "training diverged: loss is nan at epoch 1, step 3", or a c10::Error
// caught from LibTorch. The model is left in eval mode.
//
// With `dp`, training is DP-SGD (RunDpSgdSteps: Poisson batches, per-example
// clipping, Gaussian noise) and nothing else of the data reaches the model:
// the positive-class weight is config.positive_weight or 1 (never derived from
// the local positive rate), and the standardization statistics are neither
// set from the local data nor sent back (the model keeps those it came with).
absl::StatusOr<TrainResult> TrainRiskModel(models::RiskMlp& model,
                                           const data::DeclarationTable& table,
                                           std::span<const int64_t> rows,
                                           const v1::TrainingConfig& config,
                                           const DpSgdOptions* dp = nullptr);

}  // namespace fedcustoms::training
