#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "common/data/declaration_table.h"
#include "common/models/risk_mlp.h"

namespace fedcustoms::training {

// P(non-compliant) of each of `rows` of `table`, in that order: the sigmoid of
// the model's logits, in eval mode under NoGradGuard, in batches (memory stays
// O(batch)). Leaves the model in eval mode. Precondition: the table fits the
// model and the rows are valid (CheckRows() with need_labels=false); violations
// throw c10::Error. Labels are not needed.
std::vector<float> PredictRisk(models::RiskMlp& model, const data::DeclarationTable& table,
                               std::span<const int64_t> rows);

// Mean unweighted binary cross-entropy of the model on `rows` (eval mode, no
// gradients): a loss comparable across nodes whatever their positive rate.
// InvalidArgument when the rows do not fit (see CheckRows), or when `rows` is
// empty.
absl::StatusOr<double> MeanBceLoss(models::RiskMlp& model, const data::DeclarationTable& table,
                                   std::span<const int64_t> rows);

}  // namespace fedcustoms::training
