// bench/boosted_trees: what secure aggregation costs federated trees, and how
// long the federation takes next to scikit-learn on the pooled rows. A
// table of the size (100 000 rows x 30 numeric features, made here
// from a seed by make_boosting_data.py) split over 3 administrations; real
// coordinator and node processes over mutual TLS on loopback grow 100 trees
// of depth 6 (no early stopping, so both modes do the same work):
//   trusted  the nodes send plain vectors;
//   secure   one signed key agreement per session, then every vector is
//            fixed-point encoded and masked (the coordinator holds only the
//            running sum);
// then the same trees in this process from the pooled rows
// (trees::TrainBoostedTrees, no network), and hgb_reference.py's
// HistGradientBoostingClassifier on the same pooled training rows with the
// same settings. Printed: wall seconds and hold-out PR-AUC / ROC-AUC of each,
// the secure / trusted ratio (issue 22's target: at most 2), and whether the
// two federated ensembles are the same trees.
//
//   build/bin/bench_boosted_trees [--rows 100000] [--features 30] [--trees 100]
//       [--depth 6] [--workdir /tmp/fedcustoms-boosted-trees]
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/metrics/binary_metrics.h"
#include "common/models/boosted_trees_state.h"
#include "common/pki/dev_pki.h"
#include "common/tensor/named_tensors.h"
#include "common/trees/boosted_trees_trainer.h"
#include "common/trees/tree_ensemble.h"
#include "node/config/node_config.h"
#include "node/learner/declaration_learner.h"
#include "tools/demo/dev_federation.h"

namespace fedcustoms::bench {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::vector<std::string> kAdmins = {"EE", "FI", "LV"};
constexpr double kHoldout = 0.2;

struct Options {
  uint32_t rows = 100000;
  uint32_t features = 30;
  uint32_t trees = 100;
  uint32_t depth = 6;
  std::string workdir = (fs::temp_directory_path() / "fedcustoms-boosted-trees").string();
};

struct Run {
  double seconds = 0;
  trees::TreeEnsemble ensemble;
};

json NodeJson(const std::string& pki, const std::string& data, const std::string& admin,
              const std::string& address, const std::string& dir, const std::string& mode) {
  json node = tools::DevNodeConfig(pki, admin, address, "risk", dir);
  node["data_file"] = absl::StrCat(data, "/", admin, "/declarations.csv");
  node["schema_file"] = data + "/boosting.schema.json";
  node["holdout_fraction"] = kHoldout;
  node["aggregation_mode"] = mode;
  return node;
}

// One boosting session in `mode` ("TRUSTED" or "SECURE").
absl::StatusOr<Run> RunFederation(const Options& o, const std::string& pki, const std::string& data,
                                  const std::string& mode) {
  const std::string root = absl::StrCat(o.workdir, "/federation-", mode);
  std::error_code ec;
  fs::remove_all(root, ec);
  json coordinator =
      tools::DevCoordinatorConfig(pki, root,
                                  json::array({{{"name", "risk"},
                                                {"min_nodes", kAdmins.size()},
                                                {"rounds", 1},
                                                {"eval_deadline_seconds", 600},
                                                {"gather_seconds", 1},
                                                {"schema_file", data + "/boosting.schema.json"},
                                                {"model",
                                                 {{"kind", "BOOSTED_TREES"},
                                                  {"trees",
                                                   {{"trees", o.trees},
                                                    {"max_depth", o.depth},
                                                    {"early_stopping_trees", 0},
                                                    {"step_deadline_seconds", 600}}}}}}}));
  coordinator["aggregation_mode"] = mode;
  absl::StatusOr<double> seconds = tools::RunProcessFederation(
      root, coordinator, kAdmins,
      [&](const std::string& admin, const std::string& address, const std::string& dir) {
        return NodeJson(pki, data, admin, address, dir, mode);
      });
  if (!seconds.ok()) return seconds.status();
  auto state = tensor::LoadPickledState(root + "/registry/risk/v00000001/model.pt");
  if (!state.ok()) return state.status();
  auto ensemble = models::BoostedTreesFromState(*state);
  if (!ensemble.ok()) return ensemble.status();
  return Run{*seconds, *std::move(ensemble)};
}

// Mean of the administrations' hold-out metrics would hide the pooled
// figure HistGradientBoosting reports: score every hold-out row together.
v1::EvaluationMetrics PooledHoldout(
    const trees::TreeEnsemble& model,
    const std::vector<std::unique_ptr<node::DeclarationLearner>>& learners) {
  std::vector<float> scores, labels;
  for (const auto& l : learners) {
    const node::LocalData& d = l->data();
    const std::vector<float> p = trees::PredictProbabilities(model, d.table, d.split.holdout);
    scores.insert(scores.end(), p.begin(), p.end());
    for (int64_t r : d.split.holdout) labels.push_back(d.table.labels[r]);
  }
  return metrics::ComputeBinaryMetrics(scores, labels, 0);
}

bool SameTrees(const trees::TreeEnsemble& a, const trees::TreeEnsemble& b) {
  if (a.trees.size() != b.trees.size()) return false;
  for (size_t t = 0; t < a.trees.size(); ++t) {
    const auto& x = a.trees[t].nodes;
    const auto& y = b.trees[t].nodes;
    if (x.size() != y.size()) return false;
    for (size_t k = 0; k < x.size(); ++k) {
      if (x[k].left != y[k].left || x[k].feature != y[k].feature ||
          x[k].threshold_bin != y[k].threshold_bin || std::abs(x[k].value - y[k].value) > 1e-5) {
        return false;
      }
    }
  }
  return true;
}

absl::Status Run(const Options& o) {
  std::error_code ec;
  fs::create_directories(o.workdir, ec);
  const std::string data = o.workdir + "/data";
  std::printf("making %u rows x %u features over %zu administrations...\n", o.rows, o.features,
              kAdmins.size());
  const std::string make = absl::StrCat(
      "/usr/bin/python3 " FEDCUSTOMS_BENCH_DIR "/make_boosting_data.py --out ", data, " --rows ",
      o.rows, " --features ", o.features, " > ", o.workdir, "/data.log 2>&1");
  if (std::system(make.c_str()) != 0) {
    return absl::UnavailableError(
        absl::StrCat("make_boosting_data.py failed; see ", o.workdir, "/data.log"));
  }
  const std::string pki = o.workdir + "/pki";
  pki::DevPkiOptions pki_options;
  pki_options.dir = pki;
  pki_options.admins = kAdmins;
  pki_options.force = true;
  if (absl::Status s = pki::InitDevPki(pki_options); !s.ok()) return s;

  std::vector<std::unique_ptr<node::DeclarationLearner>> learners;
  for (const std::string& admin : kAdmins) {
    const std::string path = absl::StrCat(o.workdir, "/learner-", admin, ".json");
    if (absl::Status s = tools::WriteJsonFile(
            path, NodeJson(pki, data, admin, "localhost:1", o.workdir + "/unused", "TRUSTED"));
        !s.ok()) {
      return s;
    }
    auto config = node::LoadNodeConfig(path);
    if (!config.ok()) return config.status();
    auto learner = node::DeclarationLearner::Create(*config);
    if (!learner.ok()) return learner.status();
    learners.push_back(*std::move(learner));
  }

  std::printf("federated, mode TRUSTED (%u trees of depth %u)...\n", o.trees, o.depth);
  auto trusted = RunFederation(o, pki, data, "TRUSTED");
  if (!trusted.ok()) return trusted.status();
  std::printf("federated, mode SECURE...\n");
  auto secure = RunFederation(o, pki, data, "SECURE");
  if (!secure.ok()) return secure.status();

  std::printf("the same trees in this process from the pooled rows...\n");
  std::vector<std::unique_ptr<trees::BoostingRows>> rows;
  std::vector<trees::BoostingRows*> parties;
  for (const auto& l : learners) {
    rows.push_back(std::make_unique<trees::BoostingRows>(l->data().table, l->data().split.train,
                                                         std::vector<int64_t>{}));
    parties.push_back(rows.back().get());
  }
  trees::BoostingParams params;
  params.trees = o.trees;
  params.tree.max_depth = o.depth;
  params.early_stopping_trees = 0;
  const auto start = std::chrono::steady_clock::now();
  auto in_process = trees::TrainBoostedTrees(parties, params);
  if (!in_process.ok()) return in_process.status();
  const double in_process_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::printf("scikit-learn HistGradientBoostingClassifier on the pooled rows...\n");
  const std::string hgb_out = o.workdir + "/hgb.json";
  const std::string hgb = absl::StrCat(
      "/usr/bin/python3 " FEDCUSTOMS_BENCH_DIR "/hgb_reference.py --data ", data, " --trees ",
      o.trees, " --depth ", o.depth, " > ", hgb_out, " 2> ", o.workdir, "/hgb.log");
  if (std::system(hgb.c_str()) != 0) {
    return absl::UnavailableError(
        absl::StrCat("hgb_reference.py failed; see ", o.workdir, "/hgb.log"));
  }
  std::ifstream hgb_in(hgb_out);
  const json reference = json::parse(hgb_in, nullptr, false);
  if (reference.is_discarded()) return absl::InternalError(hgb_out + " does not parse");

  const v1::EvaluationMetrics mt = PooledHoldout(trusted->ensemble, learners);
  const v1::EvaluationMetrics ms = PooledHoldout(secure->ensemble, learners);
  const v1::EvaluationMetrics mp = PooledHoldout(in_process->ensemble, learners);
  std::printf("\n%u trees of depth %u, %u rows x %u features, 3 administrations on loopback\n",
              o.trees, o.depth, o.rows, o.features);
  std::printf("%-48s %10s %8s %8s\n", "", "seconds", "PR-AUC", "ROC-AUC");
  std::printf("%-48s %10.2f %8.4f %8.4f\n", "federated, mode TRUSTED (plain vectors)",
              trusted->seconds, mt.pr_auc(), mt.roc_auc());
  std::printf("%-48s %10.2f %8.4f %8.4f\n", "federated, mode SECURE (masked vectors)",
              secure->seconds, ms.pr_auc(), ms.roc_auc());
  std::printf("%-48s %10.2f %8.4f %8.4f\n", "our trees in one process, pooled rows",
              in_process_seconds, mp.pr_auc(), mp.roc_auc());
  std::printf("%-48s %10.2f %8.4f %8.4f\n", "scikit-learn HistGradientBoosting, pooled rows",
              reference["seconds"].get<double>(), reference["pr_auc"].get<double>(),
              reference["roc_auc"].get<double>());
  std::printf("secure / trusted wall time: %.2f (target: at most 2)\n",
              secure->seconds / trusted->seconds);
  std::printf("the secure and trusted federations grew %s trees\n",
              SameTrees(secure->ensemble, trusted->ensemble) ? "the same" : "DIFFERENT");
  std::printf(
      "(the seconds of a federation run from the coordinator's start to the last node's\n"
      " exit: key agreement, every step, the nodes' evaluation and publication.)\n");
  return absl::OkStatus();
}

}  // namespace
}  // namespace fedcustoms::bench

int main(int argc, char** argv) {
  CLI::App app{"federated boosted trees: mode secure against trusted, and scikit-learn"};
  fedcustoms::bench::Options o;
  app.add_option("--rows", o.rows, "rows over the three administrations")->capture_default_str();
  app.add_option("--features", o.features, "numeric features")->capture_default_str();
  app.add_option("--trees", o.trees, "trees to grow")->capture_default_str();
  app.add_option("--depth", o.depth, "depth of each tree")->capture_default_str();
  app.add_option("--workdir", o.workdir)->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (absl::Status s = fedcustoms::bench::Run(o); !s.ok()) {
    std::fprintf(stderr, "bench_boosted_trees: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  return 0;
}
