#include "analyst/report/declarations_report.h"

#include <ctime>
#include <filesystem>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "analyst/model/declaration_scorer.h"
#include "analyst/model/pulled_model.h"
#include "analyst/report/report_html.h"
#include "common/data/declaration_schema.h"
#include "common/data/declarations_csv.h"
#include "common/io/atomic_file.h"

namespace fedcustoms::analyst {

absl::StatusOr<DeclarationsReportSummary> ReportDeclarationsFile(
    const DeclarationsReportOptions& options) {
  if (options.by.empty()) {
    return absl::InvalidArgumentError("by: name at least one column, e.g. origin_country");
  }
  auto schema = data::LoadDeclarationSchema(options.schema_json);
  if (!schema.ok()) return schema.status();
  auto model = LoadPulledModel(options.model_dir, options.public_key, *schema);
  if (!model.ok()) return model.status();
  auto scorer = DeclarationScorer::Create(*model);
  if (!scorer.ok()) return scorer.status();

  data::ReadOptions read;
  read.raw_columns = options.by;
  const std::string selection_column = data::SelectionColumnName(*schema);
  if (!selection_column.empty()) read.raw_columns.push_back(selection_column);
  auto table = data::ReadDeclarationsCsv(options.data_csv, *schema, read);
  if (!table.ok()) return table.status();
  if (!table->has_labels()) {
    return absl::InvalidArgumentError(
        absl::StrCat(options.schema_json,
                     ": the report needs a LABEL column (the control result) to judge the model"));
  }
  std::vector<int64_t> rows(table->rows);
  std::iota(rows.begin(), rows.end(), 0);
  auto scores = scorer->Score(*table, rows);
  if (!scores.ok()) return scores.status();

  report::ScoredDeclarations input;
  input.scores = *std::move(scores);
  input.labels = table->labels;
  input.options = options.report;
  for (size_t k = 0; k < options.by.size(); ++k) {
    input.group_columns.push_back({options.by[k], std::move(table->raw_columns[k].values)});
  }
  if (!selection_column.empty()) input.selection = std::move(table->raw_columns.back().values);
  auto built = report::BuildGroupReport(input);
  if (!built.ok()) return built.status();

  DeclarationsReportSummary summary;
  summary.model = absl::StrCat(model->manifest.task, " v", model->manifest.version);
  summary.json_path = options.out_prefix + ".json";
  summary.html_path = options.out_prefix + ".html";
  nlohmann::json json = report::GroupReportToJson(*built);
  json["model"] = {{"task", model->manifest.task},
                   {"version", model->manifest.version},
                   {"feature_schema_hash", model->manifest.feature_schema_hash}};
  json["data_file"] = options.data_csv;
  report::ReportPageInfo page;
  page.title = absl::StrCat("Bias and random-control report: ", summary.model);
  page.model = summary.model;
  page.data_file = std::filesystem::path(options.data_csv).filename().string();
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char generated[32];
  std::strftime(generated, sizeof generated, "%Y-%m-%d %H:%M UTC", &utc);
  page.generated_at = generated;
  if (absl::Status s = io::WriteFileAtomically(summary.json_path, json.dump(2) + "\n"); !s.ok()) {
    return s;
  }
  if (absl::Status s =
          io::WriteFileAtomically(summary.html_path, report::RenderGroupReportHtml(*built, page));
      !s.ok()) {
    return s;
  }
  summary.report = *std::move(built);
  return summary;
}

}  // namespace fedcustoms::analyst
