#include "common/task/risk_task.h"

#include <torch/torch.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/training/risk_trainer.h"

namespace fedcustoms::task {

absl::Status FinalizeTrainingConfig(v1::TrainingConfig* config) {
  *config = training::WithDefaults(*config);
  return training::CheckTrainingConfig(*config);
}

absl::Status FinalizeRiskModelConfig(v1::RiskModelConfig* config) {
  *config = models::WithDefaults(*config);
  for (int k = 0; k < config->crosses_size(); ++k) {
    const v1::CategoricalCross& cross = config->crosses(k);
    if (cross.columns_size() != 2 || cross.columns(0).empty() || cross.columns(1).empty() ||
        cross.columns(0) == cross.columns(1)) {
      return absl::InvalidArgumentError(
          absl::StrCat("model.crosses[", k, "].columns must name two distinct columns, got ",
                       cross.columns_size(), " (", absl::StrJoin(cross.columns(), ", "), ")"));
    }
  }
  // Widths do not matter for the config's own ranges; the real ones are
  // checked again when the model is built from the schema.
  const std::vector<models::CrossColumns> placeholder(config->crosses_size(), {0, 1});
  return models::CheckRiskMlpArgs(1, {2, 2}, *config, placeholder);
}

absl::StatusOr<std::vector<models::CrossColumns>> ResolveCrosses(
    const v1::DeclarationSchema& schema, const v1::RiskModelConfig& config) {
  std::map<std::string, int64_t> categorical;
  for (const v1::ColumnSpec& c : schema.columns()) {
    if (c.role() == v1::CATEGORICAL) {
      categorical.emplace(c.name(), static_cast<int64_t>(categorical.size()));
    }
  }
  std::vector<models::CrossColumns> out;
  for (int k = 0; k < config.crosses_size(); ++k) {
    const v1::CategoricalCross& cross = config.crosses(k);
    if (cross.columns_size() != 2) {
      return absl::InvalidArgumentError(
          absl::StrCat("model.crosses[", k, "] names ", cross.columns_size(), " columns, not 2"));
    }
    int64_t index[2];
    for (int i = 0; i < 2; ++i) {
      const auto it = categorical.find(cross.columns(i));
      if (it == categorical.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat("model.crosses[", k, "]: \"", cross.columns(i),
                         "\" is not a CATEGORICAL column of the schema"));
      }
      index[i] = it->second;
    }
    out.push_back({index[0], index[1]});
  }
  return out;
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
  absl::StatusOr<std::vector<models::CrossColumns>> crosses = ResolveCrosses(schema, config);
  TORCH_CHECK(crosses.ok(), std::string(crosses.status().message()));
  return models::RiskMlp(numeric, buckets, config, seed, *std::move(crosses));
}

absl::StatusOr<tensor::NamedTensors> InitialRiskState(const v1::DeclarationSchema& schema,
                                                      const v1::RiskModelConfig& config,
                                                      uint64_t seed) {
  int64_t numeric = 0;
  std::vector<uint32_t> buckets;
  FeatureWidths(schema, &numeric, &buckets);
  absl::StatusOr<std::vector<models::CrossColumns>> crosses = ResolveCrosses(schema, config);
  if (!crosses.ok()) return crosses.status();
  if (absl::Status s =
          models::CheckRiskMlpArgs(numeric, buckets, models::WithDefaults(config), *crosses);
      !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot build the risk model for this schema: ", s.message()));
  }
  models::RiskMlp model(numeric, buckets, config, seed, *std::move(crosses));
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
