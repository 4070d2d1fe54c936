#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "fedcustoms/v1/config.pb.h"

namespace fedcustoms::analyst {

// `fedcustoms score` on a declarations file.
struct ScoreFileOptions {
  // A directory written by `fedcustoms pull`: a risk or an anomaly model.
  std::string model_dir;
  // Optional second directory with an anomaly model, scored alongside.
  std::string anomaly_model_dir;
  // The coordinator's Ed25519 public key (PEM) that signed the manifests.
  std::string public_key;
  std::string data_csv;
  std::string schema_json;
  std::string out_csv;
  // Share of declarations flagged for inspection, (0, 1]: the top of the
  // file by the first model's score (the inspection budget).
  double budget = 0.05;
  // When set, flag score >= threshold instead of the budget.
  std::optional<double> threshold;
  // Reasons per declaration (0 = none): the K features with the largest
  // absolute contributions, signed.
  int explain = 0;
  // A feature name: for each flagged declaration, the smallest change of it
  // that brings the score below the flagging threshold.
  std::string counterfactual;
  // When set (`--task risk|anomaly`), the model must be of this kind.
  std::optional<v1::TaskKind> expected_kind;
};

struct ScoreFileSummary {
  size_t rows = 0;
  size_t flagged = 0;
  // The lowest flagged score (or the given threshold).
  double threshold = 0;
  std::string model;          // e.g. "risk v5"
  std::string method;         // explanation method, when explain > 0
  double baseline_score = 0;  // risk explanations: P(mean declaration of the file)
  double max_completeness_gap = 0;
  size_t counterfactuals_found = 0;
};

// Verifies and loads the model(s) (LoadPulledModel), reads the CSV with the
// schema, scores every row and writes out_csv atomically (all or nothing):
//   declaration_id        the ID column's value, or the data row number (1 = first)
//   risk_probability      risk model: P(non-compliant)
//   anomaly_score         anomaly model (either directory)
//   flagged               1 when in the budget / at or above the threshold
//   reason_<k>_feature, reason_<k>_contribution   k = 1..explain, by |contribution|
//   explanation_baseline, completeness_gap        with explain (see
//                         DeclarationExplainer: contributions sum to score -
//                         baseline up to the gap; the baseline is the mean
//                         declaration of the file for a risk model, 0 for anomaly)
//   counterfactual_from, counterfactual_to, counterfactual_score,
//   counterfactual_note   with counterfactual, filled for flagged rows
// Errors name the file and the field; nothing is written on error.
absl::StatusOr<ScoreFileSummary> ScoreDeclarationsFile(const ScoreFileOptions& options);

}  // namespace fedcustoms::analyst
