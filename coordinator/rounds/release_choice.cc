#include "coordinator/rounds/release_choice.h"

#include <nlohmann/json.hpp>

namespace fedcustoms::coordinator {

using nlohmann::json;

void ReleaseChoice::Restore(uint64_t released_version, const std::string& released_weights_sha256,
                            const std::string& release_json) {
  const json release = json::parse(release_json, nullptr, false);
  if (release.is_discarded() || !release.is_object() || release.empty()) return;
  released_version_ = released_version;
  released_weights_sha256_ = released_weights_sha256;
  const json best = release.value("best_validation_pr_auc", json(nullptr));
  best_ = best.is_number() ? std::optional<double>(best.get<double>()) : std::nullopt;
  const json rounds = release.value("rounds_without_improvement", json(nullptr));
  rounds_without_improvement_ = rounds.is_number_unsigned() ? rounds.get<uint32_t>() : 0;
}

ReleaseChoice::Decision ReleaseChoice::Decide(uint64_t version,
                                              std::optional<double> validation_pr_auc) const {
  Decision d;
  bool newest;
  if (released_version_ == 0 || !best_.has_value()) {
    newest = true;  // nothing to compare with yet
  } else if (validation_pr_auc.has_value()) {
    newest = *validation_pr_auc > *best_;
  } else {
    newest = false;  // no figure: the release stays
  }
  if (newest) {
    d.released_version = version;
    d.best = validation_pr_auc;
    d.rounds_without_improvement = 0;
  } else {
    d.released_version = released_version_;
    d.released_weights_sha256 = released_weights_sha256_;
    d.best = best_;
    d.rounds_without_improvement =
        rounds_without_improvement_ + (validation_pr_auc.has_value() ? 1 : 0);
  }
  json release{{"released_version", d.released_version},
               {"criterion", "lower median of the nodes' validation PR-AUC"},
               {"validation_pr_auc", validation_pr_auc ? json(*validation_pr_auc) : json(nullptr)},
               {"best_validation_pr_auc", d.best ? json(*d.best) : json(nullptr)},
               {"rounds_without_improvement", d.rounds_without_improvement}};
  if (!newest) release["released_weights_sha256"] = d.released_weights_sha256;
  d.release_json = release.dump();
  return d;
}

void ReleaseChoice::Accept(const Decision& decision, uint64_t published_version,
                           const std::string& published_weights_sha256) {
  released_version_ = decision.released_version;
  released_weights_sha256_ = decision.released_version == published_version
                                 ? published_weights_sha256
                                 : decision.released_weights_sha256;
  best_ = decision.best;
  rounds_without_improvement_ = decision.rounds_without_improvement;
}

}  // namespace fedcustoms::coordinator
