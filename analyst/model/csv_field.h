#pragma once

#include <string>

namespace fedcustoms::analyst {

// `value` as one RFC 4180 CSV field: quoted when it holds a comma, a quote or
// a line break, with quotes doubled.
inline std::string CsvField(const std::string& value) {
  if (value.find_first_of(",\"\r\n") == std::string::npos) return value;
  std::string out = "\"";
  for (char c : value) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace fedcustoms::analyst
