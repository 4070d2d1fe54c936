#pragma once
// The small declaration schema of the CSV reader's tests and its fuzz target:
// one column of every role, two numeric and two categorical features.

namespace fedcustoms::testing_support {

inline constexpr char kSmallSchemaJson[] = R"({
  "columns": [
    {"name": "id", "role": "ID"},
    {"name": "date", "role": "DATE"},
    {"name": "value", "role": "NUMERIC", "log1p": true},
    {"name": "mass", "role": "NUMERIC"},
    {"name": "origin", "role": "CATEGORICAL", "hash_buckets": 16},
    {"name": "hs", "role": "CATEGORICAL", "hash_buckets": 100, "prefix_length": 4},
    {"name": "sel", "role": "SELECTION"},
    {"name": "label", "role": "LABEL"}
  ]
})";

// Its CSV header line.
inline constexpr char kSmallSchemaHeader[] = "id,date,value,mass,origin,hs,sel,label\n";

}  // namespace fedcustoms::testing_support
