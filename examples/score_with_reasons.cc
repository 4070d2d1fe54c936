// The library calls a targeting system makes to score declarations with a
// pulled risk model and give each score its reasons (README "Analysts").
//   score_with_reasons MODEL_DIR COORDINATOR_SIGNING_PUB SCHEMA_JSON DECLARATIONS_CSV [N]
// prints the first N (default 5) declarations with their risk and top three
// reasons. Exit code 1 with the error on any failure, or when a declaration's
// reasons do not add up to its score minus the baseline's.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "analyst/explain/declaration_explainer.h"
#include "analyst/model/pulled_model.h"
#include "common/data/declaration_schema.h"
#include "common/data/declarations_csv.h"

namespace fc = fedcustoms;

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr,
                 "usage: %s MODEL_DIR COORDINATOR_SIGNING_PUB SCHEMA_JSON DECLARATIONS_CSV [N]\n",
                 argv[0]);
    return 2;
  }
  auto fail = [](const absl::Status& s) {
    std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
    return 1;
  };
  auto schema = fc::data::LoadDeclarationSchema(argv[3]);
  if (!schema.ok()) return fail(schema.status());
  // Verifies the coordinator's signature and the weights' SHA-256 first.
  auto model = fc::analyst::LoadPulledModel(argv[1], argv[2], *schema);
  if (!model.ok()) return fail(model.status());
  auto explainer = fc::analyst::DeclarationExplainer::Create(*model);
  if (!explainer.ok()) return fail(explainer.status());
  auto table = fc::data::ReadDeclarationsCsv(argv[4], *schema, fc::v1::FAIL);
  if (!table.ok()) return fail(table.status());

  // Reasons are measured from the file's average declaration.
  std::vector<int64_t> all(table->rows);
  std::iota(all.begin(), all.end(), 0);
  if (absl::Status s = explainer->SetReference(*table, all); !s.ok()) return fail(s);
  const size_t n = std::min<size_t>(argc > 5 ? std::stoul(argv[5]) : 5, table->rows);
  const std::vector<int64_t> rows(all.begin(), all.begin() + static_cast<int64_t>(n));
  auto explanations = explainer->Explain(*table, rows);
  if (!explanations.ok()) return fail(explanations.status());

  const std::vector<std::string>& features = explainer->feature_names();
  for (size_t i = 0; i < n; ++i) {
    const fc::analyst::Explanation& e = (*explanations)[i];
    std::vector<size_t> order(features.size());
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return std::abs(e.contributions[a]) > std::abs(e.contributions[b]);
    });
    std::printf("%s risk %.3f (average declaration %.3f); reasons:",
                table->ids.empty() ? std::to_string(i + 1).c_str() : table->ids[i].c_str(), e.score,
                e.baseline_score);
    for (size_t k = 0; k < std::min<size_t>(3, order.size()); ++k) {
      std::printf(" %s %+.3f", features[order[k]].c_str(), e.contributions[order[k]]);
    }
    std::printf("\n");
    // The guarantee an officer relies on: the reasons add up to the score's
    // distance from the average declaration, up to the reported gap.
    const double sum = std::accumulate(e.contributions.begin(), e.contributions.end(), 0.0);
    if (std::abs(sum - (e.score - e.baseline_score)) > e.completeness_gap + 1e-5) {
      std::fprintf(stderr, "reasons of declaration %zu do not add up\n", i + 1);
      return 1;
    }
  }
  return 0;
}
