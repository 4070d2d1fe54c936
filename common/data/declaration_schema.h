#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fedcustoms/v1/schema.pb.h"

namespace fedcustoms::data {

// Largest hash_buckets accepted (the risk model's embedding limit).
inline constexpr uint32_t kMaxHashBuckets = 1u << 24;

// Reads a declaration schema (protobuf JSON of v1::DeclarationSchema, e.g.
// declarations.schema.json) and validates it with ValidateDeclarationSchema().
// Unknown JSON fields are refused by name (see config::ParseProtoJson). Every
// error starts with `path`; NotFound when the file cannot be opened, else
// InvalidArgument.
absl::StatusOr<v1::DeclarationSchema> LoadDeclarationSchema(const std::string& path);

// As LoadDeclarationSchema() on JSON text; `source_name` starts every error.
absl::StatusOr<v1::DeclarationSchema> ParseDeclarationSchema(std::string_view json,
                                                             std::string_view source_name);

// OK when the schema can drive ReadDeclarationsCsv():
//   - at least one column; every name non-empty, without control characters,
//     and unique; every role set;
//   - at most one ID, one DATE, one LABEL and one SELECTION column;
//   - at least one NUMERIC or CATEGORICAL column (a feature);
//   - CATEGORICAL: 2 <= hash_buckets <= kMaxHashBuckets;
//   - log1p only on NUMERIC; hash_buckets and prefix_length only on CATEGORICAL;
//   - delimiter empty (",") or one ASCII character other than '"', CR, LF.
// InvalidArgument otherwise, naming `source_name`, the column index and name,
// and the field, e.g.
//   "s.json: columns[3] (\"origin\"): hash_buckets must be >= 2 for a CATEGORICAL column, found 1".
absl::Status ValidateDeclarationSchema(const v1::DeclarationSchema& schema,
                                       std::string_view source_name);

// The CSV delimiter of a (validated) schema: ',' when unset.
char SchemaDelimiter(const v1::DeclarationSchema& schema);

// Lower-case hex SHA-256 of a canonical text of the schema's feature part:
// the NUMERIC columns (name, log1p) in schema order, the CATEGORICAL columns
// (name, hash_buckets, prefix_length) in schema order, and the LABEL column's
// name. Everything else — ID, DATE, SELECTION and IGNORED columns, where the
// feature columns sit among them, the delimiter, the CSV's own column order —
// does not change it. Two nodes with equal hashes build identical model inputs.
// Canonical text (names length-prefixed so no name can forge a line):
//   fedcustoms-feature-schema-v1\n
//   numeric <len>:<name> log1p=<0|1>\n                       per NUMERIC column
//   categorical <len>:<name> buckets=<n> prefix=<p>\n        per CATEGORICAL column
//   label <len>:<name>\n   or   label -\n                    when there is none
std::string FeatureSchemaHash(const v1::DeclarationSchema& schema);

}  // namespace fedcustoms::data
