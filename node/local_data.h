#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/data/declaration_table.h"
#include "common/metrics/selection_counts.h"
#include "fedcustoms/v1/config.pb.h"
#include "fedcustoms/v1/schema.pb.h"

namespace fedcustoms::node {

// The administration's own data, loaded once: schema, encoded declarations and
// the deterministic train / hold-out split. Never leaves the node.
struct LocalData {
  v1::DeclarationSchema schema;
  std::string feature_schema_hash;
  data::DeclarationTable table;
  data::Split split;
  // How each row was selected for control, from the schema's SELECTION column,
  // classified with metrics::ClassifySelection and the node's
  // random_selection_value; empty when the schema has no SELECTION column or
  // the CSV lacks it.
  std::vector<metrics::SelectionKind> selection;
};

// Loads the schema and CSV named in the node config and splits them; errors
// name the file, line and column. `need_labels`: the schema must have a LABEL
// column (the risk task learns from control results; the anomaly task uses
// labels only to evaluate).
absl::StatusOr<LocalData> LoadLocalData(const v1::NodeConfig& config, bool need_labels);

}  // namespace fedcustoms::node
