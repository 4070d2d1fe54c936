#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace google::protobuf {
class Message;
}  // namespace google::protobuf

namespace fedcustoms::config {

// Config and schema files are protobuf messages written as JSON (proto3 JSON
// mapping: field names as in the .proto or in lowerCamelCase, enums by name).
// These functions parse them strictly and explain failures in terms a person
// editing the file understands.

// Parses `json` into `*out` (cleared first). `source_name` (usually the file
// path) starts every error message. Strict: unknown fields are refused.
//
// Errors (InvalidArgument), each naming `source_name`:
//   - malformed JSON: "<source>: line L, column C: invalid JSON: <what>";
//   - top level not an object;
//   - an unknown field, by its path from the root, e.g.
//     "<source>: unknown field \"columns[2].hash_bucketz\" (not a field of
//     fedcustoms.v1.ColumnSpec)";
//   - a wrong value type or enum name, with protobuf's description of it.
// On error `*out` is left in an unspecified but valid state. Thread-safe for
// distinct `out`.
absl::Status ParseProtoJson(std::string_view json, std::string_view source_name,
                            google::protobuf::Message* out);

// Reads the file at `path` (at most 64 MiB) and parses it with
// ParseProtoJson(); errors name the path. NotFound when the file cannot be
// opened.
absl::Status LoadProtoJson(const std::string& path, google::protobuf::Message* out);

// How PrintProtoJson lays the JSON out. Field names are always the .proto
// names (snake_case), as our config files and records spell them.
struct ProtoJsonStyle {
  // Indented, one field a line (files people read); else one line.
  bool indent = false;
  // Fields at their default value (0, "", false) printed too, so that a
  // record always has the same keys.
  bool print_defaults = false;
};

// The message as proto3 JSON: the one printer of every proto written as JSON
// (records, summaries, hashed specs, generated schema files). InvalidArgument
// naming the message type when protobuf refuses to print it (a string field
// holding invalid UTF-8). Thread-safe.
absl::StatusOr<std::string> PrintProtoJson(const google::protobuf::Message& message,
                                           ProtoJsonStyle style = {});

}  // namespace fedcustoms::config
