#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "analyst/model/pulled_model.h"
#include "common/data/declaration_table.h"
#include "common/models/anomaly_autoencoder.h"
#include "common/models/risk_mlp.h"
#include "common/trees/tree_ensemble.h"

namespace fedcustoms::analyst {

// Scores declarations with a pulled declaration model: the probability of
// non-compliance (risk) or the anomaly score (anomaly; higher = more
// unusual). Not thread-safe: one scorer per thread.
class DeclarationScorer {
 public:
  // InvalidArgument for an X-ray model or weights that do not fit the spec.
  static absl::StatusOr<DeclarationScorer> Create(const PulledModel& model);

  v1::TaskKind kind() const { return kind_; }
  // The model itself, for explanations (nullptr for the other kind). Owned by
  // the scorer; valid while it lives.
  models::RiskMlp* risk_model() { return risk_ ? &*risk_ : nullptr; }
  models::AnomalyAutoencoder* anomaly_model() { return anomaly_ ? &*anomaly_ : nullptr; }
  // A risk model of kind BOOSTED_TREES (then risk_model() is nullptr).
  const trees::TreeEnsemble* trees_model() const { return trees_ ? &*trees_ : nullptr; }

  // Scores of `rows` of `table`, in that order. The table must have been read
  // with the model's schema; InvalidArgument when its rows do not fit the
  // model (e.g. a categorical index beyond the model's buckets).
  absl::StatusOr<std::vector<float>> Score(const data::DeclarationTable& table,
                                           std::span<const int64_t> rows);

 private:
  DeclarationScorer() = default;

  v1::TaskKind kind_ = v1::TASK_RISK;
  std::optional<models::RiskMlp> risk_;
  std::optional<models::AnomalyAutoencoder> anomaly_;
  std::optional<trees::TreeEnsemble> trees_;
  // The schema's widths (the rows' checks of a tree model).
  int64_t numeric_width_ = 0;
  std::vector<uint32_t> buckets_;
};

}  // namespace fedcustoms::analyst
