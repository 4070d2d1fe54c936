// The strict proto-JSON config parser on arbitrary text, into each config a
// person writes: coordinator, node and declaration schema. It must return an
// error or a message, never crash; what it accepts must print and parse back
// to the same message.
#include <google/protobuf/util/json_util.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/config/proto_json.h"
#include "common/data/declaration_schema.h"
#include "fedcustoms/v1/config.pb.h"
#include "fedcustoms/v1/schema.pb.h"

namespace {

template <typename Message>
void ParseOne(std::string_view text) {
  Message message;
  if (!fedcustoms::config::ParseProtoJson(text, "fuzz.json", &message).ok()) return;
  std::string printed;
  if (!google::protobuf::util::MessageToJsonString(message, &printed).ok()) std::abort();
  // Printing is a fixed point (comparing messages would trip over NaN, which
  // JSON may spell "NaN").
  Message again;
  if (!fedcustoms::config::ParseProtoJson(printed, "printed.json", &again).ok()) std::abort();
  std::string reprinted;
  if (!google::protobuf::util::MessageToJsonString(again, &reprinted).ok()) std::abort();
  if (reprinted != printed) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  ParseOne<fedcustoms::v1::CoordinatorConfig>(text);
  ParseOne<fedcustoms::v1::NodeConfig>(text);
  ParseOne<fedcustoms::v1::DeclarationSchema>(text);
  // The schema loader proper: parse, then the semantic checks.
  if (auto schema = fedcustoms::data::ParseDeclarationSchema(text, "fuzz.json"); schema.ok()) {
    if (fedcustoms::data::FeatureSchemaHash(*schema).size() != 64) std::abort();
  }
  return 0;
}
