#include "common/task/risk_task.h"

#include <torch/torch.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/training/risk_trainer.h"

namespace fedcustoms::task {

absl::Status FinalizeTrainingConfig(v1::TrainingConfig* config) {
  *config = training::WithDefaults(*config);
  return training::CheckTrainingConfig(*config);
}

absl::Status FinalizeRiskModelConfig(v1::RiskModelConfig* config) {
  *config = models::WithDefaults(*config);
  // Widths do not matter for the config's own ranges; the real ones are
  // checked again when the model is built from the schema.
  return models::CheckRiskMlpArgs(1, {2}, *config);
}

void FeatureWidths(const v1::DeclarationSchema& schema, int64_t* numeric,
                   std::vector<uint32_t>* buckets) {
  *numeric = 0;
  for (const v1::ColumnSpec& c : schema.columns()) {
    if (c.role() == v1::NUMERIC) ++*numeric;
    if (c.role() == v1::CATEGORICAL) buckets->push_back(c.hash_buckets());
  }
}

models::RiskMlp BuildRiskModel(const v1::DeclarationSchema& schema,
                               const v1::RiskModelConfig& config, uint64_t seed) {
  int64_t numeric = 0;
  std::vector<uint32_t> buckets;
  FeatureWidths(schema, &numeric, &buckets);
  return models::RiskMlp(numeric, buckets, config, seed);
}

absl::StatusOr<tensor::NamedTensors> InitialRiskState(const v1::DeclarationSchema& schema,
                                                      const v1::RiskModelConfig& config,
                                                      uint64_t seed) {
  int64_t numeric = 0;
  std::vector<uint32_t> buckets;
  FeatureWidths(schema, &numeric, &buckets);
  if (absl::Status s = models::CheckRiskMlpArgs(numeric, buckets, models::WithDefaults(config));
      !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot build the risk model for this schema: ", s.message()));
  }
  models::RiskMlp model(numeric, buckets, config, seed);
  return tensor::StateOf(*model);
}

std::string FeatureSchemaSummaryJson(const v1::DeclarationSchema& schema) {
  nlohmann::json numeric = nlohmann::json::array();
  nlohmann::json categorical = nlohmann::json::array();
  std::string label;
  for (const v1::ColumnSpec& c : schema.columns()) {
    if (c.role() == v1::NUMERIC) {
      numeric.push_back({{"name", c.name()}, {"log1p", c.log1p()}});
    } else if (c.role() == v1::CATEGORICAL) {
      categorical.push_back({{"name", c.name()},
                             {"hash_buckets", c.hash_buckets()},
                             {"prefix_length", c.prefix_length()}});
    } else if (c.role() == v1::LABEL) {
      label = c.name();
    }
  }
  return nlohmann::json{{"numeric", numeric}, {"categorical", categorical}, {"label", label}}
      .dump();
}

}  // namespace fedcustoms::task
