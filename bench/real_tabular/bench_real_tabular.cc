// bench/real_tabular: does the federation beat what one analyst fits alone,
// on real data? The table is Lending Club's 2016 Q1 loans from Debian's
// r-cran-modeldata (9 857 rows, 5.2 % defaults, 17 numeric and 5 categorical
// columns), split by US Census region into four "administrations"
// (prepare_lending_club.py), and cross-validated: in each of 5 folds every
// region holds out a fifth of its loans, so every loan is scored once, by
// models that never saw it. For each of our model kinds it trains, in every
// fold, on the same split and scored on the same hold-outs:
//   federated   real coordinator and node processes over mutual TLS, mode
//               secure, --rounds rounds; the released version (the best on
//               the nodes' validation splits, what `fedcustoms pull` takes);
//   local-only  each region alone, as many epochs as the federation's rounds;
//   pooled      every region's training rows in one place, same epochs;
// (for the gradient-boosted trees, federated is one boosting session whose
// trees the coordinator grows from the members' masked sums); then
// reference_models.py fits scikit-learn's logistic regression and
// HistGradientBoostingClassifier pooled and local-only, then judges every
// model with one implementation: PR-AUC and ROC-AUC per region with 95 %
// bootstrap intervals, and each model's mean PR-AUC against the best pooled
// scikit-learn model (paired bootstrap). Issue 22's target: our best
// federated model's interval of that difference reaches 0 or above, and every
// region's federated model beats its local-only one.
//
//   build/bin/bench_real_tabular [--rounds 10] [--kinds mlp,logistic,trees] [--folds 5]
//       [--validation-fraction 0.1] [--weight-decay W] [--resamples 1000]
//       [--workdir /tmp/fedcustoms-real-tabular]
#include <google/protobuf/util/json_util.h>
#include <signal.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/models/boosted_trees_state.h"
#include "common/pki/dev_pki.h"
#include "common/task/declaration_models.h"
#include "common/task/risk_task.h"
#include "common/task/task_model.h"
#include "common/tensor/named_tensors.h"
#include "common/training/risk_evaluator.h"
#include "common/trees/boosted_trees_trainer.h"
#include "node/config/node_config.h"
#include "node/learner/declaration_learner.h"
#include "tools/demo/child_process.h"
#include "tools/demo/dev_federation.h"

namespace fedcustoms::bench {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::vector<std::string> kRegions = {"NE", "MW", "SO", "WE"};

struct Options {
  uint32_t rounds = 10;
  uint32_t folds = 5;
  double validation_fraction = 0.1;
  // Added to our neural models' training when >= 0 (TrainingConfig.weight_decay).
  double weight_decay = -1;
  // Bootstrap resamples of the judge (reference_models.py).
  uint32_t resamples = 1000;
  std::vector<std::string> kinds = {"mlp", "logistic", "trees"};
  std::string workdir = (fs::temp_directory_path() / "fedcustoms-real-tabular").string();
};

// One of our model kinds with the training it runs with: the demo's settings,
// as a new user would start.
struct ModelKind {
  std::string name;
  json model;
  json training;
};

absl::StatusOr<ModelKind> KindByName(const std::string& name) {
  if (name == "mlp") {
    return ModelKind{name,
                     {{"hidden_units", {64, 32}}, {"embedding_dim", 8}, {"dropout", 0.1}},
                     {{"local_epochs", 2},
                      {"batch_size", 128},
                      {"learning_rate", 0.006},
                      {"optimizer", "adam"},
                      {"seed", 11}}};
  }
  if (name == "logistic") {
    return ModelKind{name,
                     {{"kind", "LOGISTIC"}},
                     {{"local_epochs", 2},
                      {"batch_size", 128},
                      {"learning_rate", 0.006},
                      {"optimizer", "adam"},
                      {"seed", 11}}};
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--kinds: unknown model kind \"", name, "\" (expected mlp, logistic or trees)"));
}

// A node config of `admin` for the task "risk" reading `data_file`.
// `holdout_fraction` is the fold's share, so the node's split holds out
// exactly the fold (its file lists the fold last).
json NodeJson(const std::string& pki, const std::string& admin, const std::string& address,
              const std::string& dir, const std::string& data_file, const std::string& schema,
              double holdout_fraction) {
  json node = tools::DevNodeConfig(pki, admin, address, "risk", dir);
  node["data_file"] = data_file;
  node["schema_file"] = schema;
  node["holdout_fraction"] = holdout_fraction;
  node["reproducible_training"] = true;
  return node;
}

absl::StatusOr<std::unique_ptr<node::DeclarationLearner>> MakeLearner(const json& node_json,
                                                                      const std::string& path) {
  if (absl::Status s = tools::WriteJsonFile(path, node_json); !s.ok()) return s;
  auto config = node::LoadNodeConfig(path);
  if (!config.ok()) return config.status();
  return node::DeclarationLearner::Create(*config);
}

// The task config's finalized form (defaults applied), as nodes receive it.
absl::StatusOr<v1::TaskConfig> TaskConfigOf(const ModelKind& kind, const std::string& schema) {
  v1::TaskConfig config;
  config.set_name("risk");
  config.set_schema_file(schema);
  if (!google::protobuf::util::JsonStringToMessage(kind.training.dump(), config.mutable_training())
           .ok() ||
      !google::protobuf::util::JsonStringToMessage(kind.model.dump(), config.mutable_model())
           .ok()) {
    return absl::InternalError("the bench's own model or training config does not parse");
  }
  if (absl::Status s = task::FinalizeTrainingConfig(config.mutable_training()); !s.ok()) return s;
  if (absl::Status s = task::FinalizeTaskModel(&config); !s.ok()) return s;
  return config;
}

// One fold of the cross-validation: each region's learner (its data and
// split) and the pooled learner, whose hold-out is every region's.
struct Fold {
  std::string dir;                        // <workdir>/data/fold<k>
  std::vector<double> holdout_fractions;  // by region
  std::vector<std::unique_ptr<node::DeclarationLearner>> learners;
  std::unique_ptr<node::DeclarationLearner> pooled;
};

absl::StatusOr<Fold> LoadFold(const Options& o, const json& split, uint32_t k,
                              const std::string& pki, const std::string& schema) {
  Fold fold;
  fold.dir = absl::StrCat(o.workdir, "/data/fold", k);
  const json& regions = split["folds"][k];
  uint64_t rows = 0, holdout_rows = 0;
  std::error_code ec;
  for (const std::string& r : kRegions) {
    const uint64_t n = regions[r]["rows"].get<uint64_t>();
    const uint64_t h = regions[r]["holdout_rows"].get<uint64_t>();
    rows += n;
    holdout_rows += h;
    fold.holdout_fractions.push_back(static_cast<double>(h) / static_cast<double>(n));
    const std::string dir = absl::StrCat(o.workdir, "/local/fold", k, "/", r);
    fs::create_directories(dir, ec);
    auto learner = MakeLearner(
        NodeJson(pki, r, "localhost:1", dir, absl::StrCat(fold.dir, "/", r, "/declarations.csv"),
                 schema, fold.holdout_fractions.back()),
        dir + "/node.json");
    if (!learner.ok()) return learner.status();
    if ((*learner)->data().split.holdout.size() != h) {
      return absl::InternalError(absl::StrCat(r, "'s split does not hold out fold ", k));
    }
    fold.learners.push_back(*std::move(learner));
  }
  // The pooled file lists every training row first, then every hold-out.
  const std::string dir = absl::StrCat(o.workdir, "/local/fold", k, "/pooled");
  fs::create_directories(dir, ec);
  auto pooled = MakeLearner(
      NodeJson(pki, kRegions[0], "localhost:1", dir, fold.dir + "/pooled/declarations.csv", schema,
               static_cast<double>(holdout_rows) / static_cast<double>(rows)),
      dir + "/node.json");
  if (!pooled.ok()) return pooled.status();
  if ((*pooled)->data().split.holdout.size() != holdout_rows) {
    return absl::InternalError(absl::StrCat("the pooled split does not hold out fold ", k));
  }
  fold.pooled = *std::move(pooled);
  return fold;
}

// Runs the federation of `kind` over the four regions of `fold`; returns
// the final global state and adds the seconds it took to `*seconds`.
absl::StatusOr<tensor::NamedTensors> RunFederation(const Options& o, const ModelKind& kind,
                                                   const std::string& pki, const Fold& fold,
                                                   const std::string& schema, double* seconds) {
  const std::string root = absl::StrCat(o.workdir, "/federation-", kind.name);
  std::error_code ec;
  fs::remove_all(root, ec);
  json coordinator = tools::DevCoordinatorConfig(pki, root,
                                                 json::array({{{"name", "risk"},
                                                               {"min_nodes", kRegions.size()},
                                                               {"rounds", o.rounds},
                                                               {"round_deadline_seconds", 600},
                                                               {"eval_deadline_seconds", 300},
                                                               {"gather_seconds", 1},
                                                               {"schema_file", schema},
                                                               {"training", kind.training},
                                                               {"model", kind.model}}}));
  absl::StatusOr<double> ran = tools::RunProcessFederation(
      root, coordinator, kRegions,
      [&](const std::string& region, const std::string& address, const std::string& dir) {
        const size_t k = static_cast<size_t>(std::find(kRegions.begin(), kRegions.end(), region) -
                                             kRegions.begin());
        json node = NodeJson(pki, region, address, dir,
                             absl::StrCat(fold.dir, "/", region, "/declarations.csv"), schema,
                             fold.holdout_fractions[k]);
        // A tenth of the training rows chooses the released version.
        node["validation_fraction"] = o.validation_fraction;
        return node;
      });
  if (!ran.ok()) return ran.status();
  *seconds += *ran;
  // The released version, as `fedcustoms pull` takes it: the one the latest
  // manifest names (the best on the nodes' validation splits).
  uint64_t latest = 0;
  for (const auto& entry : fs::directory_iterator(root + "/registry/risk", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() == 9 && name[0] == 'v')
      latest = std::max<uint64_t>(latest, std::stoull(name.substr(1)));
  }
  std::ifstream manifest_in(absl::StrFormat("%s/registry/risk/v%08u/manifest.json", root, latest));
  const json manifest = json::parse(manifest_in, nullptr, false);
  if (manifest.is_discarded())
    return absl::InternalError(absl::StrCat(root, ": no readable manifest"));
  const uint64_t released = manifest.contains("release")
                                ? manifest["release"]["released_version"].get<uint64_t>()
                                : latest;
  std::printf("    released version %llu of %llu\n", static_cast<unsigned long long>(released),
              static_cast<unsigned long long>(latest));
  return tensor::LoadPickledState(
      absl::StrFormat("%s/registry/risk/v%08u/model.pt", root, released));
}

// Appends the scores of `state` on the hold-out of each of `learners` (all
// of them, or only region `only` when it is not negative) to `out` as
// region,id,label,score lines.
absl::Status AppendScores(const task::ModelSpec& spec, const tensor::NamedTensors& state,
                          const std::vector<std::unique_ptr<node::DeclarationLearner>>& learners,
                          int only, std::ofstream& out) {
  auto model = task::MakeRiskModel(spec);
  if (!model.ok()) return model.status();
  if (absl::Status s = tensor::LoadState(**model, state); !s.ok()) return s;
  for (size_t k = 0; k < learners.size(); ++k) {
    if (only >= 0 && static_cast<size_t>(only) != k) continue;
    const node::LocalData& d = learners[k]->data();
    std::vector<float> scores = training::PredictRisk(*model, d.table, d.split.holdout);
    for (size_t i = 0; i < scores.size(); ++i) {
      const int64_t row = d.split.holdout[i];
      out << kRegions[k] << ',' << d.table.ids[row] << ',' << d.table.labels[row] << ','
          << absl::StrFormat("%.9g", scores[i]) << '\n';
    }
  }
  if (!out) return absl::UnavailableError("cannot write a scores file");
  return absl::OkStatus();
}

std::string Interval(const json& m, const char* key) {
  return absl::StrFormat("%.3f [%.3f, %.3f]", m[key].get<double>(),
                         m[absl::StrCat(key, "_ci")][0].get<double>(),
                         m[absl::StrCat(key, "_ci")][1].get<double>());
}

// Trains and scores one of our model kinds in every fold: federated, pooled
// and local-only, into <scores_dir>/<kind> <variant>.csv.
absl::Status RunKind(const Options& o, const ModelKind& kind, const std::string& pki,
                     const std::string& schema, std::vector<Fold>& folds,
                     const std::string& scores_dir, json& timing) {
  auto config = TaskConfigOf(kind, schema);
  if (!config.ok()) return config.status();
  v1::TaskAssignment assignment;
  assignment.set_task("risk");
  task::CopyModelConfig(task::SpecOf(*config, v1::DeclarationSchema()), &assignment);
  const task::ModelSpec spec = folds[0].learners[0]->SpecOf(assignment);
  const uint32_t epochs = o.rounds * config->training().local_epochs();
  std::ofstream federated_out(absl::StrCat(scores_dir, "/", kind.name, " federated.csv"));
  std::ofstream pooled_out(absl::StrCat(scores_dir, "/", kind.name, " pooled.csv"));
  std::ofstream local_out(absl::StrCat(scores_dir, "/", kind.name, " local-only.csv"));
  for (std::ofstream* out : {&federated_out, &pooled_out, &local_out}) {
    *out << "region,id,label,score\n";
  }
  double federated_seconds = 0;
  for (size_t k = 0; k < folds.size(); ++k) {
    std::printf(
        "  %s, fold %zu/%zu: federated (%u rounds, mode secure), pooled and local-only "
        "(%u epochs)\n",
        kind.name.c_str(), k + 1, folds.size(), o.rounds, epochs);
    auto federated = RunFederation(o, kind, pki, folds[k], schema, &federated_seconds);
    if (!federated.ok()) return federated.status();
    if (absl::Status s = AppendScores(spec, *federated, folds[k].learners, -1, federated_out);
        !s.ok()) {
      return s;
    }
    auto pooled = folds[k].pooled->TrainFromScratch(spec, config->training(), epochs);
    if (!pooled.ok()) return pooled.status();
    if (absl::Status s = AppendScores(spec, *pooled, folds[k].learners, -1, pooled_out); !s.ok()) {
      return s;
    }
    for (size_t r = 0; r < kRegions.size(); ++r) {
      auto local = folds[k].learners[r]->TrainFromScratch(spec, config->training(), epochs);
      if (!local.ok()) return local.status();
      if (absl::Status s =
              AppendScores(spec, *local, folds[k].learners, static_cast<int>(r), local_out);
          !s.ok()) {
        return s;
      }
    }
  }
  timing[kind.name + " federated"] = federated_seconds;
  return absl::OkStatus();
}

// Gradient-boosted trees (common/trees/) in every fold: federated (one
// boosting session, real processes, mode secure: the members' vectors are
// masked, the coordinator grows the trees from their sums), local-only and
// pooled (the last tenth of each training split stops the boosting early,
// the rest trains). Scores into <scores_dir>/trees *.csv.
absl::Status RunTrees(const Options& o, const std::string& pki, const std::string& schema,
                      std::vector<Fold>& folds, const std::string& scores_dir,
                      const trees::BoostingParams& params, json& timing) {
  std::ofstream federated_out(scores_dir + "/trees federated.csv");
  std::ofstream pooled_out(scores_dir + "/trees pooled.csv");
  std::ofstream local_out(scores_dir + "/trees local-only.csv");
  for (std::ofstream* out : {&federated_out, &pooled_out, &local_out}) {
    *out << "region,id,label,score\n";
  }
  double pooled_seconds = 0, federated_seconds = 0;
  // The task's defaults are BoostingParams' (100 trees of depth 6, 64 bins,
  // early stopping after 10 trees without a better validation loss).
  const ModelKind federated_kind{"trees", {{"kind", "BOOSTED_TREES"}}, json::object()};
  Options one_session = o;
  one_session.rounds = 1;
  auto rows_of = [](const node::LocalData& d) {
    const std::vector<int64_t>& train = d.split.train;
    const auto cut = static_cast<ptrdiff_t>(train.size() - train.size() / 10);
    return trees::BoostingRows(d.table, std::vector<int64_t>(train.begin(), train.begin() + cut),
                               std::vector<int64_t>(train.begin() + cut, train.end()));
  };
  auto score = [](const trees::TreeEnsemble& model, const node::LocalData& d,
                  const std::string& region, std::ofstream& out) {
    const std::vector<float> p = trees::PredictProbabilities(model, d.table, d.split.holdout);
    for (size_t i = 0; i < d.split.holdout.size(); ++i) {
      const int64_t row = d.split.holdout[i];
      out << region << ',' << d.table.ids[row] << ',' << d.table.labels[row] << ','
          << absl::StrFormat("%.9g", p[i]) << '\n';
    }
  };
  for (size_t k = 0; k < folds.size(); ++k) {
    std::printf(
        "  trees, fold %zu/%zu: federated (one session, mode secure), pooled and local-only (up "
        "to %u trees of depth %u)\n",
        k + 1, folds.size(), params.trees, params.tree.max_depth);
    auto federated =
        RunFederation(one_session, federated_kind, pki, folds[k], schema, &federated_seconds);
    if (!federated.ok()) return federated.status();
    auto federated_model = models::BoostedTreesFromState(*federated);
    if (!federated_model.ok()) return federated_model.status();
    std::printf("    %zu trees\n", federated_model->trees.size());
    for (size_t r = 0; r < kRegions.size(); ++r) {
      score(*federated_model, folds[k].learners[r]->data(), kRegions[r], federated_out);
    }
    trees::BoostingRows pooled = rows_of(folds[k].pooled->data());
    trees::BoostingRows* one[] = {&pooled};
    const auto start = std::chrono::steady_clock::now();
    auto model = trees::TrainBoostedTrees(one, params);
    if (!model.ok()) return model.status();
    pooled_seconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (size_t r = 0; r < kRegions.size(); ++r) {
      score(model->ensemble, folds[k].learners[r]->data(), kRegions[r], pooled_out);
      trees::BoostingRows local = rows_of(folds[k].learners[r]->data());
      trees::BoostingRows* alone[] = {&local};
      auto local_model = trees::TrainBoostedTrees(alone, params);
      if (!local_model.ok()) return local_model.status();
      score(local_model->ensemble, folds[k].learners[r]->data(), kRegions[r], local_out);
    }
  }
  timing["trees pooled"] = pooled_seconds;
  timing["trees federated"] = federated_seconds;
  if (!federated_out || !pooled_out || !local_out) {
    return absl::UnavailableError("cannot write the trees' scores");
  }
  return absl::OkStatus();
}

// Prints the judge's table and the targets.
void PrintResults(const Options& o, const json& results) {
  std::printf(
      "\nhold-out PR-AUC per region, every loan scored once (95 %% bootstrap interval "
      "of the mean over regions)\n");
  std::printf("%-42s", "model");
  for (const std::string& r : kRegions) std::printf(" %6s", r.c_str());
  std::printf("  %-22s %-22s %s\n", "mean PR-AUC", "mean ROC-AUC", "PR-AUC - best sklearn pooled");
  for (const auto& [name, m] : results["models"].items()) {
    std::printf("%-42s", name.c_str());
    for (const std::string& r : kRegions) std::printf(" %6.3f", m[r]["pr_auc"].get<double>());
    const json& vs = m["mean"]["vs_best_sklearn_pooled"];
    std::printf("  %-22s %-22s %+.3f [%+.3f, %+.3f]\n", Interval(m["mean"], "pr_auc").c_str(),
                Interval(m["mean"], "roc_auc").c_str(), vs["difference"].get<double>(),
                vs["ci"][0].get<double>(), vs["ci"][1].get<double>());
  }
  std::printf("best pooled scikit-learn model: %s\n",
              results["best_sklearn_pooled"].get<std::string>().c_str());
  for (const std::string& kind_name : o.kinds) {
    if (!results["models"].contains(kind_name + " federated")) continue;
    const json& fed = results["models"][kind_name + " federated"];
    const json& local = results["models"][kind_name + " local-only"];
    std::vector<std::string> losers;
    for (const std::string& r : kRegions) {
      if (!(fed[r]["pr_auc"].get<double>() > local[r]["pr_auc"].get<double>())) {
        losers.push_back(r);
      }
    }
    const json& vs = fed["mean"]["vs_best_sklearn_pooled"];
    std::printf(
        "%s federated: %s the best pooled scikit-learn model (difference %+.3f, "
        "interval [%+.3f, %+.3f]); beats its local-only model in %s\n",
        kind_name.c_str(), vs["ci"][1].get<double>() >= 0 ? "as good as" : "WORSE than",
        vs["difference"].get<double>(), vs["ci"][0].get<double>(), vs["ci"][1].get<double>(),
        losers.empty() ? "every region"
                       : absl::StrCat("all but ", absl::StrJoin(losers, ", ")).c_str());
  }
}

absl::Status Run(const Options& o) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  torch::set_num_threads(2);
  std::error_code ec;
  fs::create_directories(o.workdir, ec);
  const std::string data = o.workdir + "/data";
  const std::string scores_dir = o.workdir + "/scores";
  fs::remove_all(data, ec);
  fs::remove_all(scores_dir, ec);
  fs::create_directories(scores_dir, ec);
  const std::string prepare =
      absl::StrCat("/usr/bin/python3 " FEDCUSTOMS_BENCH_DIR "/prepare_lending_club.py --out ", data,
                   " --folds ", o.folds, " > ", o.workdir, "/prepare.log 2>&1");
  if (std::system(prepare.c_str()) != 0) {
    return absl::UnavailableError(
        absl::StrCat("prepare_lending_club.py failed; see ", o.workdir, "/prepare.log"));
  }
  std::ifstream split_in(data + "/split.json");
  const json split = json::parse(split_in, nullptr, false);
  if (split.is_discarded()) return absl::InternalError(data + "/split.json does not parse");
  std::printf(
      "Lending Club 2016 Q1 (Debian r-cran-modeldata) by US Census region, %u-fold "
      "cross-validation:\n",
      o.folds);
  for (const std::string& r : kRegions) {
    const json& s = split["folds"][0][r];
    std::printf("  %s: %d loans, %d defaults\n", r.c_str(), s["rows"].get<int>(),
                s["positives"].get<int>());
  }
  const std::string pki = o.workdir + "/pki";
  pki::DevPkiOptions pki_options;
  pki_options.dir = pki;
  pki_options.admins = kRegions;
  pki_options.force = true;
  if (absl::Status s = pki::InitDevPki(pki_options); !s.ok()) return s;
  const std::string schema = data + "/lending_club.schema.json";
  std::vector<Fold> folds;
  for (uint32_t k = 0; k < o.folds; ++k) {
    auto fold = LoadFold(o, split, k, pki, schema);
    if (!fold.ok()) return fold.status();
    folds.push_back(*std::move(fold));
  }
  json timing = json::object();
  for (const std::string& kind_name : o.kinds) {
    if (kind_name == "trees") {
      trees::BoostingParams params;
      if (absl::Status s = RunTrees(o, pki, schema, folds, scores_dir, params, timing); !s.ok()) {
        return s;
      }
      continue;
    }
    auto kind = KindByName(kind_name);
    if (!kind.ok()) return kind.status();
    if (o.weight_decay >= 0) kind->training["weight_decay"] = o.weight_decay;
    if (absl::Status s = RunKind(o, *kind, pki, schema, folds, scores_dir, timing); !s.ok()) {
      return s;
    }
  }
  std::printf("scikit-learn references and the judge (reference_models.py)...\n");
  const std::string results_path = o.workdir + "/results.json";
  const std::string judge =
      absl::StrCat("/usr/bin/python3 " FEDCUSTOMS_BENCH_DIR "/reference_models.py --data ", data,
                   " --scores ", scores_dir, " --out ", results_path, " --resamples ", o.resamples,
                   " > ", o.workdir, "/judge.log 2>&1");
  if (std::system(judge.c_str()) != 0) {
    return absl::UnavailableError(
        absl::StrCat("reference_models.py failed; see ", o.workdir, "/judge.log"));
  }
  std::ifstream results_in(results_path);
  json results = json::parse(results_in, nullptr, false);
  if (results.is_discarded()) return absl::InternalError(results_path + " does not parse");
  results["seconds"] = timing;
  PrintResults(o, results);
  std::ofstream(results_path) << results.dump(2);
  std::printf("results: %s\n", results_path.c_str());
  return absl::OkStatus();
}

}  // namespace
}  // namespace fedcustoms::bench

int main(int argc, char** argv) {
  CLI::App app{"federated, local-only and pooled models against scikit-learn on Lending Club"};
  fedcustoms::bench::Options o;
  app.add_option("--rounds", o.rounds, "federated rounds")->capture_default_str();
  app.add_option("--folds", o.folds, "cross-validation folds (>= 2)")->capture_default_str();
  app.add_option("--validation-fraction", o.validation_fraction,
                 "federated nodes' validation split (0: release the newest version)")
      ->capture_default_str();
  app.add_option("--kinds", o.kinds, "our model kinds: mlp, logistic, trees")->delimiter(',');
  app.add_option("--workdir", o.workdir)->capture_default_str();
  app.add_option("--resamples", o.resamples, "bootstrap resamples of the intervals")
      ->capture_default_str();
  app.add_option("--weight-decay", o.weight_decay,
                 "weight_decay of the MLP and logistic training (default: the task's default)");
  CLI11_PARSE(app, argc, argv);
  if (absl::Status s = fedcustoms::bench::Run(o); !s.ok()) {
    std::fprintf(stderr, "bench_real_tabular: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  return 0;
}
