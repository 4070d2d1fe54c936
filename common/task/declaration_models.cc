#include "common/task/declaration_models.h"

#include <cstdint>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/task/risk_task.h"

namespace fedcustoms::task {

absl::StatusOr<models::RiskMlp> MakeRiskModel(const ModelSpec& spec) {
  int64_t numeric = 0;
  std::vector<uint32_t> buckets;
  FeatureWidths(spec.schema, &numeric, &buckets);
  absl::StatusOr<std::vector<models::CrossColumns>> crosses =
      ResolveCrosses(spec.schema, spec.risk);
  if (!crosses.ok()) return crosses.status();
  if (absl::Status s = models::CheckRiskMlpArgs(numeric, buckets, spec.risk, *crosses); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot build the risk model for this schema: ", s.message()));
  }
  return models::RiskMlp(numeric, buckets, spec.risk, 1, *std::move(crosses));
}

absl::StatusOr<models::AnomalyAutoencoder> MakeAnomalyModel(const ModelSpec& spec) {
  int64_t numeric = 0;
  std::vector<uint32_t> buckets;
  FeatureWidths(spec.schema, &numeric, &buckets);
  if (absl::Status s = models::CheckAnomalyAutoencoderArgs(numeric, buckets, spec.anomaly);
      !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot build the anomaly model for this schema: ", s.message()));
  }
  return models::AnomalyAutoencoder(numeric, buckets, spec.anomaly, 1);
}

}  // namespace fedcustoms::task
