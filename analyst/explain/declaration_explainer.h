#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "analyst/explain/integrated_gradients.h"
#include "analyst/model/declaration_scorer.h"
#include "analyst/model/pulled_model.h"
#include "common/data/declaration_table.h"

namespace fedcustoms::analyst {

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
  // discretization error (risk); 0 for anomaly, whose score is this sum.
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

// What a counterfactual may try for one feature (DeclarationExplainer::
// GatherCandidates, or built by the caller, e.g. a list of origin countries).
struct CounterfactualCandidates {
  std::string feature;
  bool numeric = false;
  // NUMERIC: values in the model's input space (after log1p).
  std::vector<double> numeric_values;
  // CATEGORICAL: (value as written, how often it occurs).
  std::vector<std::pair<std::string, uint64_t>> categorical_values;
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
// Risk models of kind BOOSTED_TREES: tree-path contributions (Saabas): at
// each split on the declaration's path through each tree, the change of the
// node's value goes to the split's feature. They add up to the log-odds
// exactly; each is scaled by (score - baseline) / (logit - bias), so they
// add up to score - baseline (baseline: the base score plus every root's
// value, what every declaration starts from), with the float rounding as
// the gap. SetReference has no effect on them.
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
  // "integrated_gradients" (risk), "tree_path" (boosted trees) or
  // "reconstruction_error" (anomaly).
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

  // The values of `feature` a counterfactual may try, gathered once per file:
  //   NUMERIC: the distinct values of that column in `table` (up to 256
  //     quantiles), in the model's input space;
  //   CATEGORICAL: every raw value of that column in `table` with its count
  //     (the table must have been read with the column in
  //     data::ReadOptions::raw_columns).
  // InvalidArgument for an unknown feature (listing the model's features) or
  // a table without the column or its raw values.
  absl::StatusOr<CounterfactualCandidates> GatherCandidates(const data::DeclarationTable& table,
                                                            const std::string& feature) const;

  // The smallest change of candidates.feature that brings row `row` of
  // `table` strictly below `threshold`.
  //   NUMERIC: the candidate nearest the declaration's value (in the model's
  //     input space, so log1p features move by ratio) whose score is below;
  //     then the crossing between the two by a scan and bisection; `to` is
  //     the shortest decimal, rounded away from the declared value, that is
  //     below once read back as the CSV reader reads it, and `score` is its
  //     score.
  //   CATEGORICAL: values in one hash bucket are one candidate (the model
  //     cannot tell them apart); of the buckets that bring the score below,
  //     the one with the most declarations wins, shown as its most frequent
  //     value (ties by value). The declaration's own bucket is not a change.
  // found = false with a note when the score is already below, or no
  // candidate gets there. InvalidArgument for an unknown feature, candidates
  // of the other kind, a row out of range or a table without the column.
  absl::StatusOr<Counterfactual> FindCounterfactual(const data::DeclarationTable& table,
                                                    int64_t row, double threshold,
                                                    const CounterfactualCandidates& candidates);

 private:
  explicit DeclarationExplainer(DeclarationScorer scorer) : scorer_(std::move(scorer)) {}

  absl::StatusOr<const v1::ColumnSpec*> FeatureColumn(const std::string& feature) const;
  const trees::TreeEnsemble* trees() const { return scorer_.trees_model(); }
  // Explain() for boosted trees.
  absl::StatusOr<std::vector<Explanation>> ExplainTrees(const data::DeclarationTable& table,
                                                        std::span<const int64_t> rows);

  // Scores of copies of `row` with feature slot `slot` set to each value.
  std::vector<float> ScoreVariants(const data::DeclarationTable& table, int64_t row, bool numeric,
                                   size_t slot, std::span<const double> values);

  DeclarationScorer scorer_;
  v1::DeclarationSchema schema_;
  std::vector<std::string> feature_names_;
  torch::Tensor baseline_;  // [W] encoded (risk)
};

}  // namespace fedcustoms::analyst
