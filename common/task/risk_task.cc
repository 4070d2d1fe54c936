#include "common/task/risk_task.h"

#include <torch/torch.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/models/boosted_trees_state.h"
#include "common/training/risk_trainer.h"
#include "common/trees/split_finder.h"

namespace fedcustoms::task {

absl::Status FinalizeTrainingConfig(v1::TrainingConfig* config) {
  *config = training::WithDefaults(*config);
  return training::CheckTrainingConfig(*config);
}

namespace {

absl::Status FinalizeBoostedTreesConfig(v1::RiskModelConfig* config) {
  if (!config->hidden_units().empty() || config->embedding_dim() != 0 || config->dropout() != 0 ||
      config->crosses_size() != 0) {
    return absl::InvalidArgumentError(
        "kind BOOSTED_TREES has no hidden_units, embedding_dim, dropout or crosses to set");
  }
  v1::BoostedTreesConfig& t = *config->mutable_trees();
  if (t.trees() == 0) t.set_trees(100);
  if (t.max_depth() == 0) t.set_max_depth(6);
  if (t.learning_rate() == 0) t.set_learning_rate(0.1);
  if (!t.has_l2()) t.set_l2(1.0);
  if (!t.has_min_child_weight()) t.set_min_child_weight(1.0);
  if (t.max_bins() == 0) t.set_max_bins(64);
  if (!t.has_early_stopping_trees()) t.set_early_stopping_trees(10);
  if (t.positive_weight() == 0) t.set_positive_weight(1.0);
  if (t.step_deadline_seconds() == 0) t.set_step_deadline_seconds(60);
  auto bad = [](const std::string& field, const auto& value, const std::string& range) {
    return absl::InvalidArgumentError(
        absl::StrCat("trees.", field, ": ", value, " is not in ", range));
  };
  if (t.trees() > 2000) return bad("trees", t.trees(), "1..2000");
  if (t.max_depth() > trees::kMaxTreeDepth) return bad("max_depth", t.max_depth(), "1..8");
  if (!(t.learning_rate() > 0 && t.learning_rate() <= 1)) {
    return bad("learning_rate", t.learning_rate(), "(0, 1]");
  }
  if (!(t.l2() >= 0 && std::isfinite(t.l2()))) return bad("l2", t.l2(), "[0, inf)");
  if (!(t.min_child_weight() >= 0 && std::isfinite(t.min_child_weight()))) {
    return bad("min_child_weight", t.min_child_weight(), "[0, inf)");
  }
  if (t.max_bins() < 2 || t.max_bins() > 256) return bad("max_bins", t.max_bins(), "2..256");
  if (!(t.positive_weight() > 0 && t.positive_weight() <= 1000)) {
    return bad("positive_weight", t.positive_weight(), "(0, 1000]");
  }
  if (t.step_deadline_seconds() > 3600) {
    return bad("step_deadline_seconds", t.step_deadline_seconds(), "1..3600");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status FinalizeRiskModelConfig(v1::RiskModelConfig* config) {
  if (config->kind() == v1::RiskModelConfig::BOOSTED_TREES)
    return FinalizeBoostedTreesConfig(config);
  if (config->has_trees()) {
    return absl::InvalidArgumentError("trees applies to kind BOOSTED_TREES only");
  }
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
  if (config.kind() == v1::RiskModelConfig::BOOSTED_TREES) {
    // No tree yet: every declaration scores the base score 0 (p = 0.5) until
    // the first session. Bins are fixed by each session.
    trees::TreeEnsemble empty;
    empty.bins.numeric_edges.resize(static_cast<size_t>(numeric));
    for (uint32_t b : buckets) {
      empty.bins.categorical_bins.push_back(std::min(b, trees::kMaxCategoricalBins));
    }
    return models::BoostedTreesState(empty);
  }
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
