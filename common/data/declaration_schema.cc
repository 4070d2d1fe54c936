#include "common/data/declaration_schema.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "common/config/proto_json.h"
#include "common/crypto/sha256.h"

namespace fedcustoms::data {
namespace {

std::string ColumnLabel(const v1::DeclarationSchema& schema, int i) {
  return absl::StrCat("columns[", i, "] (\"", schema.columns(i).name(), "\")");
}

bool HasControlCharacter(absl::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

std::string LengthPrefixed(absl::string_view s) { return absl::StrCat(s.size(), ":", s); }

}  // namespace

absl::Status ValidateDeclarationSchema(const v1::DeclarationSchema& schema,
                                       std::string_view source_name) {
  // Debian's abseil has its own string_view type.
  const absl::string_view source(source_name.data(), source_name.size());
  auto bad = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", what));
  };
  if (schema.columns_size() == 0) return bad("\"columns\" is empty; the schema needs columns");
  std::map<std::string, int> seen_names;
  std::map<v1::ColumnRole, int> single_roles;
  int features = 0;
  for (int i = 0; i < schema.columns_size(); ++i) {
    const v1::ColumnSpec& c = schema.columns(i);
    auto bad_column = [&](absl::string_view what) {
      return bad(absl::StrCat(ColumnLabel(schema, i), ": ", what));
    };
    if (c.name().empty()) return bad(absl::StrCat("columns[", i, "]: \"name\" is empty"));
    if (HasControlCharacter(c.name())) return bad_column("\"name\" has a control character");
    if (auto [it, inserted] = seen_names.emplace(c.name(), i); !inserted) {
      return bad_column(absl::StrCat("duplicate name (also columns[", it->second, "])"));
    }
    const std::string role_name = v1::ColumnRole_Name(c.role());
    switch (c.role()) {
      case v1::ID:
      case v1::DATE:
      case v1::LABEL:
      case v1::SELECTION:
        if (auto [it, inserted] = single_roles.emplace(c.role(), i); !inserted) {
          return bad_column(absl::StrCat("a second ", role_name, " column (the first is ",
                                         ColumnLabel(schema, it->second), ")"));
        }
        break;
      case v1::NUMERIC:
      case v1::CATEGORICAL:
        ++features;
        break;
      case v1::IGNORED:
        break;
      default:
        return bad_column(
            "\"role\" is not set (ID, DATE, NUMERIC, CATEGORICAL, LABEL, "
            "SELECTION or IGNORED)");
    }
    if (c.log1p() && c.role() != v1::NUMERIC) {
      return bad_column(absl::StrCat("\"log1p\" applies to NUMERIC columns only, not ", role_name));
    }
    if (c.role() == v1::CATEGORICAL) {
      if (c.hash_buckets() < 2) {
        return bad_column(absl::StrCat(
            "\"hash_buckets\" must be >= 2 for a CATEGORICAL column, found ", c.hash_buckets()));
      }
      if (c.hash_buckets() > kMaxHashBuckets) {
        return bad_column(absl::StrCat("\"hash_buckets\" must be <= ", kMaxHashBuckets, ", found ",
                                       c.hash_buckets()));
      }
    } else {
      if (c.hash_buckets() != 0) {
        return bad_column(
            absl::StrCat("\"hash_buckets\" applies to CATEGORICAL columns only, not ", role_name));
      }
      if (c.prefix_length() != 0) {
        return bad_column(
            absl::StrCat("\"prefix_length\" applies to CATEGORICAL columns only, not ", role_name));
      }
    }
  }
  if (features == 0) return bad("no NUMERIC or CATEGORICAL column; the model needs a feature");
  const std::string& d = schema.delimiter();
  if (!d.empty() && (d.size() != 1 || static_cast<unsigned char>(d[0]) >= 0x80 || d[0] == '"' ||
                     d[0] == '\r' || d[0] == '\n')) {
    return bad(
        absl::StrCat("\"delimiter\" must be one ASCII character other than a quote, CR "
                     "or LF, found \"",
                     d, "\""));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::DeclarationSchema> ParseDeclarationSchema(std::string_view json,
                                                             std::string_view source_name) {
  v1::DeclarationSchema schema;
  if (absl::Status s = config::ParseProtoJson(json, source_name, &schema); !s.ok()) return s;
  if (absl::Status s = ValidateDeclarationSchema(schema, source_name); !s.ok()) return s;
  return schema;
}

absl::StatusOr<v1::DeclarationSchema> LoadDeclarationSchema(const std::string& path) {
  v1::DeclarationSchema schema;
  if (absl::Status s = config::LoadProtoJson(path, &schema); !s.ok()) return s;
  if (absl::Status s = ValidateDeclarationSchema(schema, path); !s.ok()) return s;
  return schema;
}

char SchemaDelimiter(const v1::DeclarationSchema& schema) {
  return schema.delimiter().empty() ? ',' : schema.delimiter()[0];
}

std::string FeatureSchemaHash(const v1::DeclarationSchema& schema) {
  std::string text = "fedcustoms-feature-schema-v1\n";
  for (const v1::ColumnSpec& c : schema.columns()) {
    if (c.role() == v1::NUMERIC) {
      absl::StrAppend(&text, "numeric ", LengthPrefixed(c.name()), " log1p=", c.log1p() ? 1 : 0,
                      "\n");
    }
  }
  for (const v1::ColumnSpec& c : schema.columns()) {
    if (c.role() == v1::CATEGORICAL) {
      absl::StrAppend(&text, "categorical ", LengthPrefixed(c.name()),
                      " buckets=", c.hash_buckets(), " prefix=", c.prefix_length(), "\n");
    }
  }
  std::string label = "-";
  for (const v1::ColumnSpec& c : schema.columns()) {
    if (c.role() == v1::LABEL) label = LengthPrefixed(c.name());
  }
  absl::StrAppend(&text, "label ", label, "\n");

  return crypto::Sha256Hex(text);
}

}  // namespace fedcustoms::data
