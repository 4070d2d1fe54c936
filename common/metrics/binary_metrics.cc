#include "common/metrics/binary_metrics.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>

namespace fedcustoms::metrics {

v1::EvaluationMetrics ComputeBinaryMetrics(std::span<const float> scores,
                                           std::span<const float> labels, double loss) {
  assert(scores.size() == labels.size());
  const size_t n = std::min(scores.size(), labels.size());
  std::vector<float> key(n);
  std::vector<size_t> order(n);
  uint64_t positives = 0;
  for (size_t i = 0; i < n; ++i) {
    key[i] = std::isnan(scores[i]) ? -std::numeric_limits<float>::infinity() : scores[i];
    order[i] = i;
    if (labels[i] > 0.5f) ++positives;
  }
  // Highest score first; the lower index first among equals.
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return key[a] > key[b] || (key[a] == key[b] && a < b); });
  const uint64_t negatives = n - positives;

  v1::EvaluationMetrics m;
  m.set_examples(n);
  m.set_positives(positives);
  m.set_loss(loss);

  // One pass over groups of tied scores, from high to low.
  double auc_pairs = 0;  // positive-negative pairs ranked right, ties counting 1/2
  double average_precision = 0;
  uint64_t tp = 0, fp = 0;
  for (size_t begin = 0; begin < n;) {
    size_t end = begin;
    uint64_t group_tp = 0, group_fp = 0;
    while (end < n && key[order[end]] == key[order[begin]]) {
      if (labels[order[end]] > 0.5f)
        ++group_tp;
      else
        ++group_fp;
      ++end;
    }
    const uint64_t negatives_below = negatives - fp - group_fp;
    auc_pairs += static_cast<double>(group_tp) *
                 (static_cast<double>(negatives_below) + 0.5 * static_cast<double>(group_fp));
    tp += group_tp;
    fp += group_fp;
    if (group_tp > 0) {
      average_precision += (static_cast<double>(group_tp) / static_cast<double>(positives)) *
                           (static_cast<double>(tp) / static_cast<double>(tp + fp));
    }
    begin = end;
  }
  if (positives == 0 || negatives == 0) {
    m.set_roc_auc(0.5);
    m.set_pr_auc(n == 0 ? 0.0 : static_cast<double>(positives) / static_cast<double>(n));
  } else {
    m.set_roc_auc(auc_pairs / (static_cast<double>(positives) * static_cast<double>(negatives)));
    // A sum of P terms of 1/P each can round above 1 (a perfect ranking); the
    // coordinator refuses metrics outside [0, 1].
    m.set_pr_auc(std::min(1.0, average_precision));
  }

  for (uint32_t percent : kBudgetPercents) {
    const size_t top = (static_cast<uint64_t>(percent) * n + 99) / 100;
    uint64_t hits = 0;
    for (size_t r = 0; r < top; ++r) {
      if (labels[order[r]] > 0.5f) ++hits;
    }
    v1::AtBudget* b = m.add_at_budget();
    b->set_percent(percent);
    b->set_precision(top == 0 ? 0.0 : static_cast<double>(hits) / static_cast<double>(top));
    b->set_recall(positives == 0 ? 0.0
                                 : static_cast<double>(hits) / static_cast<double>(positives));
  }
  return m;
}

v1::EvaluationMetrics WeightedMeanMetrics(const std::vector<v1::EvaluationMetrics>& reports) {
  v1::EvaluationMetrics mean;
  if (reports.empty()) return mean;
  uint64_t examples = 0, positives = 0, flagged = 0;
  for (const v1::EvaluationMetrics& r : reports) {
    examples += r.examples();
    positives += r.positives();
    flagged += r.flagged();
  }
  auto weight = [&](const v1::EvaluationMetrics& r) {
    return examples == 0 ? 1.0 : static_cast<double>(r.examples());
  };
  double total = 0, roc = 0, pr = 0, loss = 0, accuracy = 0;
  struct Budget {
    double weight = 0, precision = 0, recall = 0;
  };
  std::map<uint32_t, Budget> budgets;
  for (const v1::EvaluationMetrics& r : reports) {
    const double w = weight(r);
    total += w;
    roc += w * r.roc_auc();
    pr += w * r.pr_auc();
    loss += w * r.loss();
    accuracy += w * r.accuracy();
    for (const v1::AtBudget& b : r.at_budget()) {
      Budget& sum = budgets[b.percent()];
      sum.weight += w;
      sum.precision += w * b.precision();
      sum.recall += w * b.recall();
    }
  }
  mean.set_examples(examples);
  mean.set_positives(positives);
  mean.set_flagged(flagged);
  // Random-control counts pool across nodes; only counts taken at one budget
  // add up, so reports at another budget than the first are left out.
  for (const v1::EvaluationMetrics& r : reports) {
    if (!r.has_selection()) continue;
    v1::SelectionEvaluation* pooled = mean.mutable_selection();
    if (pooled->budget_percent() == 0) pooled->set_budget_percent(r.selection().budget_percent());
    if (r.selection().budget_percent() != pooled->budget_percent()) continue;
    for (auto [from, to] :
         {std::pair{&r.selection().random(), pooled->mutable_random()},
          std::pair{&r.selection().risk_selected(), pooled->mutable_risk_selected()}}) {
      to->set_rows(to->rows() + from->rows());
      to->set_positives(to->positives() + from->positives());
      to->set_flagged(to->flagged() + from->flagged());
      to->set_flagged_positives(to->flagged_positives() + from->flagged_positives());
    }
  }
  if (total > 0) {
    mean.set_accuracy(accuracy / total);
    mean.set_roc_auc(roc / total);
    mean.set_pr_auc(pr / total);
    mean.set_loss(loss / total);
  }
  for (const auto& [percent, sum] : budgets) {
    v1::AtBudget* b = mean.add_at_budget();
    b->set_percent(percent);
    if (sum.weight > 0) {
      b->set_precision(sum.precision / sum.weight);
      b->set_recall(sum.recall / sum.weight);
    }
  }
  // Validation: PR-AUC weighs by positives (a split without positives has no
  // precision-recall curve and must not pull the mean towards 0), the rest
  // by examples.
  double v_examples = 0, v_positives = 0, v_roc = 0, v_pr = 0, v_loss = 0;
  for (const v1::EvaluationMetrics& r : reports) {
    if (!r.has_validation()) continue;
    const v1::ValidationMetrics& v = r.validation();
    v_examples += static_cast<double>(v.examples());
    v_positives += static_cast<double>(v.positives());
    v_roc += static_cast<double>(v.examples()) * v.roc_auc();
    v_loss += static_cast<double>(v.examples()) * v.loss();
    v_pr += static_cast<double>(v.positives()) * v.pr_auc();
  }
  if (v_examples > 0) {
    v1::ValidationMetrics* v = mean.mutable_validation();
    v->set_examples(static_cast<uint64_t>(v_examples));
    v->set_positives(static_cast<uint64_t>(v_positives));
    v->set_roc_auc(v_roc / v_examples);
    v->set_loss(v_loss / v_examples);
    if (v_positives > 0) v->set_pr_auc(v_pr / v_positives);
  }
  return mean;
}

}  // namespace fedcustoms::metrics
