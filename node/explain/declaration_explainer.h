#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/data/declaration_table.h"
#include "node/analyst/declaration_scorer.h"
#include "node/analyst/pulled_model.h"
#include "node/explain/integrated_gradients.h"

namespace fedcustoms::node {

// Why a declaration got its score, feature by feature.
struct Explanation {
  // The model's score of the declaration.
  float score = 0;
  // Risk: P(baseline), the score the contributions start from. Anomaly: 0.
  float baseline_score = 0;
  // One signed contribution per feature, in feature_names() order; they sum to
  // score - baseline_score up to completeness_gap.
  std::vector<float> contributions;
  // |sum(contributions) - (score - baseline_score)|: the integral's
  // discretization error (risk); float rounding only (anomaly).
  float completeness_gap = 0;
};

// The smallest change of one feature that moves a declaration below a
// threshold (a "what would have to differ" answer for an officer).
struct Counterfactual {
  bool found = false;
  std::string feature;
  // The declaration's value and the changed one, as they would appear in the
  // CSV (numerics in their raw unit, before log1p).
  std::string from;
  std::string to;
  // Score with the changed value (when found).
  float score = 0;
  // Categorical: how many of the candidate values would move it below.
  size_t crossing_values = 0;
  // Why nothing was found, or how the answer was chosen.
  std::string note;
};

// Explains a pulled declaration model's scores.
//
// Risk models: integrated gradients (ComputeIntegratedGradients) of the risk
// probability in the model's encoded input space, from a baseline declaration
// (by default the federation's mean numerics, which standardize to 0, and each
// categorical column's mean embedding over its buckets; SetReference() makes
// it the mean encoding of reference rows instead, e.g. the file being
// scored). A categorical feature's contribution is the sum over its embedding
// dimensions, so it is attributed to its column, never to a hash bucket.
// Completeness: contributions sum to score - baseline score, with the
// measured gap reported.
// Anomaly models: the score is a sum of per-feature reconstruction errors
// (AnomalyAutoencoderImpl::FeatureErrors), which is itself an exact additive
// explanation: contributions sum to the score, baseline 0.
//
// Not thread-safe: one explainer per thread.
class DeclarationExplainer {
 public:
  // InvalidArgument for an X-ray model or weights that do not fit the spec.
  static absl::StatusOr<DeclarationExplainer> Create(const PulledModel& model);

  v1::TaskKind kind() const { return scorer_.kind(); }
  // "integrated_gradients" (risk) or "reconstruction_error" (anomaly).
  const char* method() const;
  // Numeric features then categorical ones, in the schema's order.
  const std::vector<std::string>& feature_names() const { return feature_names_; }
  DeclarationScorer& scorer() { return scorer_; }

  // Risk models: the baseline becomes the mean encoding of `rows` of `table`
  // (read with the model's schema). InvalidArgument when rows is empty or does
  // not fit the model. No effect on anomaly explanations.
  absl::Status SetReference(const data::DeclarationTable& table, std::span<const int64_t> rows);
  // P(baseline) of a risk model; 0 for anomaly.
  double baseline_score();

  // Explanations of `rows` of `table`, in that order. InvalidArgument when the
  // rows do not fit the model (as DeclarationScorer::Score).
  absl::StatusOr<std::vector<Explanation>> Explain(const data::DeclarationTable& table,
                                                   std::span<const int64_t> rows);

  // The smallest change of feature `feature` (a feature name) that brings
  // row `row` of `table` strictly below `threshold`.
  //   NUMERIC: candidates are the distinct values of that column in `table`
  //     (up to 256 quantiles); the nearest one (in the model's input space, so
  //     log1p features move by ratio) whose score is below is found, then the
  //     crossing point between the declaration's value and it is refined by a
  //     scan and bisection; `to` is that point in the CSV's unit.
  //   CATEGORICAL: candidates are `values` (value, count in the data), e.g.
  //     every value of that column in the file; of those that bring the score
  //     below, the most frequent is chosen (the most ordinary alternative),
  //     ties by value. Values hashing to the declaration's own bucket are not
  //     a change and are skipped.
  // found = false with a note when the score is already below, or no candidate
  // gets there. InvalidArgument for an unknown feature (listing the features)
  // or a row out of range.
  absl::StatusOr<Counterfactual> FindCounterfactual(
      const data::DeclarationTable& table, int64_t row, const std::string& feature,
      double threshold, const std::vector<std::pair<std::string, uint64_t>>& values = {});

 private:
  explicit DeclarationExplainer(DeclarationScorer scorer) : scorer_(std::move(scorer)) {}

  // Scores of copies of `row` with feature slot `slot` set to each value.
  std::vector<float> ScoreVariants(const data::DeclarationTable& table, int64_t row, bool numeric,
                                   size_t slot, std::span<const double> values);

  DeclarationScorer scorer_;
  v1::DeclarationSchema schema_;
  std::vector<std::string> feature_names_;
  torch::Tensor baseline_;  // [W] encoded (risk)
};

}  // namespace fedcustoms::node
