#include "coordinator/rounds/privacy_block.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/privacy/privacy_config.h"

namespace fedcustoms::coordinator {
namespace {

using json = nlohmann::json;

// A node adds a segment only when its (q, σ) changes: a handful over its life.
constexpr int kMaxSegments = 64;

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
                                const v1::UpdateHeader& header, const privacy::DpSgdPlan* expected,
                                const std::string& published_block) {
  auto bad = [&](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat("privacy report of ", node, ": ", parts...));
  };
  if (!privacy::IsDpSgd(task)) {
    if (header.has_privacy()) return bad("the task does not use DP-SGD, yet a report came");
    return absl::OkStatus();
  }
  if (!header.has_privacy()) return bad("missing; the task trains with DP-SGD");
  const v1::PrivacySpent& p = header.privacy();
  if (p.segments_size() == 0 || p.segments_size() > kMaxSegments) {
    return bad("has ", p.segments_size(), " segments, expected 1..", kMaxSegments);
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
  auto steps_at = [&](double q, double sigma) -> uint64_t {
    for (const v1::PrivacySpent::Segment& s : p.segments()) {
      if (s.sampling_rate() == q && s.noise_multiplier() == sigma) return s.steps();
    }
    return 0;
  };
  if (expected != nullptr) {
    const v1::PrivacySpent::Segment& last = p.last_round();
    if (last.sampling_rate() != expected->sampling_rate ||
        last.noise_multiplier() != expected->noise_multiplier || last.steps() != expected->steps) {
      return bad("its last round (sampling rate ", last.sampling_rate(), ", noise multiplier ",
                 last.noise_multiplier(), ", ", last.steps(),
                 " steps) is not this round's plan for its rows (", expected->sampling_rate, ", ",
                 expected->noise_multiplier, ", ", expected->steps, ")");
    }
    if (p.stats_noise_multiplier() != expected->stats_noise_multiplier) {
      return bad("its statistics query (noise multiplier ", p.stats_noise_multiplier(),
                 ") is not the task's (", expected->stats_noise_multiplier,
                 ", sampling rate 1, a step per round)");
    }
    if (expected->stats_noise_multiplier > 0) {
      // A step of the statistics query in every round the node trained.
      uint64_t at_rate_one = 0;
      for (const v1::PrivacySpent::Segment& s : p.segments()) {
        if (s.sampling_rate() == 1) at_rate_one += s.steps();
      }
      if (at_rate_one < p.rounds()) {
        return bad(p.rounds(), " rounds but ", at_rate_one,
                   " steps of the statistics query (sampling rate 1): one per round is spent");
      }
    }
  }
  // What the report must hold at each (q, σ): what is already published for
  // the node plus this round's steps and its step of the statistics query
  // (both at once when they share (q, σ)). Fewer would understate ε.
  std::map<std::pair<double, double>, uint64_t> required;
  if (expected != nullptr) {
    required[{expected->sampling_rate, expected->noise_multiplier}] += expected->steps;
    if (expected->stats_noise_multiplier > 0) {
      required[{1.0, expected->stats_noise_multiplier}] += 1;
    }
  }
  const json published = json::parse(published_block, nullptr, /*allow_exceptions=*/false);
  if (published.is_object() && published.contains("administrations") &&
      published["administrations"].is_object() && published["administrations"].contains(node)) {
    const json& before = published["administrations"][node];
    const uint64_t rounds_before =
        before.contains("rounds") && before["rounds"].is_number_unsigned()
            ? before["rounds"].get<uint64_t>()
            : 0;
    if (p.rounds() <= rounds_before) {
      return bad(p.rounds(), " rounds, but ", rounds_before,
                 " are already published: a report only moves forward");
    }
    if (before.contains("segments") && before["segments"].is_array()) {
      for (const json& s : before["segments"]) {
        if (!s.is_object() || !s.contains("sampling_rate") || !s["sampling_rate"].is_number() ||
            !s.contains("noise_multiplier") || !s["noise_multiplier"].is_number() ||
            !s.contains("steps") || !s["steps"].is_number_unsigned()) {
          continue;
        }
        required[{s["sampling_rate"].get<double>(), s["noise_multiplier"].get<double>()}] +=
            s["steps"].get<uint64_t>();
      }
    }
  }
  for (const auto& [key, steps] : required) {
    if (steps_at(key.first, key.second) < steps) {
      return bad(steps_at(key.first, key.second), " steps at sampling rate ", key.first,
                 ", noise multiplier ", key.second,
                 ", but what is published and this round's plan "
                 "make at least ",
                 steps, ": a report only moves forward, by this round's steps");
    }
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
  const bool parent_private =
      parent_version == 0 || (parent.contains("mechanism") && parent["mechanism"].is_string() &&
                              parent["mechanism"].get<std::string>() == "dp-sgd");
  json administrations =
      parent_private && parent.contains("administrations") && parent["administrations"].is_object()
          ? parent["administrations"]
          : json::object();
  for (const auto& [node, spent] : reports) {
    administrations[node] = {{"epsilon", spent.epsilon()},
                             {"delta", spent.delta()},
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
      {"statistics",
       task.stats_noise_multiplier() > 0
           ? json{{"mechanism", "gaussian"},
                  {"what",
                   "sums of the numeric columns and of their squares, clipped to numeric_range"},
                  {"noise_multiplier", task.stats_noise_multiplier()},
                  {"numeric_range", {task.numeric_low(), task.numeric_high()}}}
           : json(nullptr)},
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
