#include "coordinator/rounds/manifest_template.h"

#include "absl/strings/ascii.h"
#include "common/config/proto_json.h"
#include "coordinator/rounds/privacy_block.h"

namespace fedcustoms::coordinator {
namespace {

// How manifests name the rule that combined the updates.
std::string AggregatorName(const v1::RobustAggregationConfig& r) {
  std::string name = absl::AsciiStrToLower(v1::RobustAggregationConfig::Kind_Name(r.kind()));
  if (r.norm_bound() > 0) name += "+norm_bound";
  return name;
}

}  // namespace

const char* AggregationModeName(v1::AggregationMode mode) {
  return mode == v1::SECURE ? "secure" : "trusted";
}

ManifestTemplate::ManifestTemplate(const v1::TaskConfig& config, const task::ModelSpec& model,
                                   v1::AggregationMode mode, std::string strategy) {
  base_.task = config.name();
  base_.architecture = std::string(task::ArchitectureName(model));
  base_.hyperparameters_json = task::HyperparametersJson(model);
  base_.training_json = config::PrintProtoJson(config.training(), {.print_defaults = true})
                            .value_or(std::string("{}"));
  base_.feature_schema_json = task::InputSummaryJson(model);
  base_.feature_schema_hash = task::InputHash(model);
  base_.aggregation_mode = AggregationModeName(mode);
  base_.strategy = std::move(strategy);
  base_.aggregator = AggregatorName(config.robust_aggregation());
  // Version 0 has seen no data: a DP task's starts at ε = 0; each round's
  // manifest replaces the block (TaskRunner::Aggregate).
  base_.privacy_json = PrivacyBlock(config.privacy(), 0, "", {});
}

manifest::ModelManifest ManifestTemplate::For(uint64_t version) const {
  manifest::ModelManifest m = base_;
  m.version = version;
  m.has_parent = version > 0;
  m.parent = version > 0 ? version - 1 : 0;
  m.created_at = manifest::NowRfc3339();
  return m;
}

}  // namespace fedcustoms::coordinator
