// bench/training_speed: local training throughput of the node's two
// supervised models, our C++ training code (training::TrainRiskModel,
// training::TrainXrayModel) next to the same architectures trained in PyTorch
// (torch_training.py on /usr/bin/python3) in the same run: same batch, same
// optimizer, same number of samples, same torch thread count. Prints samples/s
// side by side with the target (ours >= 1.2x PyTorch), then a
// per-phase profile of one step on both sides (gather, to float, augment,
// forward, loss, backward, optimizer step) to show where the time goes.
//
//   risk        RiskMlp, hidden [64, 32], embedding 8, dropout 0.1, the
//               synthetic schema's 3 numeric and 6 categorical columns; batch
//               256; an in-memory DeclarationTable of random rows.
//   xray        XrayCnn default config (channels [16, 32, 64], 64x64, 1 input
//               channel, 4 classes, hidden 128); batch 64; random 16-bit images
//               held as int16 (training::Uint16Images); augmentation on, as a
//               node trains.
//   xray-noaug  the same without augmentation.
//
// One measurement is one local epoch (Adam, lr 1e-3) over N samples, N sized
// by a calibration run (also the warm-up) so that it takes about --seconds;
// samples/s is the median of --repeats measurements. The two sides alternate,
// one measurement at a time (each PyTorch measurement a process with its own
// warm-up), so that both see the same load on a shared machine. Exits non-zero
// on errors (training failed, the Python reference failed), not on a missed
// target.
//
//   build/bin/bench_training_speed [--models risk,xray,xray-noaug]
//       [--threads 1,2] [--seconds 7] [--repeats 3] [--risk-samples N]
//       [--xray-samples N] [--no-profile] [--quick]
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/data/declaration_table.h"
#include "common/models/risk_mlp.h"
#include "common/models/xray_cnn.h"
#include "common/synth/declarations_synth.h"
#include "common/training/risk_trainer.h"
#include "common/training/table_tensors.h"
#include "common/training/xray_trainer.h"
#include "fedcustoms/v1/config.pb.h"
#include "fedcustoms/v1/schema.pb.h"

// Set by CMakeLists.txt: the folder of torch_training.py.
#ifndef FEDCUSTOMS_BENCH_DIR
#define FEDCUSTOMS_BENCH_DIR "."
#endif

namespace fedcustoms::bench {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr char kPython[] = "/usr/bin/python3";
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kTarget = 1.2;
constexpr uint64_t kSeed = 1;
// The trainers' seed mixes (risk_trainer.cc, xray_trainer.cc), so the profiled
// replica of their loops draws the same dropout and augmentation streams.
constexpr uint64_t kDropoutSeedMix = 0x9E3779B97F4A7C15ull;
constexpr uint64_t kAugmentSeedMix = 0xD1B54A32D192ED03ull;
// The profile's phase for a trainer's per-call work before its first step.
constexpr char kSetupPhase[] = "setup (amortized)";

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The 1-minute load average, or NaN.
double LoadAverage() {
  std::ifstream in("/proc/loadavg");
  double load = kNaN;
  if (!(in >> load)) return kNaN;
  return load;
}

std::string LoadAverages() {
  std::ifstream in("/proc/loadavg");
  double a = 0, b = 0, c = 0;
  if (!(in >> a >> b >> c)) return "unknown";
  char text[64];
  std::snprintf(text, sizeof(text), "%.2f %.2f %.2f", a, b, c);
  return text;
}

// The BLAS and LAPACK libraries mapped into this process (LibTorch's GEMMs run
// there; Debian's libblas.so.3 is an alternative: the reference BLAS unless an
// optimized one such as OpenBLAS is installed), comma-separated.
std::string MappedBlas() {
  std::ifstream in("/proc/self/maps");
  std::vector<std::string> found;
  for (std::string line; std::getline(in, line);) {
    const size_t slash = line.find('/');
    if (slash == std::string::npos) continue;
    const std::string path = line.substr(slash);
    if (path.find("blas") == std::string::npos && path.find("lapack") == std::string::npos) {
      continue;
    }
    if (std::find(found.begin(), found.end(), path) == found.end()) found.push_back(path);
  }
  return found.empty() ? "none found" : absl::StrJoin(found, ", ");
}

// What is trained.
struct Variant {
  std::string name;   // --models value
  std::string label;  // in the table
  bool xray = false;
  bool augment = false;
  int64_t batch = 0;
  int64_t warmup_batches = 0;  // calibration run, also the warm-up
};

const std::vector<Variant>& Variants() {
  static const std::vector<Variant> variants = {
      {"risk", "risk MLP, batch 256", false, false, 256, 64},
      {"xray", "X-ray CNN, batch 64, augmented", true, true, 64, 6},
      {"xray-noaug", "X-ray CNN, batch 64, no augment", true, false, 64, 6},
  };
  return variants;
}

// Random rows and images of the shapes the node trains on; `size` samples.
struct Data {
  data::DeclarationTable table;  // risk
  std::vector<int64_t> rows;     // 0 .. table.rows - 1
  at::Tensor images;             // xray: int16 [n, 1, 64, 64]
  at::Tensor labels;             // xray: int64 [n]
  int64_t size = 0;
};

// The synthetic schema's feature widths: numeric columns, then categorical
// ones with their bucket counts, in schema order (the model's order).
data::DeclarationTable EmptySyntheticTable() {
  data::DeclarationTable table;
  const v1::DeclarationSchema schema = synth::SyntheticDeclarationSchema();
  for (const v1::ColumnSpec& column : schema.columns()) {
    if (column.role() == v1::NUMERIC) table.numeric_names.push_back(column.name());
    if (column.role() == v1::CATEGORICAL) {
      table.categorical_names.push_back(column.name());
      table.buckets.push_back(column.hash_buckets());
    }
  }
  return table;
}

// n declarations: numeric features around 8 +- 2 (log1p of amounts), bucket ids
// uniform, 5 % positive labels.
void MakeRiskData(int64_t n, Data* out) {
  data::DeclarationTable table = EmptySyntheticTable();
  table.rows = static_cast<size_t>(n);
  std::mt19937_64 rng(kSeed);
  std::normal_distribution<float> amount(8.0f, 2.0f);
  std::bernoulli_distribution positive(0.05);
  table.numeric.resize(table.rows * table.numeric_width());
  for (float& v : table.numeric) v = amount(rng);
  table.categorical.resize(table.rows * table.categorical_width());
  for (size_t r = 0; r < table.rows; ++r) {
    for (size_t j = 0; j < table.categorical_width(); ++j) {
      table.categorical[r * table.categorical_width() + j] =
          static_cast<int64_t>(rng() % table.buckets[j]);
    }
  }
  table.labels.resize(table.rows);
  for (float& label : table.labels) label = positive(rng) ? 1.0f : 0.0f;
  out->rows.resize(table.rows);
  for (size_t r = 0; r < table.rows; ++r) out->rows[r] = static_cast<int64_t>(r);
  out->table = std::move(table);
  out->size = n;
}

// n random 16-bit images of the default model's shape, labels 70 % clear and
// 10 % of each threat class.
void MakeXrayData(int64_t n, int64_t size, Data* out) {
  std::mt19937_64 rng(kSeed);
  std::vector<uint16_t> pixels(static_cast<size_t>(n * size * size));
  for (size_t i = 0; i + 4 <= pixels.size(); i += 4) {
    const uint64_t bits = rng();
    for (int k = 0; k < 4; ++k) pixels[i + k] = static_cast<uint16_t>(bits >> (16 * k));
  }
  out->images = training::Uint16Images(pixels, n, 1, size, size);
  out->labels = torch::empty({n}, torch::kInt64);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  int64_t* labels = out->labels.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    const double x = u(rng);
    labels[i] = x < 0.7 ? 0 : x < 0.8 ? 1 : x < 0.9 ? 2 : 3;
  }
  out->size = n;
}

void EnsureData(const Variant& v, int64_t n, Data* data) {
  if (data->size >= n) return;
  if (v.xray) {
    MakeXrayData(n, models::XrayCnn(v1::XrayModelConfig())->image_size(), data);
  } else {
    MakeRiskData(n, data);
  }
}

models::RiskMlp MakeRiskModel(const data::DeclarationTable& table) {
  return models::RiskMlp(static_cast<int64_t>(table.numeric_width()), table.buckets,
                         v1::RiskModelConfig(), kSeed);
}

models::XrayCnn MakeXrayModel() { return models::XrayCnn(v1::XrayModelConfig(), kSeed); }

v1::TrainingConfig TrainingConfig(const Variant& v) {
  v1::TrainingConfig config;
  config.set_local_epochs(1);
  config.set_batch_size(static_cast<uint32_t>(v.batch));
  config.set_optimizer("adam");
  config.set_learning_rate(1e-3);
  config.set_seed(kSeed);
  return config;
}

// Our side: one call of the node's trainer on the first n samples, with a
// fresh model built before the clock starts. Seconds.
absl::StatusOr<double> TrainOnce(const Variant& v, const Data& data, int64_t n) {
  const v1::TrainingConfig config = TrainingConfig(v);
  if (v.xray) {
    models::XrayCnn model = MakeXrayModel();
    const at::Tensor images = data.images.narrow(0, 0, n);
    const at::Tensor labels = data.labels.narrow(0, 0, n);
    const auto start = Clock::now();
    absl::StatusOr<training::TrainResult> r =
        training::TrainXrayModel(model, images, labels, config, v.augment);
    const double seconds = SecondsSince(start);
    if (!r.ok()) return r.status();
    return seconds;
  }
  models::RiskMlp model = MakeRiskModel(data.table);
  const std::span<const int64_t> rows(data.rows.data(), static_cast<size_t>(n));
  const auto start = Clock::now();
  absl::StatusOr<training::TrainResult> r =
      training::TrainRiskModel(model, data.table, rows, config);
  const double seconds = SecondsSince(start);
  if (!r.ok()) return r.status();
  return seconds;
}

// Profile: the trainers' loops replicated with a clock around each phase. The
// replica calls the same public pieces (UnitImages, AugmentXrayBatch, the
// models' forward, the same loss and Adam) in the trainers' order; its total
// is printed next to the trainer's own time per step so the two can be
// compared.

// Wall time per phase, in first-seen order.
class PhaseTimer {
 public:
  void Start() { last_ = Clock::now(); }
  void Lap(const std::string& phase) {
    const auto now = Clock::now();
    const double ms = std::chrono::duration<double, std::milli>(now - last_).count();
    last_ = now;
    for (auto& [name, total] : ms_) {
      if (name == phase) {
        total += ms;
        return;
      }
    }
    ms_.emplace_back(phase, ms);
  }
  const std::vector<std::pair<std::string, double>>& ms() const { return ms_; }

 private:
  Clock::time_point last_;
  std::vector<std::pair<std::string, double>> ms_;
};

struct Profile {
  int64_t steps = 0;
  double total_ms_per_step = kNaN;  // the replica's epoch / steps
  std::vector<std::pair<std::string, double>> ms_per_step;
};

// `forward_loss(index, timer)` returns the batch's loss, lapping its own phases.
template <typename ForwardLoss>
Profile ProfileLoop(torch::nn::Module& module, int64_t n, int64_t batch, PhaseTimer& timer,
                    ForwardLoss&& forward_loss) {
  torch::optim::Adam optimizer(module.parameters(), torch::optim::AdamOptions(1e-3));
  at::Generator shuffle = at::make_generator<at::CPUGeneratorImpl>(kSeed);
  Profile profile;
  const auto start = Clock::now();
  const at::Tensor order = torch::randperm(n, shuffle, torch::dtype(torch::kInt64));
  for (int64_t first = 0; first < n; first += batch) {
    timer.Start();
    optimizer.zero_grad();
    timer.Lap("zero_grad");
    const at::Tensor loss = forward_loss(order.slice(0, first, std::min(first + batch, n)), timer);
    const double value = loss.item<double>();
    timer.Lap("item");
    if (!std::isfinite(value)) throw std::runtime_error("profile: loss is not finite");
    loss.backward();
    timer.Lap("backward");
    optimizer.step();
    timer.Lap("step");
    ++profile.steps;
  }
  profile.total_ms_per_step = SecondsSince(start) * 1e3 / static_cast<double>(profile.steps);
  return profile;
}

// TrainRiskModel's work phase by phase: "setup" is its per-call work before the
// first step (CheckRows, the gathered tensors of the rows, column statistics).
Profile ProfileRisk(const Variant& v, const Data& data, int64_t n) {
  namespace F = torch::nn::functional;
  models::RiskMlp model = MakeRiskModel(data.table);
  const std::span<const int64_t> rows(data.rows.data(), static_cast<size_t>(n));
  PhaseTimer timer;
  timer.Start();
  if (!training::CheckRows(data.table, model->numeric_width(), model->buckets(), rows, true).ok()) {
    throw std::runtime_error("profile: bad rows");
  }
  const at::Tensor numeric = training::NumericTensor(data.table, rows);
  const at::Tensor categorical = training::CategoricalTensor(data.table, rows);
  const at::Tensor labels = training::LabelTensor(data.table, rows);
  const double positives = labels.sum().item<double>();
  const double pos_weight = training::PositiveWeight(static_cast<int64_t>(positives),
                                                     n - static_cast<int64_t>(positives), {});
  const auto loss_options = F::BinaryCrossEntropyWithLogitsFuncOptions().pos_weight(
      torch::full({1}, pos_weight, torch::kFloat32));
  model->SetStandardization(numeric.mean(0), numeric.var(0, true));
  timer.Lap(kSetupPhase);
  model->train();
  model->SeedDropout(kSeed ^ kDropoutSeedMix);
  Profile p = ProfileLoop(*model, n, v.batch, timer, [&](const at::Tensor& index, PhaseTimer& t) {
    const at::Tensor x_num = numeric.index_select(0, index);
    const at::Tensor x_cat = categorical.index_select(0, index);
    const at::Tensor y = labels.index_select(0, index);
    t.Lap("gather");
    const at::Tensor logits = model->forward(x_num, x_cat);
    t.Lap("forward");
    const at::Tensor loss = F::binary_cross_entropy_with_logits(logits, y, loss_options);
    t.Lap("loss");
    return loss;
  });
  for (const auto& [phase, ms] : timer.ms()) {
    p.ms_per_step.emplace_back(phase, ms / static_cast<double>(p.steps));
  }
  return p;
}

Profile ProfileXray(const Variant& v, const Data& data, int64_t n) {
  namespace F = torch::nn::functional;
  models::XrayCnn model = MakeXrayModel();
  const at::Tensor images = data.images.narrow(0, 0, n);
  const at::Tensor labels = data.labels.narrow(0, 0, n);
  PhaseTimer timer;
  timer.Start();
  if (!training::CheckXrayData(model, images, labels).ok()) {
    throw std::runtime_error("profile: bad images");
  }
  const int64_t classes = model->num_classes();
  const at::Tensor counts = torch::bincount(labels, {}, classes).contiguous();
  const std::vector<double> weights = training::XrayClassWeights(
      std::span<const int64_t>(counts.data_ptr<int64_t>(), static_cast<size_t>(classes)), {});
  const auto loss_options =
      F::CrossEntropyFuncOptions()
          .weight(torch::tensor(at::ArrayRef<double>(weights)).to(torch::kFloat32))
          .reduction(torch::kSum);
  at::Generator augmentation = at::make_generator<at::CPUGeneratorImpl>(kSeed ^ kAugmentSeedMix);
  timer.Lap(kSetupPhase);
  model->train();
  model->SeedDropout(kSeed ^ kDropoutSeedMix);
  Profile p = ProfileLoop(*model, n, v.batch, timer, [&](const at::Tensor& index, PhaseTimer& t) {
    const at::Tensor raw = images.index_select(0, index);
    const at::Tensor y = labels.index_select(0, index);
    t.Lap("gather");
    at::Tensor x = training::UnitImages(raw);
    t.Lap("to_float");
    if (v.augment) {
      x = training::AugmentXrayBatch(x, augmentation);
      t.Lap("augment");
    }
    const at::Tensor logits = model->forward(x);
    t.Lap("forward");
    const at::Tensor loss =
        F::cross_entropy(logits, y, loss_options) / static_cast<double>(index.size(0));
    t.Lap("loss");
    return loss;
  });
  for (const auto& [phase, ms] : timer.ms()) {
    p.ms_per_step.emplace_back(phase, ms / static_cast<double>(p.steps));
  }
  return p;
}

// What one run of torch_training.py measured.
struct PythonResult {
  std::string version;
  std::string blas;  // its mapped BLAS and LAPACK libraries
  int threads = 0;
  std::vector<double> seconds;
  double median = kNaN;  // samples/s
  Profile profile;
};

absl::StatusOr<PythonResult> RunPython(const Variant& v, int threads, int64_t n, int repeats,
                                       int64_t warmup, int64_t profile_samples) {
  const std::string script = FEDCUSTOMS_BENCH_DIR "/torch_training.py";
  if (!std::ifstream(script)) return absl::NotFoundError(absl::StrCat("no ", script));
  const std::string command = absl::StrCat(
      kPython, " '", script, "' --model ", v.xray ? "xray" : "risk", v.augment ? " --augment" : "",
      " --threads ", threads, " --samples ", n, " --batch ", v.batch, " --repeats ", repeats,
      " --warmup-samples ", warmup, " --profile-samples ", profile_samples, " --seed ", kSeed);
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return absl::InternalError(absl::StrCat("cannot run ", command));
  std::string output;
  char buffer[4096];
  while (size_t got = std::fread(buffer, 1, sizeof(buffer), pipe)) output.append(buffer, got);
  const int status = ::pclose(pipe);
  if (status != 0) {
    return absl::UnavailableError(absl::StrCat(script, " exited with status ",
                                               WIFEXITED(status) ? WEXITSTATUS(status) : status,
                                               " (its messages are above)"));
  }
  const json parsed = json::parse(output, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.contains("median_samples_per_s")) {
    return absl::DataLossError(absl::StrCat(script, " printed no JSON report: ", output));
  }
  PythonResult r;
  r.version = parsed.value("torch", "?");
  r.blas = parsed.value("blas", "?");
  r.threads = parsed.value("threads", 0);
  r.seconds = parsed.value("seconds", std::vector<double>{});
  r.median = parsed.value("median_samples_per_s", kNaN);
  if (parsed.contains("profile_ms_per_step")) {
    r.profile.steps = parsed.value("profile_steps", int64_t{0});
    r.profile.total_ms_per_step = parsed.value("profile_total_ms_per_step", kNaN);
    for (const auto& [phase, ms] : parsed["profile_ms_per_step"].items()) {
      r.profile.ms_per_step.emplace_back(phase, ms.get<double>());
    }
  }
  return r;
}

struct Options {
  std::vector<std::string> models = {"risk", "xray", "xray-noaug"};
  std::vector<int> threads = {1, 2};
  double seconds = 7;
  int repeats = 3;
  int64_t risk_samples = 0;  // 0: calibrate
  int64_t xray_samples = 0;
  bool profile = true;
};

struct Row {
  const Variant* variant = nullptr;
  int threads = 0;
  int64_t samples = 0;
  double load = kNaN;      // 1-minute load average when the measurements start
  double load_end = kNaN;  // and when they end
  std::vector<double> ours_seconds;
  double ours = kNaN;  // median samples/s
  PythonResult python;
  Profile ours_profile;
  double ratio() const { return ours / python.median; }
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

std::string Count(int64_t n) {
  char text[32];
  if (n >= 1000000) {
    std::snprintf(text, sizeof(text), "%.2fM", static_cast<double>(n) / 1e6);
  } else {
    std::snprintf(text, sizeof(text), "%lld", static_cast<long long>(n));
  }
  return text;
}

std::string Seconds(const std::vector<double>& seconds) {
  std::vector<std::string> parts;
  for (double s : seconds) {
    char text[16];
    std::snprintf(text, sizeof(text), "%.2f", s);
    parts.push_back(text);
  }
  return absl::StrJoin(parts, " ");
}

absl::StatusOr<Row> Measure(const Options& options, const Variant& v, int threads, Data* data) {
  Row row;
  row.variant = &v;
  row.threads = threads;
  at::set_num_threads(threads);
  const std::string label = absl::StrCat(v.name, ", ", threads, " thread(s)");

  // Warm-up and calibration: one call on a few batches.
  const int64_t warmup = v.warmup_batches * v.batch;
  EnsureData(v, warmup, data);
  absl::StatusOr<double> t = TrainOnce(v, *data, warmup);
  if (!t.ok()) return t.status();
  t = TrainOnce(v, *data, warmup);
  if (!t.ok()) return t.status();
  const double rate = static_cast<double>(warmup) / *t;
  int64_t n = v.xray ? options.xray_samples : options.risk_samples;
  if (n <= 0) {
    const auto batches = static_cast<int64_t>(std::llround(rate * options.seconds / v.batch));
    n = std::max<int64_t>(batches, 4) * v.batch;
  }
  row.samples = n;
  EnsureData(v, n, data);
  std::fprintf(stderr, "%s: warm-up %.0f samples/s; measuring %lld samples (~%.1f s each)\n",
               label.c_str(), rate, static_cast<long long>(n), static_cast<double>(n) / rate);

  // The sides alternate (ours, PyTorch, PyTorch, ours, ...), one measurement
  // each, so both see the same load from whatever else runs on the machine.
  // Each PyTorch measurement is its own process with its own warm-up; the last
  // one also profiles, right after ours does.
  const int64_t profile_samples =
      options.profile ? std::max<int64_t>(n / 3 / v.batch, 2) * v.batch : 0;
  row.load = LoadAverage();
  for (int r = 0; r < options.repeats; ++r) {
    const bool last = r + 1 == options.repeats;
    for (int side = 0; side < 2; ++side) {
      if ((side == 0) == (r % 2 == 0)) {
        t = TrainOnce(v, *data, n);
        if (!t.ok()) return t.status();
        row.ours_seconds.push_back(*t);
        if (last && options.profile) {
          row.ours_profile = v.xray ? ProfileXray(v, *data, profile_samples)
                                    : ProfileRisk(v, *data, profile_samples);
        }
        continue;
      }
      absl::StatusOr<PythonResult> python =
          RunPython(v, threads, n, 1, warmup, last ? profile_samples : 0);
      if (!python.ok()) return python.status();
      if (python->threads != threads) {
        return absl::InternalError(
            absl::StrCat("torch_training.py ran on ", python->threads, " threads, not ", threads));
      }
      row.python.version = python->version;
      row.python.blas = python->blas;
      row.python.threads = python->threads;
      row.python.seconds.insert(row.python.seconds.end(), python->seconds.begin(),
                                python->seconds.end());
      if (last) row.python.profile = python->profile;
    }
    std::fprintf(stderr, "%s: measurement %d of %d: ours %.2f s, PyTorch %.2f s\n", label.c_str(),
                 r + 1, options.repeats, row.ours_seconds.back(), row.python.seconds.back());
  }
  auto median_rate = [n](const std::vector<double>& seconds) {
    std::vector<double> rates;
    for (double s : seconds) rates.push_back(static_cast<double>(n) / s);
    return Median(rates);
  };
  row.ours = median_rate(row.ours_seconds);
  row.python.median = median_rate(row.python.seconds);
  row.load_end = LoadAverage();
  return row;
}

void PrintTable(const std::vector<Row>& rows) {
  std::printf("\n%-32s %7s %8s %11s %11s %7s %7s %-8s %11s\n", "model", "threads", "samples",
              "ours/s", "PyTorch/s", "ratio", "target", "verdict", "load1");
  for (const Row& r : rows) {
    const bool met = r.ratio() >= kTarget;
    char load[32];
    std::snprintf(load, sizeof(load), "%.2f-%.2f", r.load, r.load_end);
    std::printf("%-32s %7d %8s %11.1f %11.1f %6.2fx %6.1fx %-8s %11s\n", r.variant->label.c_str(),
                r.threads, Count(r.samples).c_str(), r.ours, r.python.median, r.ratio(), kTarget,
                met ? "met" : "NOT MET", load);
  }
  std::printf(
      "(samples/s: median of the measurements; load1: 1-minute load average at the row's first "
      "and last measurement, this benchmark included. Where load1 exceeds the hardware threads, "
      "other processes shared the cores and the figures, above all at 2 threads, are noisy.)\n");
  std::printf("\nSeconds per measurement, in the order taken (ours | PyTorch):\n");
  for (const Row& r : rows) {
    std::printf("  %-32s %d thread(s): %s | %s\n", r.variant->label.c_str(), r.threads,
                Seconds(r.ours_seconds).c_str(), Seconds(r.python.seconds).c_str());
  }
}

void PrintProfile(const Row& r) {
  const Profile& ours = r.ours_profile;
  const Profile& py = r.python.profile;
  std::printf("\n%s, %d thread(s): ms per step over %lld steps (ours | PyTorch)\n",
              r.variant->label.c_str(), r.threads, static_cast<long long>(ours.steps));
  std::map<std::string, double> py_ms(py.ms_per_step.begin(), py.ms_per_step.end());
  double ours_sum = 0, py_sum = 0;
  std::vector<std::string> seen;
  auto line = [](const std::string& phase, double a, double b) {
    auto cell = [](double v) {
      if (std::isnan(v)) return std::string("-");
      char text[32];
      std::snprintf(text, sizeof(text), "%.3f", v);
      return std::string(text);
    };
    std::printf("  %-18s %10s %10s %8s\n", phase.c_str(), cell(a).c_str(), cell(b).c_str(),
                std::isnan(a) || std::isnan(b) || b <= 0 ? "" : cell(a / b).c_str());
  };
  std::printf("  %-18s %10s %10s %8s\n", "phase", "ours", "PyTorch", "ours/Py");
  for (const auto& [phase, ms] : ours.ms_per_step) {
    const auto it = py_ms.find(phase);
    const double other = it == py_ms.end() ? kNaN : it->second;
    line(phase, ms, other);
    if (phase != kSetupPhase) ours_sum += ms;  // before the replica's clock
    if (!std::isnan(other)) py_sum += other;
    seen.push_back(phase);
  }
  for (const auto& [phase, ms] : py.ms_per_step) {
    if (std::find(seen.begin(), seen.end(), phase) != seen.end()) continue;
    line(phase, kNaN, ms);
    py_sum += ms;
  }
  line("loop, untimed", ours.total_ms_per_step - ours_sum, py.total_ms_per_step - py_sum);
  line("total (replica)", ours.total_ms_per_step, py.total_ms_per_step);
  line("trainer's own", 1e3 * static_cast<double>(r.variant->batch) / r.ours,
       1e3 * static_cast<double>(r.variant->batch) / r.python.median);
}

int Run(int argc, char** argv) {
  CLI::App app{"Local training speed: our C++ trainers next to PyTorch in Python"};
  Options options;
  bool quick = false;
  app.add_option("--models", options.models, "risk, xray (augmented), xray-noaug")
      ->delimiter(',')
      ->check(CLI::IsMember({"risk", "xray", "xray-noaug"}));
  app.add_option("--threads", options.threads, "torch thread counts (at::set_num_threads)")
      ->delimiter(',')
      ->check(CLI::Range(1, 256));
  app.add_option("--seconds", options.seconds, "target length of one measurement")
      ->check(CLI::Range(0.1, 600.0));
  app.add_option("--repeats", options.repeats, "measurements per side; the median is reported")
      ->check(CLI::Range(1, 100));
  app.add_option("--risk-samples", options.risk_samples, "rows per risk epoch (0: calibrate)")
      ->check(CLI::Range(int64_t{0}, int64_t{100000000}));
  app.add_option("--xray-samples", options.xray_samples, "images per X-ray epoch (0: calibrate)")
      ->check(CLI::Range(int64_t{0}, int64_t{10000000}));
  bool no_profile = false;
  app.add_flag("--no-profile", no_profile, "skip the per-phase profile");
  app.add_flag("--quick", quick, "--seconds 1 --repeats 1 unless given");
  CLI11_PARSE(app, argc, argv);
  options.profile = !no_profile;
  if (quick && app.count("--seconds") == 0) options.seconds = 1;
  if (quick && app.count("--repeats") == 0) options.repeats = 1;

  const auto run_start = Clock::now();
  std::printf(
      "bench_training_speed: %u hardware threads; LibTorch %s (C++) and %s's torch, the same "
      "Debian libtorch; load average at start %s\n"
      "One measurement = one local epoch (Adam lr 1e-3, fresh model and optimizer) over N "
      "samples, N from a warm-up run so that it takes ~%.1f s; %d per side, alternating "
      "between the sides; samples/s = their median.\n"
      "Ours: training::TrainRiskModel / TrainXrayModel as the node calls them (including their "
      "per-call checks and tensor building). PyTorch: torch_training.py, same architecture, "
      "batch, optimizer, loss, N and torch.set_num_threads, randperm-indexed loop.\n"
      "X-ray images are int16 (uint16 bits) on both sides, converted to float per batch.\n",
      std::thread::hardware_concurrency(), TORCH_VERSION, kPython, LoadAverages().c_str(),
      options.seconds, options.repeats);
  // libtorch_cpu links libblas.so.3, so it is mapped from startup.
  std::printf("BLAS in this process: %s\n", MappedBlas().c_str());
  // What changes the figures without changing the code: an optimized BLAS put
  // first on the library path, and libgomp's waiting policy (its threads spin
  // at every barrier by default, which collapses 2-thread throughput when
  // another process holds a core). PyTorch inherits the same environment.
  std::vector<std::string> environment;
  for (const char* name : {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS",
                           "OPENBLAS_NUM_THREADS", "LD_LIBRARY_PATH"}) {
    const char* value = std::getenv(name);
    environment.push_back(absl::StrCat(name, "=", value != nullptr ? value : "(unset)"));
  }
  std::printf("Environment: %s\n", absl::StrJoin(environment, " ").c_str());
  std::fflush(stdout);

  std::vector<Row> rows;
  for (const Variant& v : Variants()) {
    if (std::find(options.models.begin(), options.models.end(), v.name) == options.models.end()) {
      continue;
    }
    Data data;
    for (int threads : options.threads) {
      absl::StatusOr<Row> row = Measure(options, v, threads, &data);
      if (!row.ok()) {
        std::fprintf(stderr, "bench_training_speed: %s, %d thread(s): %s\n", v.name.c_str(),
                     threads, std::string(row.status().message()).c_str());
        return 1;
      }
      rows.push_back(*std::move(row));
    }
  }

  PrintTable(rows);
  const std::string blas = MappedBlas();
  for (const Row& r : rows) {
    if (r.python.blas != blas) {
      std::printf("NOTE: PyTorch (%s, %d thread(s)) ran on another BLAS: %s\n",
                  r.variant->name.c_str(), r.threads, r.python.blas.c_str());
    }
  }
  if (options.profile) {
    std::printf(
        "\nProfile: one epoch over N/3 samples, a clock around each phase. Ours is a replica of "
        "the trainer's loop built from the same calls (its total is next to the trainer's own "
        "time per step); setup is the trainer's per-call work before the first step, divided "
        "by the steps.\n");
    for (const Row& r : rows) PrintProfile(r);
  }
  std::printf("\nLoad average at end %s; whole run %.0f s\n", LoadAverages().c_str(),
              SecondsSince(run_start));
  return 0;
}

}  // namespace
}  // namespace fedcustoms::bench

int main(int argc, char** argv) {
  try {
    return fedcustoms::bench::Run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_training_speed: %s\n", e.what());
    return 1;
  }
}
