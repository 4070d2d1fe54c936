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
  auto table = data::ReadDeclarationsCsv(config.data_file(), local.schema, config.bad_row_policy());
  if (!table.ok()) return table.status();
  local.table = *std::move(table);
  if (need_labels && !local.table.has_labels()) {
    return absl::InvalidArgumentError(absl::StrCat(
        config.schema_file(), ": the risk task needs a LABEL column (the control result)"));
  }
  if (local.table.rows < 10) {
    return absl::InvalidArgumentError(absl::StrCat(config.data_file(), ": only ", local.table.rows,
                                                   " usable rows; a node needs at least 10"));
  }
  local.split = data::DeterministicSplit(local.table, config.holdout_fraction());
  return local;
}

}  // namespace fedcustoms::node
