#pragma once

#include <cstdint>
#include <string>

#include "common/manifest/model_manifest.h"
#include "common/task/task_model.h"
#include "fedcustoms/v1/config.pb.h"

namespace fedcustoms::coordinator {

// How the ledger and the manifests name an aggregation mode: "secure" or
// "trusted".
const char* AggregationModeName(v1::AggregationMode mode);

// What every manifest of one task states, whatever round makes the version:
// the architecture and hyper-parameters, the training config, the input it
// reads and its hash, the aggregation mode, server strategy and aggregation
// rule. Made once per task; For() fills in a version.
class ManifestTemplate {
 public:
  // `strategy` is the server optimizer's name ("fedavg", "fedadam"...).
  ManifestTemplate(const v1::TaskConfig& config, const task::ModelSpec& model,
                   v1::AggregationMode mode, std::string strategy);

  // The manifest of `version` (parent version - 1; none for v0), created now;
  // the round's own fields (round, contributors, samples, hashes) are the
  // caller's to fill in.
  manifest::ModelManifest For(uint64_t version) const;

  // The task's input hash (task::InputHash): nodes must match it.
  const std::string& feature_schema_hash() const { return base_.feature_schema_hash; }

 private:
  manifest::ModelManifest base_;
};

}  // namespace fedcustoms::coordinator
