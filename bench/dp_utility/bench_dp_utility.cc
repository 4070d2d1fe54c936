// bench/dp_utility: the privacy–utility curve a data protection officer
// needs. The federated risk model is trained on the synthetic declarations
// (3 administrations, real coordinator and node processes over mutual TLS,
// mode secure: `fedcustoms demo --task risk`) with DP-SGD at each ε of
// --epsilons (δ = 1e-5, clip norm 1, the noise calibrated by each node to
// spend ε over the rounds, the demo's DP settings: logistic regression with
// the HS heading x origin cross, SGD, batch 1024, 20 epochs a round) and
// without DP (ε = ∞, the demo's MLP). Two non-private local-only references,
// each administration alone on the same data: the demo's MLP (from the run
// without DP) and the same logistic model as the private runs (from the
// first private run). Prints hold-out PR-AUC per administration at every ε,
// the ε each signed manifest states, and whether the private federated model
// beats every administration's local-only model of each kind (issue 21's
// target at ε = 8).
//
// With --fmnist, the X-ray CNN's point too: bench_fmnist_noniid's federation
// (10 nodes, Dirichlet 0.5 split of Fashion-MNIST, real processes, mode
// secure) trained with DP-SGD at ε = --fmnist-epsilon, beside each node's
// non-private local-only CNN on the official test set (batch 256, Adam at
// 0.002, 3 local epochs a round, 15 rounds; about 35 minutes, most of it the
// local-only runs).
//
//   build/bin/bench_dp_utility [--epsilons 1,3,8] [--rounds 5] [--rows 80000]
//       [--workdir /tmp/fedcustoms-dp-utility] [--fmnist] [--fmnist-epsilon 8]
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace fedcustoms::bench {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string ExecutableDir() {
  std::error_code ec;
  return fs::read_symlink("/proc/self/exe", ec).parent_path().string();
}

// Runs the demo at `epsilon` (0: no DP) in `dir`; returns its summary.json.
// The demo exits 1 when the federated model loses to a local-only one: that
// is a result here, not an error, as long as the summary was written.
json RunDemo(const std::string& fedcustoms, double epsilon, uint32_t rounds, uint64_t rows,
             const std::string& dir) {
  std::error_code ec;
  fs::remove(dir + "/summary.json", ec);
  const std::string command = absl::StrCat(
      fedcustoms, " demo --task risk --rounds ", rounds, " --rows ", rows, " --workdir ", dir,
      epsilon > 0 ? absl::StrCat(" --epsilon ", epsilon) : std::string(), " > ", dir, ".log 2>&1");
  const int status = std::system(command.c_str());
  std::ifstream in(dir + "/summary.json");
  if (!in) {
    std::fprintf(stderr,
                 "bench_dp_utility: the demo at epsilon %g failed (status %d); see %s.log\n",
                 epsilon, status, dir.c_str());
    std::exit(1);
  }
  return json::parse(in);
}

int Run(int argc, char** argv) {
  CLI::App app{"privacy-utility curve of the federated risk model"};
  std::vector<double> epsilons = {1, 3, 8};
  uint32_t rounds = 5;
  uint64_t rows = 80000;
  std::string workdir = (fs::temp_directory_path() / "fedcustoms-dp-utility").string();
  app.add_option("--epsilons", epsilons, "target epsilons (plus no DP)")->delimiter(',');
  app.add_option("--rounds", rounds)->capture_default_str();
  app.add_option("--rows", rows, "rows of the largest administration")->capture_default_str();
  app.add_option("--workdir", workdir)->capture_default_str();
  bool fmnist = false;
  double fmnist_epsilon = 8;
  app.add_flag("--fmnist", fmnist, "also the X-ray CNN on non-IID Fashion-MNIST");
  app.add_option("--fmnist-epsilon", fmnist_epsilon)->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  fs::create_directories(workdir);
  const std::string fedcustoms = ExecutableDir() + "/fedcustoms";

  std::vector<std::pair<double, json>> runs;
  for (double e : epsilons) {
    std::fprintf(stderr, "bench_dp_utility: demo at epsilon %g...\n", e);
    runs.emplace_back(e, RunDemo(fedcustoms, e, rounds, rows, absl::StrCat(workdir, "/eps-", e)));
  }
  std::fprintf(stderr, "bench_dp_utility: demo without DP...\n");
  runs.emplace_back(INFINITY, RunDemo(fedcustoms, 0, rounds, rows, workdir + "/no-dp"));

  const json& reference = runs.back().second["nodes"];
  const json& same_model = runs.front().second["nodes"];
  std::printf(
      "bench_dp_utility: federated risk model, 3 administrations, mode secure, %u rounds, "
      "synthetic declarations (largest %llu rows); hold-out PR-AUC\n",
      rounds, static_cast<unsigned long long>(rows));
  std::printf("  %-14s %-14s", "epsilon", "manifest eps");
  for (const auto& [admin, unused] : reference.items()) std::printf(" %8s", admin.c_str());
  std::printf("  beats every local-only MLP / logistic\n");
  std::map<std::string, double> local_mlp, local_logistic;
  std::printf("  %-14s %-14s", "local MLP", "(no DP)");
  for (const auto& [admin, node] : reference.items()) {
    local_mlp[admin] = node["local_only"].value("pr_auc", 0.0);
    std::printf(" %8.4f", local_mlp[admin]);
  }
  std::printf("\n  %-14s %-14s", "local logistic", "(no DP)");
  for (const auto& [admin, node] : same_model.items()) {
    local_logistic[admin] = node["local_only"].value("pr_auc", 0.0);
    std::printf(" %8.4f", local_logistic[admin]);
  }
  std::printf("\n");
  for (const auto& [epsilon, summary] : runs) {
    const json& privacy = summary["privacy"];
    const std::string stated =
        privacy.is_object() && privacy.contains("epsilon") && privacy["epsilon"].is_number()
            ? absl::StrCat(privacy["epsilon"].get<double>())
            : std::string("none");
    std::printf("  %-14s %-14s", std::isinf(epsilon) ? "inf (MLP)" : absl::StrCat(epsilon).c_str(),
                stated.substr(0, 12).c_str());
    bool beats_mlp = true, beats_logistic = true;
    for (const auto& [admin, node] : summary["nodes"].items()) {
      const double fed = node["federated"].value("pr_auc", 0.0);
      std::printf(" %8.4f", fed);
      beats_mlp = beats_mlp && fed > local_mlp[admin];
      beats_logistic = beats_logistic && fed > local_logistic[admin];
    }
    std::printf("  %s / %s\n", beats_mlp ? "yes" : "no", beats_logistic ? "yes" : "no");
  }
  if (!fmnist) {
    std::printf("  Fashion-MNIST (X-ray CNN): run with --fmnist (about 35 minutes)\n");
    return 0;
  }
  // The CNN: bench_fmnist_noniid's federation under DP-SGD and its
  // local-only runs, its last line parsed.
  const std::string log = workdir + "/fmnist.log";
  const std::string command = absl::StrCat(
      ExecutableDir(), "/bench_fmnist_noniid --skip-centralized --skip-fedprox --epsilon ",
      fmnist_epsilon, " --batch 256 --lr 0.002 --local-epochs 3 --workdir ", workdir, "/fmnist > ",
      log, " 2>&1");
  std::fprintf(stderr, "bench_dp_utility: Fashion-MNIST at epsilon %g...\n", fmnist_epsilon);
  const int status = std::system(command.c_str());
  std::ifstream in(log);
  std::string line, last;
  while (std::getline(in, line)) {
    if (line.rfind("FedAvg", 0) == 0) last = line;
  }
  if (status != 0 || last.empty()) {
    std::fprintf(stderr, "bench_dp_utility: bench_fmnist_noniid failed (status %d); see %s\n",
                 status, log.c_str());
    return 1;
  }
  std::printf("  Fashion-MNIST non-IID, 10 nodes, X-ray CNN, test accuracy: %s\n", last.c_str());
  return 0;
}

}  // namespace
}  // namespace fedcustoms::bench

int main(int argc, char** argv) {
  try {
    return fedcustoms::bench::Run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_dp_utility: %s\n", e.what());
    return 1;
  }
}
