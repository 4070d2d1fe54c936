#include "common/data/declarations_csv.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <numeric>
#include <optional>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/data/declaration_schema.h"

namespace fedcustoms::data {
namespace {

constexpr size_t kReadBufferBytes = 1 << 18;
// Bad rows logged in full under the SKIP policy; the rest are only counted.
constexpr size_t kLoggedSkips = 10;

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

// Splits a byte stream into RFC 4180 records. Not thread-safe.
class CsvRecordReader {
 public:
  enum class Result {
    kRecord,  // `fields` holds the next record
    kEof,     // no more records
    kBadRow,  // a malformed record was consumed; the next call continues after it
    kFatal,   // cannot continue (read error, unterminated quote)
  };

  CsvRecordReader(std::FILE* file, char delimiter)
      : file_(file), delimiter_(delimiter), buffer_(kReadBufferBytes) {}

  // Reads the next non-blank record into `fields` (resized to its field
  // count). On kBadRow / kFatal, `error` says why (without the file name).
  Result Next(std::vector<std::string>* fields, std::string* error) {
    while (true) {
      Result r = ReadRecord(fields, error);
      if (r != Result::kRecord) return r;
      if (!blank_) return r;
    }
  }

  // Physical line (1-based) where the last record returned started.
  size_t record_line() const { return record_line_; }

  // True after kFatal because the file could not be read.
  bool read_failed() const { return std::ferror(file_) != 0; }

 private:
  static constexpr int kEnd = -1;

  int Get() {
    if (pos_ == size_) {
      if (std::feof(file_) || std::ferror(file_)) return kEnd;
      size_ = std::fread(buffer_.data(), 1, buffer_.size(), file_);
      pos_ = 0;
      if (size_ == 0) return kEnd;
    }
    return static_cast<unsigned char>(buffer_[pos_++]);
  }
  int Peek() {
    int c = Get();
    if (c != kEnd) --pos_;
    return c;
  }
  // Consumes a line break whose first byte `c` was just read.
  void EndLine(int c) {
    if (c == '\r' && Peek() == '\n') Get();
    ++line_;
  }

  Result ReadRecord(std::vector<std::string>* fields, std::string* error) {
    record_line_ = line_;
    size_t count = 0;
    size_t bytes = 0;
    bool too_long = false;
    std::string problem;
    blank_ = false;
    auto next_field = [&]() -> std::string* {
      // Past the cap the record is refused anyway, so its later fields all
      // share the last one (count >= 1 here: the cap is only crossed after a
      // field began). A long line of delimiters must not build one string per
      // byte (a 2 GiB line of commas took ~64 GiB); the scan still runs to
      // the record's end.
      if (too_long) return &(*fields)[count - 1];
      if (count == fields->size()) fields->emplace_back();
      std::string* f = &(*fields)[count++];
      f->clear();
      return f;
    };
    auto append = [&](std::string* f, int c) {
      if (++bytes > kMaxCsvRecordBytes) too_long = true;
      if (!too_long) f->push_back(static_cast<char>(c));
    };

    int c = Get();
    if (c == kEnd) {
      fields->clear();
      if (std::ferror(file_)) {
        *error = absl::StrCat("read error: ", std::strerror(errno));
        return Result::kFatal;
      }
      return Result::kEof;
    }
    bool quoted_any = false;
    while (true) {
      std::string* field = next_field();
      if (c == '"') {
        quoted_any = true;
        while (true) {
          c = Get();
          if (c == kEnd) {
            *error = "unterminated quoted field (no closing quote before the end of the file)";
            return Result::kFatal;
          }
          if (c == '"') {
            if (Peek() == '"') {
              Get();
              append(field, '"');
              continue;
            }
            break;
          }
          if (c == '\n' || (c == '\r' && Peek() != '\n')) ++line_;
          append(field, c);
        }
        c = Get();
        if (c != delimiter_ && c != '\n' && c != '\r' && c != kEnd && problem.empty()) {
          problem = absl::StrCat("field ", count, ": unexpected character after a closing quote");
        }
        // Resynchronize: the rest of the field is kept as plain text.
        while (c != delimiter_ && c != '\n' && c != '\r' && c != kEnd) {
          append(field, c);
          c = Get();
        }
      } else {
        while (c != delimiter_ && c != '\n' && c != '\r' && c != kEnd) {
          append(field, c);
          c = Get();
        }
      }
      if (c == delimiter_) {
        if (++bytes > kMaxCsvRecordBytes) too_long = true;
        c = Get();
        continue;
      }
      if (c != kEnd) EndLine(c);
      break;
    }
    fields->resize(count);
    if (std::ferror(file_)) {
      *error = absl::StrCat("read error: ", std::strerror(errno));
      return Result::kFatal;
    }
    if (too_long) {
      *error = absl::StrCat("record longer than ", kMaxCsvRecordBytes, " bytes");
      return Result::kBadRow;
    }
    if (!problem.empty()) {
      *error = std::move(problem);
      return Result::kBadRow;
    }
    blank_ = count == 1 && !quoted_any && (*fields)[0].empty();
    return Result::kRecord;
  }

  std::FILE* file_;
  const char delimiter_;
  std::vector<char> buffer_;
  size_t pos_ = 0;
  size_t size_ = 0;
  size_t line_ = 1;
  size_t record_line_ = 1;
  bool blank_ = false;
};

// Byte offset of the first invalid UTF-8 sequence, or nullopt.
std::optional<size_t> FindInvalidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t min;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
      len = 2, min = 0x80, cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3, min = 0x800, cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4, min = 0x10000, cp = c & 0x07;
    } else {
      return i;
    }
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) return i;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += len;
  }
  return std::nullopt;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A value quoted for an error message: at most 40 bytes, escaped.
std::string Shown(std::string_view v) {
  constexpr size_t kMax = 40;
  const absl::string_view shown(v.data(), std::min(v.size(), kMax));
  return absl::StrCat("\"", absl::CHexEscape(shown), v.size() > kMax ? "\"..." : "\"");
}

// Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
// (H. Hinnant's days_from_civil).
int32_t DaysFromCivil(int y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int32_t>(doe) - 719468;
}

std::optional<int32_t> ParseDate(std::string_view s) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return std::nullopt;
  auto number = [&](size_t from, size_t len) -> int {
    int v = 0;
    for (size_t i = from; i < from + len; ++i) {
      if (s[i] < '0' || s[i] > '9') return -1;
      v = v * 10 + (s[i] - '0');
    }
    return v;
  };
  const int y = number(0, 4), m = number(5, 2), d = number(8, 2);
  if (y < 1000 || m < 1 || m > 12 || d < 1) return std::nullopt;
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  const int month_days = kDays[m - 1] + (m == 2 && leap ? 1 : 0);
  if (d > month_days) return std::nullopt;
  return DaysFromCivil(y, static_cast<unsigned>(m), static_cast<unsigned>(d));
}

// What the reader does with one schema column.
struct ColumnPlan {
  const v1::ColumnSpec* spec;
  size_t field;  // index in the CSV record
  size_t slot;   // index among the numeric or categorical features
};

// One row being encoded, committed to the table only when every value parsed.
struct RowBuffer {
  std::vector<float> numeric;
  std::vector<int64_t> categorical;
  float label = 0;
  int32_t day = 0;
  std::string id;
  std::vector<std::string> raw;  // one per ReadOptions::raw_columns
};

class DeclarationsCsvReader {
 public:
  DeclarationsCsvReader(const std::string& path, const v1::DeclarationSchema& schema,
                        const ReadOptions& options)
      : path_(path),
        schema_(schema),
        skip_bad_rows_(options.policy == v1::SKIP),
        raw_names_(options.raw_columns),
        raw_optional_(options.raw_columns_optional) {}

  absl::StatusOr<DeclarationTable> Read() {
    FilePtr file(std::fopen(path_.c_str(), "rb"));
    if (file == nullptr) {
      return absl::NotFoundError(absl::StrCat(path_, ": cannot open: ", std::strerror(errno)));
    }
    CsvRecordReader reader(file.get(), SchemaDelimiter(schema_));
    std::vector<std::string> fields;
    std::string error;

    switch (reader.Next(&fields, &error)) {
      case CsvRecordReader::Result::kEof:
        return Fail(absl::StrCat(path_, ": empty file; expected a header line naming the columns"));
      case CsvRecordReader::Result::kFatal:
        return Fatal(reader, error);
      case CsvRecordReader::Result::kBadRow:
        return Fail(absl::StrCat(path_, ":", reader.record_line(), ": header: ", error));
      case CsvRecordReader::Result::kRecord:
        break;
    }
    if (absl::Status s = PlanColumns(&fields, reader.record_line()); !s.ok()) return s;

    RowBuffer row;
    row.numeric.resize(table_.numeric_width());
    row.categorical.resize(table_.categorical_width());
    row.raw.resize(raw_fields_.size());
    size_t data_rows = 0;
    while (true) {
      const CsvRecordReader::Result r = reader.Next(&fields, &error);
      if (r == CsvRecordReader::Result::kEof) break;
      if (r == CsvRecordReader::Result::kFatal) return Fatal(reader, error);
      ++data_rows;
      std::string row_error;
      if (r == CsvRecordReader::Result::kBadRow) {
        row_error = std::move(error);
      } else {
        row_error = EncodeRow(fields, &row);
      }
      if (row_error.empty()) {
        Commit(&row);
        continue;
      }
      std::string message = absl::StrCat(path_, ":", reader.record_line(), ": ", row_error);
      if (!skip_bad_rows_) return Fail(std::move(message));
      if (table_.skipped_rows < kLoggedSkips) spdlog::warn("skipping bad row: {}", message);
      if (first_skip_.empty()) first_skip_ = std::move(message);
      ++table_.skipped_rows;
    }

    if (data_rows == 0) {
      return Fail(absl::StrCat(path_, ": no data rows after the header"));
    }
    if (table_.rows == 0) {
      return Fail(absl::StrCat(path_, ": no usable rows: all ", data_rows,
                               " data rows are bad; the first: ", first_skip_));
    }
    if (table_.skipped_rows > 0) {
      spdlog::warn("{}: skipped {} bad rows of {} (bad_row_policy SKIP)", path_,
                   table_.skipped_rows, data_rows);
    }
    return std::move(table_);
  }

 private:
  static absl::Status Fail(std::string message) {
    return absl::InvalidArgumentError(std::move(message));
  }

  absl::Status Fatal(const CsvRecordReader& reader, const std::string& error) const {
    std::string message = absl::StrCat(path_, ":", reader.record_line(), ": ", error);
    if (reader.read_failed()) return absl::DataLossError(std::move(message));
    return Fail(std::move(message));
  }

  absl::Status PlanColumns(std::vector<std::string>* header, size_t line) {
    std::string& first = header->front();
    if (first.rfind("\xEF\xBB\xBF", 0) == 0) first.erase(0, 3);
    for (size_t i = 0; i < header->size(); ++i) {
      if (auto bad = FindInvalidUtf8((*header)[i])) {
        return Fail(absl::StrCat(path_, ":", line, ": header field ", i + 1,
                                 ": invalid UTF-8 at byte ", *bad + 1));
      }
    }
    field_count_ = header->size();
    for (const v1::ColumnSpec& c : schema_.columns()) {
      const v1::ColumnRole role = c.role();
      if (role == v1::NUMERIC) table_.numeric_names.push_back(c.name());
      if (role == v1::CATEGORICAL) {
        table_.categorical_names.push_back(c.name());
        table_.buckets.push_back(c.hash_buckets());
      }
      if (role == v1::SELECTION || role == v1::IGNORED) continue;
      std::optional<size_t> found;
      for (size_t i = 0; i < header->size(); ++i) {
        if ((*header)[i] != c.name()) continue;
        if (found) {
          return Fail(absl::StrCat(path_, ":", line, ": column \"", c.name(),
                                   "\" appears twice in the header (fields ", *found + 1, " and ",
                                   i + 1, ")"));
        }
        found = i;
      }
      if (!found) {
        return Fail(absl::StrCat(path_, ":", line, ": missing column \"", c.name(), "\" (",
                                 v1::ColumnRole_Name(role), " in the schema)"));
      }
      size_t slot = 0;
      if (role == v1::NUMERIC) slot = table_.numeric_names.size() - 1;
      if (role == v1::CATEGORICAL) slot = table_.categorical_names.size() - 1;
      plan_.push_back({&c, *found, slot});
      if (role == v1::LABEL) has_label_ = true;
      if (role == v1::DATE) has_date_ = true;
      if (role == v1::ID) has_id_ = true;
    }
    for (const std::string& name : raw_names_) {
      const auto it = std::find(header->begin(), header->end(), name);
      if (it == header->end() && raw_optional_) continue;
      if (it == header->end()) {
        return Fail(absl::StrCat(path_, ":", line, ": missing column \"", name,
                                 "\" (asked for by name, e.g. a report's group column)"));
      }
      raw_fields_.push_back(static_cast<size_t>(it - header->begin()));
      table_.raw_columns.push_back({name, {}});
    }
    return absl::OkStatus();
  }

  // Encodes one record into `row`; returns "" or what is wrong with it.
  std::string EncodeRow(const std::vector<std::string>& fields, RowBuffer* row) const {
    if (fields.size() != field_count_) {
      return absl::StrCat("expected ", field_count_, " fields, found ", fields.size());
    }
    for (const ColumnPlan& p : plan_) {
      const std::string& name = p.spec->name();
      const std::string_view value = Trim(fields[p.field]);
      if (auto bad = FindInvalidUtf8(value)) {
        return absl::StrCat("column \"", name, "\": invalid UTF-8 at byte ", *bad + 1);
      }
      switch (p.spec->role()) {
        case v1::NUMERIC: {
          if (value.empty()) return absl::StrCat("column \"", name, "\": empty value");
          double x = 0;
          const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), x);
          if (ec == std::errc::result_out_of_range) {
            return absl::StrCat("column \"", name, "\": ", Shown(value), " is out of range");
          }
          if (ec != std::errc() || end != value.data() + value.size()) {
            return absl::StrCat("column \"", name, "\": ", Shown(value), " is not a number");
          }
          if (!std::isfinite(x) || !std::isfinite(static_cast<float>(x))) {
            return absl::StrCat("column \"", name, "\": ", Shown(value), " is not a finite number");
          }
          if (p.spec->log1p()) x = std::log1p(std::max(x, 0.0));
          row->numeric[p.slot] = static_cast<float>(x);
          break;
        }
        case v1::CATEGORICAL:
          row->categorical[p.slot] =
              CategoricalBucket(name, value, p.spec->prefix_length(), p.spec->hash_buckets());
          break;
        case v1::LABEL:
          if (value != "0" && value != "1") {
            return absl::StrCat("column \"", name, "\": ", Shown(value),
                                " is not a label (0 or 1)");
          }
          row->label = value == "1" ? 1.0f : 0.0f;
          break;
        case v1::DATE: {
          std::optional<int32_t> day = ParseDate(value);
          if (!day) {
            return absl::StrCat("column \"", name, "\": ", Shown(value),
                                " is not a date (YYYY-MM-DD)");
          }
          row->day = *day;
          break;
        }
        case v1::ID:
          row->id.assign(value);
          break;
        default:
          break;
      }
    }
    for (size_t k = 0; k < raw_fields_.size(); ++k) {
      const std::string_view value = Trim(fields[raw_fields_[k]]);
      if (auto bad = FindInvalidUtf8(value)) {
        return absl::StrCat("column \"", table_.raw_columns[k].name, "\": invalid UTF-8 at byte ",
                            *bad + 1);
      }
      row->raw[k].assign(value);
    }
    return "";
  }

  void Commit(RowBuffer* row) {
    table_.numeric.insert(table_.numeric.end(), row->numeric.begin(), row->numeric.end());
    table_.categorical.insert(table_.categorical.end(), row->categorical.begin(),
                              row->categorical.end());
    if (has_label_) table_.labels.push_back(row->label);
    if (has_date_) table_.days.push_back(row->day);
    if (has_id_) table_.ids.push_back(std::move(row->id));
    for (size_t k = 0; k < row->raw.size(); ++k) {
      table_.raw_columns[k].values.push_back(std::move(row->raw[k]));
    }
    ++table_.rows;
  }

  // Constant after construction
  const std::string& path_;
  const v1::DeclarationSchema& schema_;
  const bool skip_bad_rows_;
  const std::vector<std::string>& raw_names_;
  const bool raw_optional_;

  // Set by PlanColumns()
  std::vector<size_t> raw_fields_;  // CSV field of each raw_names_ entry
  size_t field_count_ = 0;
  std::vector<ColumnPlan> plan_;
  bool has_label_ = false;
  bool has_date_ = false;
  bool has_id_ = false;

  DeclarationTable table_;
  std::string first_skip_;
};

}  // namespace

uint32_t CategoricalBucket(std::string_view column_name, std::string_view value,
                           uint32_t prefix_length, uint32_t buckets) {
  if (value.empty() || buckets < 2) return 0;
  if (prefix_length > 0) {
    // Cut after `prefix_length` code points: count bytes that start one.
    size_t points = 0;
    size_t cut = value.size();
    for (size_t i = 0; i < value.size(); ++i) {
      if ((static_cast<unsigned char>(value[i]) & 0xc0) == 0x80) continue;
      if (points++ == prefix_length) {
        cut = i;
        break;
      }
    }
    value = value.substr(0, cut);
  }
  constexpr uint64_t kOffset = 14695981039346656037ull;
  constexpr uint64_t kPrime = 1099511628211ull;
  uint64_t h = kOffset;
  auto mix = [&](unsigned char c) {
    h ^= c;
    h *= kPrime;
  };
  for (char c : column_name) mix(static_cast<unsigned char>(c));
  mix(0x1f);
  for (char c : value) mix(static_cast<unsigned char>(c));
  return 1 + static_cast<uint32_t>(h % (buckets - 1));
}

absl::StatusOr<DeclarationTable> ReadDeclarationsCsv(const std::string& csv_path,
                                                     const v1::DeclarationSchema& schema,
                                                     v1::BadRowPolicy policy) {
  ReadOptions options;
  options.policy = policy;
  return ReadDeclarationsCsv(csv_path, schema, options);
}

absl::StatusOr<DeclarationTable> ReadDeclarationsCsv(const std::string& csv_path,
                                                     const v1::DeclarationSchema& schema,
                                                     const ReadOptions& options) {
  return DeclarationsCsvReader(csv_path, schema, options).Read();
}

std::string SelectionColumnName(const v1::DeclarationSchema& schema) {
  for (const v1::ColumnSpec& c : schema.columns()) {
    if (c.role() == v1::SELECTION) return c.name();
  }
  return "";
}

Split DeterministicSplit(const DeclarationTable& table, double holdout_fraction,
                         double validation_fraction) {
  Split split;
  const size_t n = table.rows;
  if (n == 0) return split;
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  if (table.days.size() == n) {
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return table.days[a] < table.days[b]; });
  }
  double f = std::isnan(holdout_fraction) ? 0.0 : std::clamp(holdout_fraction, 0.0, 1.0);
  size_t holdout = static_cast<size_t>(std::llround(f * static_cast<double>(n)));
  if (n >= 2)
    holdout = std::clamp<size_t>(holdout, 1, n - 1);
  else
    holdout = 0;
  const size_t rest = n - holdout;
  const double v =
      std::isnan(validation_fraction) ? 0.0 : std::clamp(validation_fraction, 0.0, 1.0);
  size_t validation = static_cast<size_t>(std::llround(v * static_cast<double>(rest)));
  validation = rest >= 2 ? std::min(validation, rest - 2) : 0;
  const auto train_end = order.begin() + static_cast<ptrdiff_t>(rest - validation);
  const auto holdout_begin = order.begin() + static_cast<ptrdiff_t>(rest);
  split.train.assign(order.begin(), train_end);
  split.validation.assign(train_end, holdout_begin);
  split.holdout.assign(holdout_begin, order.end());
  std::sort(split.train.begin(), split.train.end());
  std::sort(split.validation.begin(), split.validation.end());
  std::sort(split.holdout.begin(), split.holdout.end());
  return split;
}

}  // namespace fedcustoms::data
