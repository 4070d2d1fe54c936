#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "analyst/report/group_report.h"

namespace fedcustoms::analyst {

// `fedcustoms report`: the bias and random-control report of a pulled model
// on the analyst's declarations with their control results.
struct DeclarationsReportOptions {
  // A directory written by `fedcustoms pull` (a risk model; an anomaly model
  // works too, its score ranking the declarations).
  std::string model_dir;
  // The coordinator's Ed25519 public key (PEM) that signed the manifest.
  std::string public_key;
  std::string data_csv;
  std::string schema_json;
  // CSV columns to break the figures down by (any column of the file).
  std::vector<std::string> by;
  // Writes <out_prefix>.json and <out_prefix>.html (each atomically).
  std::string out_prefix = "report";
  // Budget, random selection value and small-group limits.
  report::ReportOptions report;
};

struct DeclarationsReportSummary {
  std::string model;  // e.g. "risk v5"
  std::string json_path;
  std::string html_path;
  report::GroupReport report;
};

// Loads and verifies the model, reads the CSV with the schema (its LABEL
// column is required; the SELECTION column, when the schema has one, drives
// the random-control comparison), scores every row and builds the report
// (report::BuildGroupReport). Errors name the file, the column or the option;
// nothing is written on error.
absl::StatusOr<DeclarationsReportSummary> ReportDeclarationsFile(
    const DeclarationsReportOptions& options);

}  // namespace fedcustoms::analyst
