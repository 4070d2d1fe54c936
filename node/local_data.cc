#include "node/local_data.h"

#include "absl/strings/str_cat.h"
#include "common/data/declaration_schema.h"
#include "common/data/declarations_csv.h"

namespace fedcustoms::node {

absl::StatusOr<LocalData> LoadLocalData(const v1::NodeConfig& config, bool need_labels) {
  LocalData local;
  auto schema = data::LoadDeclarationSchema(config.schema_file());
  if (!schema.ok()) return schema.status();
  local.schema = *std::move(schema);
  local.feature_schema_hash = data::FeatureSchemaHash(local.schema);
  data::ReadOptions read;
  read.policy = config.bad_row_policy();
  const std::string selection_column = data::SelectionColumnName(local.schema);
  if (!selection_column.empty()) read.raw_columns.push_back(selection_column);
  // A node whose CSV lacks the SELECTION column still trains; it reports no
  // random-control counts.
  read.raw_columns_optional = true;
  auto table = data::ReadDeclarationsCsv(config.data_file(), local.schema, read);
  if (!table.ok()) return table.status();
  local.table = *std::move(table);
  if (const auto* column = local.table.raw_column(selection_column)) {
    // One byte per row instead of the strings.
    const std::string random =
        config.random_selection_value().empty() ? "random" : config.random_selection_value();
    local.selection.reserve(column->values.size());
    for (const std::string& v : column->values) {
      local.selection.push_back(metrics::ClassifySelection(v, random));
    }
  }
  local.table.raw_columns.clear();
  if (need_labels && !local.table.has_labels()) {
    return absl::InvalidArgumentError(absl::StrCat(
        config.schema_file(), ": the risk task needs a LABEL column (the control result)"));
  }
  if (local.table.rows < 10) {
    return absl::InvalidArgumentError(absl::StrCat(config.data_file(), ": only ", local.table.rows,
                                                   " usable rows; a node needs at least 10"));
  }
  // Only the risk task chooses versions on a validation split; the anomaly
  // task trains on every training row.
  local.split = data::DeterministicSplit(local.table, config.holdout_fraction(),
                                         need_labels ? config.validation_fraction() : 0.0);
  return local;
}

}  // namespace fedcustoms::node
