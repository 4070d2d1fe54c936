#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace fedcustoms::data {

// Declarations encoded for the models: numeric features after their fixed
// transform (log1p where the schema says so; standardization is part of the
// model), categorical features as hash-bucket ids, labels and dates. Holds no
// raw strings except the declaration ids (needed to report scores back to the
// administration's own tools; never sent anywhere).
struct DeclarationTable {
  size_t rows = 0;
  // Feature names in model order (from the schema).
  std::vector<std::string> numeric_names;
  std::vector<std::string> categorical_names;
  // Number of hash buckets of each categorical feature.
  std::vector<uint32_t> buckets;
  // rows x numeric_names.size(), row-major.
  std::vector<float> numeric;
  // rows x categorical_names.size(), row-major, each in [0, buckets[j]).
  std::vector<int64_t> categorical;
  // One 0/1 label per row; empty when the schema has no LABEL column.
  std::vector<float> labels;
  // Days since 1970-01-01 per row; empty when the schema has no DATE column.
  std::vector<int32_t> days;
  // Declaration id per row; empty when the schema has no ID column.
  std::vector<std::string> ids;
  // Values of the columns asked for in ReadOptions::raw_columns, as written
  // (trimmed), one per row; empty otherwise. Raw data: never sent anywhere.
  struct RawColumn {
    std::string name;
    std::vector<std::string> values;
  };
  std::vector<RawColumn> raw_columns;
  // Rows dropped by the SKIP bad-row policy.
  size_t skipped_rows = 0;

  size_t numeric_width() const { return numeric_names.size(); }
  size_t categorical_width() const { return categorical_names.size(); }
  bool has_labels() const { return !labels.empty(); }
  // The raw column named `name`, or nullptr when it was not kept.
  const RawColumn* raw_column(const std::string& name) const {
    for (const RawColumn& c : raw_columns) {
      if (c.name == name) return &c;
    }
    return nullptr;
  }
};

// Row indices of a deterministic train / hold-out split.
struct Split {
  std::vector<int64_t> train;
  std::vector<int64_t> holdout;
  // Rows kept out of training to choose between models (never the hold-out).
  std::vector<int64_t> validation;
};

}  // namespace fedcustoms::data
