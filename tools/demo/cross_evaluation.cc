#include "tools/demo/cross_evaluation.h"

#include <cstdio>

namespace fedcustoms::tools {

absl::StatusOr<nlohmann::json> CrossEvaluate(const task::ModelSpec& spec,
                                             const std::vector<NamedModel>& models,
                                             const std::vector<HoldOut>& hold_outs) {
  nlohmann::json result{{"hold_outs", nlohmann::json::array()},
                        {"models", nlohmann::json::object()}};
  std::printf("      %-16s", "PR-AUC on");
  for (const HoldOut& h : hold_outs) {
    result["hold_outs"].push_back(h.admin);
    std::printf(" %8s", h.admin.c_str());
  }
  std::printf(" %8s\n", "mean");
  for (const NamedModel& m : models) {
    nlohmann::json row;
    double sum = 0;
    std::printf("      %-16s", m.name.c_str());
    for (const HoldOut& h : hold_outs) {
      auto metrics = h.learner->Evaluate(spec, m.state);
      if (!metrics.ok()) return metrics.status();
      row[h.admin] = metrics->pr_auc();
      sum += metrics->pr_auc();
      std::printf(" %8.4f", metrics->pr_auc());
    }
    const double mean = hold_outs.empty() ? 0.0 : sum / static_cast<double>(hold_outs.size());
    row["mean"] = mean;
    std::printf(" %8.4f\n", mean);
    result["models"][m.name] = row;
  }
  return result;
}

}  // namespace fedcustoms::tools
