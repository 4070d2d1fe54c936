#include "coordinator/rounds/privacy_block.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/privacy/privacy_config.h"

namespace fedcustoms::coordinator {
namespace {

using json = nlohmann::json;

json SegmentsJson(const v1::PrivacySpent& spent) {
  json segments = json::array();
  for (const v1::PrivacySpent::Segment& s : spent.segments()) {
    segments.push_back({{"sampling_rate", s.sampling_rate()},
                        {"noise_multiplier", s.noise_multiplier()},
                        {"steps", s.steps()}});
  }
  return segments;
}

}  // namespace

absl::Status CheckPrivacyReport(const v1::PrivacyConfig& task, const std::string& node,
                                const v1::UpdateHeader& header) {
  auto bad = [&](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat("privacy report of ", node, ": ", parts...));
  };
  if (!privacy::IsDpSgd(task)) {
    if (header.has_privacy()) return bad("the task does not use DP-SGD, yet a report came");
    return absl::OkStatus();
  }
  if (!header.has_privacy()) return bad("missing; the task trains with DP-SGD");
  const v1::PrivacySpent& p = header.privacy();
  if (p.segments_size() == 0 || p.segments_size() > 1000) {
    return bad("has ", p.segments_size(), " segments, expected 1..1000");
  }
  if (p.delta() != task.delta())
    return bad("delta ", p.delta(), " is not the task's ", task.delta());
  if (p.clip_norm() != task.clip_norm()) {
    return bad("clip_norm ", p.clip_norm(), " is not the task's ", task.clip_norm());
  }
  absl::StatusOr<double> recomputed = privacy::EpsilonOfSegments(p, p.delta());
  if (!recomputed.ok()) return bad(recomputed.status().message());
  if (!(std::abs(*recomputed - p.epsilon()) <= 1e-9 * std::max(1.0, *recomputed))) {
    return bad("epsilon ", p.epsilon(), " is not what its segments give (", *recomputed, ")");
  }
  return absl::OkStatus();
}

std::string PrivacyBlock(const v1::PrivacyConfig& task, uint64_t parent_version,
                         const std::string& parent_block,
                         const std::map<std::string, v1::PrivacySpent>& reports) {
  if (!privacy::IsDpSgd(task)) {
    return json{{"mechanism", "none"}, {"epsilon", nullptr}, {"delta", nullptr}}.dump();
  }
  json parent = json::object();
  if (!parent_block.empty()) {
    parent = json::parse(parent_block, nullptr, /*allow_exceptions=*/false);
    if (!parent.is_object()) parent = json::object();
  }
  const bool parent_private = parent_version == 0 || parent.value("mechanism", "") == "dp-sgd";
  json administrations =
      parent_private && parent.contains("administrations") && parent["administrations"].is_object()
          ? parent["administrations"]
          : json::object();
  for (const auto& [node, spent] : reports) {
    administrations[node] = {{"epsilon", spent.epsilon()},
                             {"rounds", spent.rounds()},
                             {"segments", SegmentsJson(spent)}};
  }
  double largest = 0;
  for (const auto& [node, entry] : administrations.items()) {
    if (entry.contains("epsilon") && entry["epsilon"].is_number()) {
      largest = std::max(largest, entry["epsilon"].get<double>());
    }
  }
  json block = {
      {"mechanism", "dp-sgd"},
      {"unit", "one training row (declaration) of one administration; add/remove adjacency"},
      {"accountant",
       "RDP of the sampled Gaussian mechanism (Mironov, Talwar, Zhang 2019), Opacus orders, "
       "improved conversion (Balle et al. 2020)"},
      {"clip_norm", task.clip_norm()},
      {"delta", task.delta()},
      {"epsilon", largest},
      {"administrations", administrations},
  };
  const bool inherited_caveat = parent.contains("caveat");
  if (!parent_private || inherited_caveat) {
    block["epsilon"] = nullptr;
    block["caveat"] = inherited_caveat
                          ? parent["caveat"]
                          : json(absl::StrCat("built on version ", parent_version,
                                              ", which was trained without differential privacy: "
                                              "no guarantee holds for the rows that trained it"));
  }
  return block.dump();
}

}  // namespace fedcustoms::coordinator
