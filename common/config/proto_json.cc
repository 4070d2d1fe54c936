#include "common/config/proto_json.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/util/json_util.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/io/small_file.h"

namespace fedcustoms::config {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

constexpr size_t kMaxFileBytes = 64 << 20;

// The field a JSON key names: proto name or lowerCamelCase JSON name, the two
// spellings protobuf's parser accepts.
const FieldDescriptor* FindJsonField(const Descriptor* d, const std::string& key) {
  if (const FieldDescriptor* f = d->FindFieldByName(key)) return f;
  for (int i = 0; i < d->field_count(); ++i) {
    if (d->field(i)->json_name() == key) return d->field(i);
  }
  return nullptr;
}

// Well-known types (Struct, Any, Timestamp, wrappers…) have their own JSON
// forms; protobuf's parser checks those.
bool HasSpecialJsonForm(const Descriptor* d) {
  return d->well_known_type() != Descriptor::WELLKNOWNTYPE_UNSPECIFIED;
}

// Protobuf 3.21 names an unknown field only relative to its parent, so we walk
// the document against the descriptor first and report the full path. Values
// of the wrong JSON type are left to protobuf's parser.
absl::Status CheckKnownFields(const nlohmann::json& node, const Descriptor* d,
                              const std::string& path, absl::string_view source) {
  if (!node.is_object() || HasSpecialJsonForm(d)) return absl::OkStatus();
  for (const auto& [key, value] : node.items()) {
    const std::string field_path = path.empty() ? key : absl::StrCat(path, ".", key);
    const FieldDescriptor* f = FindJsonField(d, key);
    if (f == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": unknown field \"", field_path,
                                                     "\" (not a field of ", d->full_name(), ")"));
    }
    if (f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE || value.is_null()) continue;
    if (f->is_map()) {
      const FieldDescriptor* map_value = f->message_type()->map_value();
      if (map_value->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE || !value.is_object()) {
        continue;
      }
      for (const auto& [map_key, entry] : value.items()) {
        absl::Status s = CheckKnownFields(entry, map_value->message_type(),
                                          absl::StrCat(field_path, "[\"", map_key, "\"]"), source);
        if (!s.ok()) return s;
      }
    } else if (f->is_repeated()) {
      if (!value.is_array()) continue;
      for (size_t i = 0; i < value.size(); ++i) {
        absl::Status s = CheckKnownFields(value[i], f->message_type(),
                                          absl::StrCat(field_path, "[", i, "]"), source);
        if (!s.ok()) return s;
      }
    } else {
      absl::Status s = CheckKnownFields(value, f->message_type(), field_path, source);
      if (!s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ParseProtoJson(std::string_view json, std::string_view source_name,
                            google::protobuf::Message* out) {
  // Debian's abseil has its own string_view type.
  const absl::string_view source(source_name.data(), source_name.size());
  out->Clear();
  nlohmann::json document;
  try {
    document = nlohmann::json::parse(json.begin(), json.end());
  } catch (const nlohmann::json::exception& e) {
    // what() reads "[json.exception.parse_error.101] parse error at line L,
    // column C: …" (keep the part from "line"), or for a number too large for
    // a double (found by fuzz/fuzz_config_parser) "[json.exception.
    // out_of_range.406] number overflow parsing '1e400'" (keep what follows
    // the bracket).
    absl::string_view what = e.what();
    if (const size_t at = what.find("at line "); at != absl::string_view::npos) {
      what.remove_prefix(at + 3);
    } else if (const size_t bracket = what.find("] "); bracket != absl::string_view::npos) {
      what.remove_prefix(bracket + 2);
    }
    return absl::InvalidArgumentError(absl::StrCat(source, ": invalid JSON: ", what));
  }
  if (!document.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": expected a JSON object (",
                                                   out->GetDescriptor()->full_name(),
                                                   ") at the top level"));
  }
  if (absl::Status s = CheckKnownFields(document, out->GetDescriptor(), "", source); !s.ok()) {
    return s;
  }
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto status = google::protobuf::util::JsonStringToMessage(std::string(json), out, options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": ", absl::string_view(status.message().data(), status.message().size())));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> PrintProtoJson(const google::protobuf::Message& message,
                                           ProtoJsonStyle style) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.add_whitespace = style.indent;
  options.always_print_primitive_fields = style.print_defaults;
  std::string json;
  if (auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
      !status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("cannot print ",
                                                   message.GetDescriptor()->full_name(),
                                                   " as JSON: ", status.message().as_string()));
  }
  return json;
}

absl::Status LoadProtoJson(const std::string& path, google::protobuf::Message* out) {
  auto text = io::ReadSmallFile(path, kMaxFileBytes, "a config file");
  if (!text.ok()) return text.status();
  return ParseProtoJson(*text, path, out);
}

}  // namespace fedcustoms::config
