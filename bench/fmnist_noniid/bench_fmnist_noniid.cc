// bench/fmnist_noniid: does federated training learn as well as pooled
// training, on public data split the way administrations' data are (skewed)?
//
// Fashion-MNIST (Debian's dataset-fashion-mnist) is split over `--nodes` nodes
// by a Dirichlet(--alpha) label distribution with a fixed seed; the same CNN
// (common/models/xray_cnn.h) is then trained
//   (a) centralized on the pooled training set, one epoch at a time;
//   (b) federated, FedAvg and FedProx, through real fedcustoms-coordinator and
//       fedcustoms-node processes over mutual TLS on loopback in mode secure,
//       each node reading its own IDX files (task kind xray);
//   (c) local-only: each node alone on its share, for as many epochs as it
//       trains in the federation;
// and every model is scored on the official 10'000-image test set. Prints
// accuracy per round / epoch, the final figures and the rounds to 80 %.
//
//   build/bin/bench_fmnist_noniid [--rounds 15] [--nodes 10] [--alpha 0.5]
//       [--local-epochs 1] [--batch 32] [--lr 0.001] [--mu 0.01]
//       [--channels 16,32] [--hidden 64] [--skip-fedprox] [--skip-local]
//       [--federated-only] [--skip-centralized] [--epsilon E]
//       [--workdir /tmp/fmnist-bench] [--data /usr/share/datasets/fashion-mnist]
#include <signal.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/io/atomic_file.h"
#include "common/models/xray_cnn.h"
#include "common/pki/dev_pki.h"
#include "common/task/task_model.h"
#include "common/tensor/named_tensors.h"
#include "common/training/xray_trainer.h"
#include "common/xray/idx_reader.h"
#include "common/xray/xray_model_config.h"
#include "tools/demo/child_process.h"
#include "tools/demo/dev_federation.h"

namespace fedcustoms::bench {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Options {
  uint32_t rounds = 15;
  uint32_t nodes = 10;
  double alpha = 0.5;
  uint32_t local_epochs = 1;
  uint32_t batch = 32;
  double lr = 0.001;
  double mu = 0.01;
  uint64_t seed = 1;
  std::vector<uint32_t> channels = {16, 32};
  uint32_t hidden = 64;
  std::string workdir = "/tmp/fmnist-bench";
  std::string data = "/usr/share/datasets/fashion-mnist";
  bool skip_fedprox = false;
  bool skip_local = false;
  // Only (b): for longer federated runs beside an earlier centralized one.
  bool federated_only = false;
  // (b) and (c) only: the private point of bench_dp_utility.
  bool skip_centralized = false;
  // > 0: the federation trains with DP-SGD at this target ε per node
  // (δ 1e-5, C 1, σ calibrated by each node over the rounds).
  double epsilon = 0;
};

const std::vector<std::string> kClasses = {"t-shirt", "trouser", "pullover", "dress", "coat",
                                           "sandal",  "shirt",   "sneaker",  "bag",   "boot"};

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// Gamma(shape, 1) by Marsaglia and Tsang (shape < 1 via the boost
// U^(1/shape)), from our own engine so the split is the same everywhere.
double Gamma(double shape, std::mt19937_64& rng) {
  auto uniform = [&] { return (static_cast<double>(rng() >> 11) + 0.5) * 0x1.0p-53; };
  auto normal = [&] {
    return std::sqrt(-2.0 * std::log(uniform())) * std::cos(2.0 * M_PI * uniform());
  };
  if (shape < 1) return Gamma(shape + 1, rng) * std::pow(uniform(), 1.0 / shape);
  const double d = shape - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
  while (true) {
    double x, v;
    do {
      x = normal();
      v = 1.0 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const double u = uniform();
    if (std::log(u) < 0.5 * x * x + d - d * v + d * std::log(v)) return d * v;
  }
}

// Item indexes per node: each class's items shuffled and cut by proportions
// drawn from Dirichlet(alpha) over the nodes (Hsu et al. 2019, as in most
// non-IID FL tables).
std::vector<std::vector<int64_t>> DirichletSplit(const std::vector<int32_t>& labels, uint32_t nodes,
                                                 double alpha, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::vector<int64_t>> by_class(kClasses.size());
  for (size_t i = 0; i < labels.size(); ++i) by_class[labels[i]].push_back(static_cast<int64_t>(i));
  std::vector<std::vector<int64_t>> parts(nodes);
  for (std::vector<int64_t>& items : by_class) {
    for (size_t i = items.size(); i > 1; --i) std::swap(items[i - 1], items[rng() % i]);
    std::vector<double> p(nodes);
    double sum = 0;
    for (double& x : p) sum += (x = Gamma(alpha, rng));
    size_t start = 0;
    double cumulative = 0;
    for (uint32_t k = 0; k < nodes; ++k) {
      cumulative += p[k] / sum;
      const size_t end = k + 1 == nodes
                             ? items.size()
                             : static_cast<size_t>(std::llround(cumulative * items.size()));
      parts[k].insert(parts[k].end(), items.begin() + start, items.begin() + end);
      start = end;
    }
  }
  for (auto& part : parts) std::sort(part.begin(), part.end());
  return parts;
}

void PutBigEndian(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

// Writes `items` of `data` as an IDX image file and an IDX label file (8-bit).
absl::Status WriteIdx(const xray::XrayDataset& data, const std::vector<int64_t>& items,
                      const std::string& images_path, const std::string& labels_path) {
  std::string images, labels;
  PutBigEndian(images, 0x00000803);
  PutBigEndian(images, static_cast<uint32_t>(items.size()));
  PutBigEndian(images, static_cast<uint32_t>(data.height));
  PutBigEndian(images, static_cast<uint32_t>(data.width));
  PutBigEndian(labels, 0x00000801);
  PutBigEndian(labels, static_cast<uint32_t>(items.size()));
  for (int64_t i : items) {
    const uint16_t* p = data.item(static_cast<size_t>(i));
    for (size_t k = 0; k < data.item_values(); ++k) images.push_back(static_cast<char>(p[k] / 257));
    labels.push_back(static_cast<char>(data.labels[static_cast<size_t>(i)]));
  }
  if (absl::Status s = io::WriteFileAtomically(images_path, images); !s.ok()) return s;
  return io::WriteFileAtomically(labels_path, labels);
}

struct Tensors {
  at::Tensor images, labels;
};

Tensors ToTensors(const xray::XrayDataset& data, const std::vector<int64_t>* items = nullptr) {
  const at::Tensor all = training::Uint16Images(data.pixels, static_cast<int64_t>(data.size()),
                                                data.channels, data.height, data.width);
  const at::Tensor labels =
      torch::tensor(std::vector<int64_t>(data.labels.begin(), data.labels.end()), torch::kInt64);
  if (!items) return {all, labels};
  const at::Tensor index = torch::tensor(*items, torch::kInt64);
  return {all.index_select(0, index), labels.index_select(0, index)};
}

absl::StatusOr<double> TestAccuracy(const v1::XrayModelConfig& config,
                                    const tensor::NamedTensors& state, const Tensors& test) {
  models::XrayCnn model(config, 1);
  if (absl::Status s = tensor::LoadState(*model, state); !s.ok()) return s;
  auto m = training::EvaluateXray(model, test.images, test.labels);
  if (!m.ok()) return m.status();
  return m->accuracy();
}

v1::TrainingConfig TrainingFor(const Options& o, uint32_t epochs, double mu) {
  v1::TrainingConfig t;
  t.set_local_epochs(epochs);
  t.set_batch_size(o.batch);
  t.set_learning_rate(o.lr);
  t.set_optimizer("adam");
  t.set_seed(o.seed);
  t.set_proximal_mu(mu);
  return t;
}

// The first round (1-based) whose accuracy reaches 80 %, or 0.
uint32_t RoundsTo80(const std::vector<double>& accuracy) {
  for (size_t i = 0; i < accuracy.size(); ++i) {
    if (accuracy[i] >= 0.8) return static_cast<uint32_t>(i + 1);
  }
  return 0;
}

std::string Admin(uint32_t k) { return std::string{'N', static_cast<char>('A' + k)}; }

// (b): one federation of real processes; test accuracy of each round's model.
absl::StatusOr<std::vector<double>> RunFederation(const Options& o, const std::string& name,
                                                  double mu, const v1::XrayModelConfig& model,
                                                  const Tensors& test, double* seconds) {
  const std::string root = absl::StrCat(o.workdir, "/", name);
  const std::string pki = o.workdir + "/pki";
  std::error_code ec;
  fs::remove_all(root, ec);
  fs::create_directories(root + "/logs", ec);
  json model_json{{"channels", o.channels},   {"image_size", 28},
                  {"hidden_units", o.hidden}, {"classes", kClasses},
                  {"no_augmentation", true},  {"pixel_encoding", "INTENSITY"}};
  json training{{"local_epochs", o.local_epochs},
                {"batch_size", o.batch},
                {"learning_rate", o.lr},
                {"optimizer", "adam"},
                {"seed", o.seed},
                {"proximal_mu", mu}};
  json coordinator = tools::DevCoordinatorConfig(pki, root,
                                                 json::array({{{"name", "fmnist"},
                                                               {"kind", "TASK_XRAY"},
                                                               {"min_nodes", o.nodes},
                                                               {"rounds", o.rounds},
                                                               {"round_deadline_seconds", 1800},
                                                               {"eval_deadline_seconds", 600},
                                                               {"gather_seconds", 1},
                                                               {"training", training},
                                                               {"xray_model", model_json}}}));
  if (o.epsilon > 0) {
    coordinator["tasks"][0]["privacy"] = {
        {"mode", "DP_SGD"}, {"target_epsilon", o.epsilon}, {"delta", 1e-5}, {"clip_norm", 1.0}};
  }
  if (absl::Status s = io::WriteFileAtomically(root + "/coordinator.json", coordinator.dump(2));
      !s.ok()) {
    return s;
  }
  const std::string bin = tools::ExecutableDir();
  const auto start = Clock::now();
  auto running = tools::StartCoordinatorProcess(root + "/coordinator.json", root + "/state/port",
                                                root + "/logs/coordinator.log");
  if (!running.ok()) return running.status();
  std::unique_ptr<tools::ChildProcess>& coord = running->process;
  const std::string& port = running->port;
  std::vector<std::unique_ptr<tools::ChildProcess>> nodes;
  for (uint32_t k = 0; k < o.nodes; ++k) {
    const std::string admin = Admin(k);
    const std::string dir = absl::StrCat(root, "/nodes/", admin);
    fs::create_directories(dir, ec);
    json node = tools::DevNodeConfig(pki, admin, "localhost:" + port, "fmnist", dir);
    node["task_kind"] = "TASK_XRAY";
    node["xray"] = {{"idx_images", absl::StrCat(o.workdir, "/data/", admin, "-images.idx")},
                    {"idx_labels", absl::StrCat(o.workdir, "/data/", admin, "-labels.idx")},
                    {"image_size", 28},
                    {"classes", kClasses}};
    node["holdout_fraction"] = 0.02;
    if (absl::Status s = io::WriteFileAtomically(dir + "/node.json", node.dump(2)); !s.ok()) {
      return s;
    }
    auto process =
        tools::ChildProcess::Spawn({bin + "/fedcustoms-node", "--config", dir + "/node.json"},
                                   absl::StrCat(root, "/logs/node-", admin, ".log"));
    if (!process.ok()) return process.status();
    nodes.push_back(*std::move(process));
  }
  for (uint32_t k = 0; k < o.nodes; ++k) {
    if (int code = nodes[k]->Wait(); code != 0) {
      return absl::InternalError(
          absl::StrCat("node ", Admin(k), " exited with ", code, "; see ", nodes[k]->log_path()));
    }
  }
  *seconds = Seconds(start);
  coord->Signal(SIGTERM);
  coord->Wait();
  std::vector<double> accuracy;
  for (uint32_t v = 1; v <= o.rounds; ++v) {
    auto state =
        tensor::LoadPickledState(absl::StrFormat("%s/registry/fmnist/v%08u/model.pt", root, v));
    if (!state.ok()) return state.status();
    auto a = TestAccuracy(model, *state, test);
    if (!a.ok()) return a.status();
    accuracy.push_back(*a);
    std::printf("  %-8s round %2u: test accuracy %.4f\n", name.c_str(), v, *a);
    std::fflush(stdout);
  }
  return accuracy;
}

absl::Status Run(const Options& o) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress lines show up in a log at once
  std::printf(
      "Fashion-MNIST, %u nodes, Dirichlet(alpha=%.2f) label split (seed %llu), CNN "
      "channels [%s] hidden %u, Adam lr %g, batch %u, %u local epoch(s), %u rounds\n",
      o.nodes, o.alpha, static_cast<unsigned long long>(o.seed),
      absl::StrJoin(o.channels, ",").c_str(), o.hidden, o.lr, o.batch, o.local_epochs, o.rounds);
  v1::XrayModelConfig model;
  for (uint32_t c : o.channels) model.add_channels(c);
  model.set_image_size(28);
  model.set_hidden_units(o.hidden);
  for (const std::string& c : kClasses) model.add_classes(c);
  model.set_no_augmentation(true);
  // Clothes on black, not transmission X-rays: the pixels go in as they are.
  model.set_pixel_encoding(v1::XrayModelConfig::INTENSITY);
  model = xray::WithXrayDefaults(model);
  if (absl::Status s = models::CheckXrayCnnConfig(model); !s.ok()) return s;

  auto train = xray::LoadIdxDataset(o.data + "/train-images-idx3-ubyte.gz",
                                    o.data + "/train-labels-idx1-ubyte.gz", model);
  if (!train.ok()) return train.status();
  auto test_data = xray::LoadIdxDataset(o.data + "/t10k-images-idx3-ubyte.gz",
                                        o.data + "/t10k-labels-idx1-ubyte.gz", model);
  if (!test_data.ok()) return test_data.status();
  const Tensors test = ToTensors(*test_data);
  const Tensors pooled = ToTensors(*train);

  // The split, written as each node's own IDX files.
  std::error_code ec;
  fs::create_directories(o.workdir + "/data", ec);
  const auto parts = DirichletSplit(train->labels, o.nodes, o.alpha, o.seed);
  std::printf("\nsplit (items per class per node):\n  node  total");
  for (size_t c = 0; c < kClasses.size(); ++c) std::printf(" %5zu", c);
  std::printf("\n");
  for (uint32_t k = 0; k < o.nodes; ++k) {
    std::vector<int> per_class(kClasses.size());
    for (int64_t i : parts[k]) ++per_class[train->labels[static_cast<size_t>(i)]];
    std::printf("  %-4s %6zu", Admin(k).c_str(), parts[k].size());
    for (int n : per_class) std::printf(" %5d", n);
    std::printf("\n");
    if (absl::Status s =
            WriteIdx(*train, parts[k], absl::StrCat(o.workdir, "/data/", Admin(k), "-images.idx"),
                     absl::StrCat(o.workdir, "/data/", Admin(k), "-labels.idx"));
        !s.ok()) {
      return s;
    }
  }
  pki::DevPkiOptions pki_options;
  pki_options.dir = o.workdir + "/pki";
  for (uint32_t k = 0; k < o.nodes; ++k) pki_options.admins.push_back(Admin(k));
  pki_options.force = true;
  if (absl::Status s = pki::InitDevPki(pki_options); !s.ok()) return s;

  task::ModelSpec spec;
  spec.kind = v1::TASK_XRAY;
  spec.xray = model;

  auto initial = task::InitialState(spec, o.seed);
  if (!initial.ok()) return initial.status();
  const uint32_t central_epochs = o.rounds * o.local_epochs;

  // (a) centralized and (c) local-only side by side, one core each: LibTorch
  // at one intra-op thread is faster for this small CNN than at two (the
  // node processes run at one thread too).
  torch::set_num_threads(1);
  std::printf(
      "\n(a) centralized, pooled %zu images, and (c) local-only, %u epochs on each "
      "node's own share, side by side (1 thread each)\n",
      train->size(), central_epochs);
  std::fflush(stdout);
  std::vector<double> centralized;
  double central_seconds = 0;
  absl::Status central_status;
  std::thread central_thread([&] {
    if (o.federated_only || o.skip_centralized) return;
    const auto start = Clock::now();
    models::XrayCnn central(model, 1);
    central_status = tensor::LoadState(*central, *initial);
    for (uint32_t e = 1; e <= central_epochs && central_status.ok(); ++e) {
      v1::TrainingConfig t = TrainingFor(o, 1, 0);
      t.set_seed(o.seed * 1000003 + e);
      auto r = training::TrainXrayModel(central, pooled.images, pooled.labels, t, false);
      if (!r.ok()) {
        central_status = r.status();
        break;
      }
      auto a = TestAccuracy(model, tensor::StateOf(*central), test);
      if (!a.ok()) {
        central_status = a.status();
        break;
      }
      centralized.push_back(*a);
      std::printf("  (a) epoch %2u: test accuracy %.4f (%.0f s)\n", e, *a, Seconds(start));
      std::fflush(stdout);
    }
    central_seconds = Seconds(start);
  });
  std::vector<double> local;
  absl::Status local_status;
  if (!o.skip_local && !o.federated_only) {
    for (uint32_t k = 0; k < o.nodes; ++k) {
      const Tensors mine = ToTensors(*train, &parts[k]);
      models::XrayCnn alone(model, 1);
      if (local_status = tensor::LoadState(*alone, *initial); !local_status.ok()) break;
      auto r = training::TrainXrayModel(alone, mine.images, mine.labels,
                                        TrainingFor(o, central_epochs, 0), false);
      if (!r.ok()) {
        local_status = r.status();
        break;
      }
      auto a = TestAccuracy(model, tensor::StateOf(*alone), test);
      if (!a.ok()) {
        local_status = a.status();
        break;
      }
      local.push_back(*a);
      std::printf("  (c) %-4s %6zu images: test accuracy %.4f\n", Admin(k).c_str(), parts[k].size(),
                  *a);
      std::fflush(stdout);
    }
  }
  central_thread.join();
  if (!central_status.ok()) return central_status;
  if (!local_status.ok()) return local_status;

  // (b) federated.
  std::printf("\n(b) federated through real processes (mode secure), 1 thread per node%s\n",
              o.epsilon > 0 ? absl::StrFormat(", DP-SGD at epsilon %g", o.epsilon).c_str() : "");
  double fedavg_seconds = 0, fedprox_seconds = 0;
  auto fedavg = RunFederation(o, "fedavg", 0, model, test, &fedavg_seconds);
  if (!fedavg.ok()) return fedavg.status();
  std::vector<double> fedprox;
  if (!o.skip_fedprox) {
    auto r = RunFederation(o, "fedprox", o.mu, model, test, &fedprox_seconds);
    if (!r.ok()) return r.status();
    fedprox = *r;
  }

  // Summary.
  if (o.federated_only) {
    std::printf("\nFedAvg after %u rounds: %.4f (best %.4f, 80 %% at round %u)\n", o.rounds,
                fedavg->back(), *std::max_element(fedavg->begin(), fedavg->end()),
                RoundsTo80(*fedavg));
    return absl::OkStatus();
  }
  if (o.skip_centralized) {
    const double mean =
        local.empty() ? 0 : std::accumulate(local.begin(), local.end(), 0.0) / local.size();
    std::printf(
        "\nFedAvg%s after %u rounds: %.4f (best %.4f); local-only without DP: mean %.4f, max "
        "%.4f\n",
        o.epsilon > 0 ? absl::StrFormat(" at epsilon %g", o.epsilon).c_str() : "", o.rounds,
        fedavg->back(), *std::max_element(fedavg->begin(), fedavg->end()), mean,
        local.empty() ? 0 : *std::max_element(local.begin(), local.end()));
    return absl::OkStatus();
  }
  const double c_final = centralized.back();
  const double c_best = *std::max_element(centralized.begin(), centralized.end());
  std::printf("\nresults on the 10'000-image test set\n");
  std::printf("  %-34s %9s %9s %14s %10s\n", "run", "final", "best", "rounds to 80%", "wall s");
  auto row = [&](const char* name, const std::vector<double>& acc, double seconds,
                 const char* unit) {
    const uint32_t to80 = RoundsTo80(acc);
    std::printf("  %-34s %9.4f %9.4f %9s %-4s %10.0f\n", name, acc.back(),
                *std::max_element(acc.begin(), acc.end()),
                to80 ? std::to_string(to80).c_str() : "never", unit, seconds);
  };
  row("(a) centralized (pooled)", centralized, central_seconds, "ep");
  row("(b) federated FedAvg", *fedavg, fedavg_seconds, "rnd");
  if (!fedprox.empty()) {
    row(absl::StrFormat("(b) federated FedProx mu=%g", o.mu).c_str(), fedprox, fedprox_seconds,
        "rnd");
  }
  if (!local.empty()) {
    const double mean = std::accumulate(local.begin(), local.end(), 0.0) / local.size();
    std::printf("  %-34s %9.4f %9s (min %.4f, max %.4f)\n", "(c) local-only, mean of nodes", mean,
                "", *std::min_element(local.begin(), local.end()),
                *std::max_element(local.begin(), local.end()));
  }
  const double gap = c_final - fedavg->back();
  std::printf(
      "\ntarget: federated within 3 points of centralized: FedAvg final %.4f vs %.4f "
      "(gap %.1f points, best-vs-best %.1f) -> %s\n",
      fedavg->back(), c_final, 100 * gap,
      100 * (c_best - *std::max_element(fedavg->begin(), fedavg->end())),
      gap <= 0.03 ? "met" : "NOT met");
  return absl::OkStatus();
}

}  // namespace
}  // namespace fedcustoms::bench

int main(int argc, char** argv) {
  fedcustoms::bench::Options o;
  CLI::App app{"federated vs centralized vs local-only on non-IID Fashion-MNIST"};
  app.add_option("--rounds", o.rounds)->capture_default_str()->check(CLI::Range(1, 500));
  app.add_option("--nodes", o.nodes)->capture_default_str()->check(CLI::Range(2, 26));
  app.add_option("--alpha", o.alpha, "Dirichlet concentration")->capture_default_str();
  app.add_option("--local-epochs", o.local_epochs)->capture_default_str();
  app.add_option("--batch", o.batch)->capture_default_str();
  app.add_option("--lr", o.lr, "Adam learning rate")->capture_default_str();
  app.add_option("--mu", o.mu, "FedProx proximal_mu")->capture_default_str();
  app.add_option("--seed", o.seed)->capture_default_str();
  app.add_option("--channels", o.channels, "conv channels per block")
      ->capture_default_str()
      ->delimiter(',');
  app.add_option("--hidden", o.hidden)->capture_default_str();
  app.add_option("--workdir", o.workdir)->capture_default_str();
  app.add_option("--data", o.data, "folder of the Fashion-MNIST IDX files")->capture_default_str();
  app.add_flag("--skip-fedprox", o.skip_fedprox);
  app.add_flag("--skip-local", o.skip_local);
  app.add_flag("--federated-only", o.federated_only,
               "run only (b), e.g. for more rounds than the centralized run");
  app.add_flag("--skip-centralized", o.skip_centralized, "run (b) and (c) only");
  app.add_option("--epsilon", o.epsilon, "train the federation with DP-SGD at this epsilon")
      ->check(CLI::Range(0.0, 100.0));
  CLI11_PARSE(app, argc, argv);
  const absl::Status s = fedcustoms::bench::Run(o);
  if (!s.ok()) {
    std::fprintf(stderr, "bench_fmnist_noniid: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  return 0;
}
