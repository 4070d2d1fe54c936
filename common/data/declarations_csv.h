#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/data/declaration_table.h"
#include "fedcustoms/v1/config.pb.h"
#include "fedcustoms/v1/schema.pb.h"

namespace fedcustoms::data {

// Longest CSV record (header or row, quotes included) accepted.
inline constexpr size_t kMaxCsvRecordBytes = 1 << 20;

// The hash bucket of a categorical value, identical on every node (this rule
// is part of the federation's input space; changing it changes every model):
//   - the value is the field with surrounding spaces and tabs removed;
//   - empty value -> bucket 0, reserved for "missing";
//   - else keep the first `prefix_length` Unicode code points (all when 0 or
//     when the value is shorter), and
//       h = FNV-1a-64(column_name bytes, 0x1F, kept value bytes)
//       bucket = 1 + h mod (buckets - 1)          so buckets 1 .. buckets-1.
// `value` must already be trimmed. Requires buckets >= 2 (the schema
// guarantees it).
uint32_t CategoricalBucket(std::string_view column_name, std::string_view value,
                           uint32_t prefix_length, uint32_t buckets);

// Reads the declarations CSV at `csv_path` and encodes it with `schema`
// (which must have passed ValidateDeclarationSchema()).
//
// Format: RFC 4180 with the schema's delimiter. The first record is the
// header (a UTF-8 BOM is dropped); columns are matched by exact name, in any
// order; columns the schema does not read (SELECTION, IGNORED, unknown) are
// skipped. Quoted fields may hold the delimiter, doubled quotes and line
// breaks; LF, CRLF and CR end records; blank lines are ignored. The file is
// streamed: memory is the encoded table plus one record of at most
// kMaxCsvRecordBytes.
//
// Values (surrounding spaces and tabs trimmed, UTF-8 required):
//   NUMERIC      a decimal number (std::from_chars), finite in float; empty is
//                an error; log1p(max(x, 0)) when the schema says log1p.
//   CATEGORICAL  CategoricalBucket() above; empty is bucket 0.
//   LABEL        exactly "0" or "1".
//   DATE         YYYY-MM-DD, a real calendar day in years 1000..9999 -> days
//                since 1970-01-01.
//   ID           kept as written.
//
// Errors are InvalidArgument (NotFound when the file cannot be opened,
// DataLoss on a read error) and read "<csv_path>:<line>: <what>", with
// `column "<name>": ` for a value, e.g.
//   "d.csv:17: column \"declared_value\": \"12,5\" is not a number"
//   "d.csv:9: expected 13 fields, found 12"
//   "d.csv:1: missing column \"origin\" (NUMERIC in the schema)"
// <line> is the physical line where the record starts. With policy SKIP a bad
// data row is dropped, counted in skipped_rows and logged (the first ten in
// full); header problems, an unterminated quote, an empty file, a header
// without rows, and a file where every row is bad still fail. FAIL and
// BAD_ROW_POLICY_UNSPECIFIED stop at the first bad row.
absl::StatusOr<DeclarationTable> ReadDeclarationsCsv(const std::string& csv_path,
                                                     const v1::DeclarationSchema& schema,
                                                     v1::BadRowPolicy policy);

// Options of the ReadDeclarationsCsv() overload below.
struct ReadOptions {
  v1::BadRowPolicy policy = v1::FAIL;
  // Header names of columns whose values (trimmed, UTF-8 checked) are kept as
  // written in DeclarationTable::raw_columns, in this order: any column of the
  // file, whatever its role (e.g. the SELECTION column, or origin_country for
  // a report by group). A name missing from the header is an error naming it.
  // These are raw data values: they stay at the administration.
  std::vector<std::string> raw_columns;
  // When true a raw column missing from the header is left out of
  // DeclarationTable::raw_columns instead of being an error.
  bool raw_columns_optional = false;
};

// As above, and keeps the raw values of options.raw_columns.
absl::StatusOr<DeclarationTable> ReadDeclarationsCsv(const std::string& csv_path,
                                                     const v1::DeclarationSchema& schema,
                                                     const ReadOptions& options);

// Name of the schema's SELECTION column (how each declaration was chosen for
// control), or "" when it has none.
std::string SelectionColumnName(const v1::DeclarationSchema& schema);

// A deterministic train / hold-out split of `table`'s rows. With dates the
// latest declarations are held out (rows sorted by (day, row index); the last
// ones go to hold-out, so on a tied day later rows are held out first);
// without dates, the last rows by index. Hold-out size is
// round(holdout_fraction x rows), clamped to [1, rows - 1] when rows >= 2 so
// both parts are non-empty; with one row it is train; NaN counts as 0.
// Then, from the rows left for training, the latest
// round(validation_fraction x those rows) by the same order form the
// validation split, as long as at least 2 training rows remain (the
// trainers need 2); 0 (default) or NaN keeps none. Every index list is
// ascending, and the three are disjoint.
Split DeterministicSplit(const DeclarationTable& table, double holdout_fraction,
                         double validation_fraction = 0);

}  // namespace fedcustoms::data
