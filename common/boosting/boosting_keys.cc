#include "common/boosting/boosting_keys.h"

#include "absl/strings/str_cat.h"

namespace fedcustoms::boosting {
namespace {

std::string Field(std::string_view value) {
  return std::to_string(value.size()) + ":" + std::string(value);
}

}  // namespace

std::string BoostingKeyPayload(const std::string& task, uint64_t round_id, const std::string& node,
                               const secagg::X25519PublicKey& key) {
  const std::string_view bytes(reinterpret_cast<const char*>(key.data()), key.size());
  return absl::StrCat(Field("fedcustoms boosting key v1"), Field(task),
                      Field(std::to_string(round_id)), Field(node), Field(bytes));
}

std::string PairContext(const std::string& task, uint64_t round_id, const std::string& a,
                        const std::string& b) {
  const bool ordered = a < b;
  return absl::StrCat("fedcustoms/v1 boosting mask ", Field(task), " round ", round_id, " ",
                      Field(ordered ? a : b), " ", Field(ordered ? b : a));
}

}  // namespace fedcustoms::boosting
