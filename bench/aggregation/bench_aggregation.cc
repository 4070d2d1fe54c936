// bench/aggregation: one round of the coordinator's aggregators
// (coordinator/aggregation/: FedAvg, FedAdam through FedAvg::Apply, and the
// robust rules) for n nodes and P float32 parameters, next to two references
// measured in the same run: the plain C++ loop `sum[i] += w * u[i]` over the
// same updates on one and two threads (the memory bandwidth a fold can reach),
// and the same FedAvg and median in NumPy (numpy_fedavg.py on /usr/bin/python3).
// Prints the targets next to the measured figures. Exits non-zero if a
// result differs from its reference or an aggregator fails.
//
//   build/bin/bench_aggregation [--nodes 10,100] [--params 1000000,10000000]
//       [--repeats 3] [--big-repeats 1] [--max-memory-gib 8] [--torch-threads 0]
//       [--quick]
#include <ATen/Parallel.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/io/atomic_file.h"
#include "common/tensor/named_tensors.h"
#include "coordinator/aggregation/fed_avg.h"
#include "coordinator/aggregation/robust_aggregator.h"
#include "coordinator/aggregation/server_optimizer.h"
#include "coordinator/aggregation/tensor_source.h"
#include "fedcustoms/v1/config.pb.h"

// Set by CMakeLists.txt: the folder of numpy_fedavg.py.
#ifndef FEDCUSTOMS_BENCH_DIR
#define FEDCUSTOMS_BENCH_DIR "."
#endif

namespace fedcustoms::bench {
namespace {

namespace fs = std::filesystem;
using coordinator::FedAvg;
using coordinator::InMemoryTensors;
using coordinator::RobustAggregator;
using coordinator::ServerOptimizer;
using coordinator::UpdateSpec;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
using Robust = v1::RobustAggregationConfig;

constexpr char kPython[] = "/usr/bin/python3";
constexpr double kGiB = double{1 << 30};
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// numpy_fedavg.py's key of the global model (updates are keys 0 .. pool-1).
constexpr uint32_t kGlobalKey = 1000000;
// RobustAggregator sorts 2^15 columns at a time (robust_aggregator.cc); a block's
// values, indexes and contiguous copy are counted in its memory need.
constexpr double kSortBlockBytesPerNode = double{1 << 15} * (4 + 8 + 4);
// Coordinates at which the robust results are checked against a direct computation.
constexpr int64_t kCheckedCoordinates = 4096;
// FedAdam as the issue states it; set explicitly since the config is not finalized.
constexpr double kServerLr = 0.01, kBeta1 = 0.9, kBeta2 = 0.99, kTau = 1e-3;

double MsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// Update `key`'s values at flat indexes [0, count), uniform in [-0.5, 0.5): an
// integer hash that numpy_fedavg.py's values() reproduces bit for bit, so both
// sides aggregate the same updates without passing gigabytes between them.
void FillValues(uint32_t key, float* out, int64_t count) {
  const uint32_t salt = (key + 1u) * 0x85EBCA77u;
  for (int64_t i = 0; i < count; ++i) {
    uint32_t x = static_cast<uint32_t>(i) * 0x9E3779B1u + salt;
    x ^= x >> 15;
    x *= 0x2C1B3C6Du;
    x ^= x >> 12;
    out[i] = static_cast<float>(x >> 8) * 0x1p-24f - 0.5f;
  }
}

// Node `slot`'s sample count, in [50, 500); numpy_fedavg.py's sample_count().
uint64_t SampleCount(uint32_t slot) { return 50 + (uint64_t{slot} * 7919) % 450; }

// The model: four float32 tensors of P/2, P/4, P/8 and the rest, as views of one
// flat tensor, so the plain loop and the aggregators read the same memory.
tensor::NamedTensors AsModel(const at::Tensor& flat) {
  const int64_t p = flat.numel();
  const int64_t sizes[] = {p / 2, p / 4, p / 8, p - p / 2 - p / 4 - p / 8};
  tensor::NamedTensors model;
  int64_t offset = 0;
  for (int i = 0; i < 4; ++i) {
    model.emplace_back(absl::StrCat("layer", i, ".weight"), flat.narrow(0, offset, sizes[i]));
    offset += sizes[i];
  }
  return model;
}

// What the nodes send in a round: node slot s sends update s % pool with
// SampleCount(s) samples. The pool is n unless n updates do not fit in memory.
struct Workload {
  uint32_t nodes = 0;
  int64_t params = 0;
  std::vector<at::Tensor> flat;             // [P] per distinct update
  std::vector<tensor::NamedTensors> named;  // views of `flat` as the model's tensors
  at::Tensor global_flat;
  tensor::NamedTensors global;
  uint64_t total_samples = 0;

  uint32_t pool() const { return static_cast<uint32_t>(flat.size()); }
  const float* Update(uint32_t slot) const { return flat[slot % pool()].data_ptr<float>(); }
  const tensor::NamedTensors& Named(uint32_t slot) const { return named[slot % pool()]; }
};

Workload MakeWorkload(uint32_t nodes, int64_t params, uint32_t pool) {
  Workload w;
  w.nodes = nodes;
  w.params = params;
  for (uint32_t key = 0; key < pool; ++key) {
    w.flat.push_back(torch::empty({params}, torch::kFloat32));
    FillValues(key, w.flat.back().data_ptr<float>(), params);
    w.named.push_back(AsModel(w.flat.back()));
  }
  w.global_flat = torch::empty({params}, torch::kFloat32);
  FillValues(kGlobalKey, w.global_flat.data_ptr<float>(), params);
  w.global = AsModel(w.global_flat);
  for (uint32_t slot = 0; slot < nodes; ++slot) w.total_samples += SampleCount(slot);
  return w;
}

// Reference (a): sum[i] += w * u[i] over [begin, end), vectorized at -O3
// (CMakeLists.txt).
void Fold(float* __restrict sum, const float* __restrict update, float weight, int64_t begin,
          int64_t end) {
  for (int64_t i = begin; i < end; ++i) sum[i] += weight * update[i];
}

// One round of the plain loop into `sum` (zeroed and touched before the clock
// starts, as FedAvg's running sum is): every update folded on `threads` threads,
// each owning a contiguous part of the parameters for all n updates. In ms.
double PlainRound(const Workload& w, float* sum, int threads) {
  std::fill(sum, sum + w.params, 0.0f);
  auto fold_range = [&](int64_t begin, int64_t end) {
    for (uint32_t slot = 0; slot < w.nodes; ++slot) {
      Fold(sum, w.Update(slot), static_cast<float>(SampleCount(slot)), begin, end);
    }
  };
  const auto start = Clock::now();
  if (threads == 1) {
    fold_range(0, w.params);
  } else {
    // Part boundaries on 64-byte lines so no line is written by two threads.
    const int64_t part = (w.params / threads + 15) / 16 * 16;
    std::vector<std::thread> workers;
    for (int t = 1; t < threads; ++t) {
      workers.emplace_back(fold_range, std::min(w.params, t * part),
                           std::min(w.params, (t + 1) * part));
    }
    fold_range(0, std::min(w.params, part));
    for (std::thread& worker : workers) worker.join();
  }
  return MsSince(start);
}

// A round's time, ms, and for our aggregators its split into the folds (n Add
// calls) and the final step (Apply or Aggregate).
struct RoundTime {
  double total = kNaN;
  double fold = kNaN;
  double final = kNaN;
  void KeepBest(const RoundTime& o) {
    if (std::isnan(total) || o.total < total) *this = o;
  }
};

// One FedAvg round: n Add, then Apply (with `optimizer` if given). The
// aggregator is built (and its sum allocated and touched) before the clock
// starts, as the coordinator does when a round opens.
absl::StatusOr<RoundTime> FedAvgRound(const Workload& w, const UpdateSpec& spec,
                                      ServerOptimizer* optimizer, tensor::NamedTensors* result) {
  FedAvg fed_avg(spec);
  RoundTime time;
  auto start = Clock::now();
  for (uint32_t slot = 0; slot < w.nodes; ++slot) {
    if (absl::Status s = fed_avg.Add(InMemoryTensors(w.Named(slot)), SampleCount(slot)); !s.ok()) {
      return s;
    }
  }
  time.fold = MsSince(start);
  start = Clock::now();
  absl::StatusOr<tensor::NamedTensors> next = fed_avg.Apply(InMemoryTensors(w.global), optimizer);
  time.final = MsSince(start);
  time.total = time.fold + time.final;
  if (!next.ok()) return next.status();
  *result = *std::move(next);
  return time;
}

// One robust round: n Add, then Aggregate. The aggregator (its n x P rows) is
// built before the clock starts.
absl::StatusOr<RoundTime> RobustRound(const Workload& w, const UpdateSpec& spec,
                                      const Robust& config, at::Tensor* result,
                                      std::vector<uint32_t>* chosen) {
  RobustAggregator aggregator(config, spec, w.nodes);
  RoundTime time;
  auto start = Clock::now();
  for (uint32_t slot = 0; slot < w.nodes; ++slot) {
    if (absl::Status s = aggregator.Add(InMemoryTensors(w.Named(slot)), SampleCount(slot));
        !s.ok()) {
      return s;
    }
  }
  time.fold = MsSince(start);
  start = Clock::now();
  absl::StatusOr<at::Tensor> out = aggregator.Aggregate();
  time.final = MsSince(start);
  time.total = time.fold + time.final;
  if (!out.ok()) return out.status();
  *result = *std::move(out);
  *chosen = aggregator.chosen();
  return time;
}

// max |result - expected| over the model's tensors in order.
double MaxDiff(const tensor::NamedTensors& result, const std::vector<float>& expected) {
  double worst = 0;
  size_t offset = 0;
  for (const auto& [name, t] : result) {
    const at::Tensor flat = t.contiguous().view(-1);
    const float* p = flat.data_ptr<float>();
    for (int64_t i = 0; i < flat.numel(); ++i) {
      worst = std::max(worst, std::abs(double{p[i]} - expected[offset + i]));
    }
    offset += flat.numel();
  }
  return offset == expected.size() ? worst : std::numeric_limits<double>::infinity();
}

absl::Status Expect(const std::string& what, double diff, double tolerance) {
  if (diff <= tolerance) return absl::OkStatus();
  return absl::DataLossError(
      absl::StrCat(what, ": max |difference| ", diff, " > tolerance ", tolerance));
}

// FedAdam's first round from a fresh state (m = 0, v = tau^2), in double:
// w + lr * m / (sqrt(v) + tau) with m = (1 - b1) D, v = b2 tau^2 + (1 - b2) D^2.
std::vector<float> ExpectedFedAdam(const std::vector<float>& mean, const float* global) {
  std::vector<float> out(mean.size());
  for (size_t i = 0; i < mean.size(); ++i) {
    const double d = mean[i];
    const double m = (1 - kBeta1) * d;
    const double v = kBeta2 * kTau * kTau + (1 - kBeta2) * d * d;
    out[i] = static_cast<float>(global[i] + kServerLr * m / (std::sqrt(v) + kTau));
  }
  return out;
}

// The robust rule applied directly at a few coordinates: `checked` holds the
// flat indexes, the result is one value per index.
std::vector<double> ExpectedRobust(const Workload& w, const Robust& config,
                                   const std::vector<int64_t>& checked,
                                   const std::vector<double>& norms,
                                   const std::vector<uint32_t>& chosen) {
  const uint32_t n = w.nodes;
  std::vector<double> out;
  std::vector<float> column(n);
  for (int64_t j : checked) {
    for (uint32_t slot = 0; slot < n; ++slot) column[slot] = w.Update(slot)[j];
    double value = 0;
    switch (config.kind()) {
      case Robust::MEDIAN: {
        std::sort(column.begin(), column.end());
        value = n % 2 ? column[n / 2] : (column[n / 2 - 1] + column[n / 2]) * 0.5f;
        break;
      }
      case Robust::TRIMMED_MEAN: {
        std::sort(column.begin(), column.end());
        const auto trim = static_cast<uint32_t>(std::floor(config.trim_fraction() * n));
        for (uint32_t i = trim; i < n - trim; ++i) value += column[i];
        value /= n - 2 * trim;
        break;
      }
      case Robust::KRUM:
      case Robust::MULTI_KRUM: {  // the mean of the chosen updates; the choice is checked apart
        for (uint32_t i : chosen) value += column[i];
        value /= static_cast<double>(chosen.size());
        break;
      }
      default: {  // MEAN with a norm bound
        for (uint32_t slot = 0; slot < n; ++slot) {
          const double scale = std::min(1.0, config.norm_bound() / norms[slot % w.pool()]);
          value += static_cast<double>(SampleCount(slot)) * scale * column[slot];
        }
        value /= static_cast<double>(w.total_samples);
      }
    }
    out.push_back(value);
  }
  return out;
}

// Krum's choice computed directly: for each update, the sum of its squared
// distances (in double) to its n - f - 2 nearest others; the m best, sorted.
// Costs n^2 P / 2 multiply-adds.
std::vector<uint32_t> ExpectedKrumChoice(const Workload& w, uint32_t f, uint32_t m) {
  const uint32_t n = w.nodes;
  std::vector<double> d(size_t{n} * n, 0.0);
  for (uint32_t a = 0; a < n; ++a) {
    for (uint32_t b = a + 1; b < n; ++b) {
      const float* x = w.Update(a);
      const float* y = w.Update(b);
      double lanes[8] = {};
      int64_t i = 0;
      for (; i + 8 <= w.params; i += 8) {
        for (int l = 0; l < 8; ++l) {
          const double diff = double{x[i + l]} - y[i + l];
          lanes[l] += diff * diff;
        }
      }
      double sum = 0;
      for (; i < w.params; ++i) sum += (double{x[i]} - y[i]) * (double{x[i]} - y[i]);
      for (double lane : lanes) sum += lane;
      d[size_t{a} * n + b] = d[size_t{b} * n + a] = sum;
    }
  }
  std::vector<double> scores(n);
  for (uint32_t a = 0; a < n; ++a) {
    std::vector<double> others;
    for (uint32_t b = 0; b < n; ++b) {
      if (b != a) others.push_back(d[size_t{a} * n + b]);
    }
    std::sort(others.begin(), others.end());
    for (uint32_t k = 0; k < n - f - 2; ++k) scores[a] += others[k];
  }
  std::vector<uint32_t> order(n);
  for (uint32_t i = 0; i < n; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](uint32_t a, uint32_t b) { return scores[a] < scores[b]; });
  order.resize(m);
  std::sort(order.begin(), order.end());
  return order;
}

// A private temporary directory for numpy_fedavg.py's results, removed with the object.
class TempDir {
 public:
  static absl::StatusOr<std::unique_ptr<TempDir>> Create() {
    std::unique_ptr<TempDir> out(new TempDir(
        fs::temp_directory_path() / absl::StrCat("fedcustoms-bench-aggregation-", ::getpid())));
    std::error_code error;
    fs::remove_all(out->path_, error);
    if (!fs::create_directory(out->path_, error)) {
      return absl::InternalError(absl::StrCat("cannot create ", out->path_, ": ", error.message()));
    }
    return out;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  const std::string path_;
};

std::string LastLine(absl::string_view text) {
  const std::vector<absl::string_view> lines = absl::StrSplit(text, '\n', absl::SkipWhitespace());
  return lines.empty() ? "" : std::string(absl::StripAsciiWhitespace(lines.back()));
}

// Reference (b): what numpy_fedavg.py measured, with its results.
struct NumpyResult {
  std::string version;
  double naive = kNaN, out = kNaN, chunked = kNaN, median = kNaN;  // ms, best of repeats
  std::vector<float> fedavg;                                       // the new global model
  std::vector<float> median_values;                                // empty if not run
  double Fastest() const { return std::min({naive, out, chunked}); }
};

absl::StatusOr<std::vector<float>> ReadFloats(const std::string& path, int64_t count) {
  std::ifstream in(path, std::ios::binary);
  std::vector<float> out(count);
  if (!in.read(reinterpret_cast<char*>(out.data()), count * sizeof(float))) {
    return absl::DataLossError(absl::StrCat("cannot read ", count, " floats from ", path));
  }
  return out;
}

absl::StatusOr<NumpyResult> RunNumpy(const TempDir& dir, uint32_t nodes, int64_t params,
                                     uint32_t pool, int repeats, int median_repeats) {
  const std::string script = FEDCUSTOMS_BENCH_DIR "/numpy_fedavg.py";
  if (!fs::exists(script)) return absl::NotFoundError(absl::StrCat("no ", script));
  if (::access(kPython, X_OK) != 0) return absl::NotFoundError(absl::StrCat("no ", kPython));
  const std::string json_path = dir.path() + "/numpy.json", log_path = dir.path() + "/numpy.log";
  const int status = std::system(absl::StrCat(kPython, " '", script, "' --nodes ", nodes,
                                              " --params ", params, " --pool ", pool, " --repeats ",
                                              repeats, " --median ", median_repeats, " --out '",
                                              dir.path(), "' >'", json_path, "' 2>'", log_path, "'")
                                     .c_str());
  if (status != 0) {
    const absl::StatusOr<std::string> log = io::ReadFile(log_path);
    const std::string last = log.ok() ? LastLine(*log) : "";
    return absl::UnavailableError(
        !last.empty() ? last
                      : absl::StrCat(script, " exited with status ",
                                     WIFEXITED(status) ? WEXITSTATUS(status) : status));
  }
  const absl::StatusOr<std::string> text = io::ReadFile(json_path);
  if (!text.ok()) return text.status();
  const json parsed = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.contains("fedavg_ms")) {
    return absl::DataLossError(absl::StrCat(script, " printed no JSON report"));
  }
  NumpyResult out;
  out.version = parsed.value("numpy", "?");
  const json& ms = parsed["fedavg_ms"];
  out.naive = ms.value("naive", kNaN);
  out.out = ms.value("out", kNaN);
  out.chunked = ms.value("chunked", kNaN);
  absl::StatusOr<std::vector<float>> fedavg = ReadFloats(dir.path() + "/fedavg.f32", params);
  if (!fedavg.ok()) return fedavg.status();
  out.fedavg = *std::move(fedavg);
  if (median_repeats > 0) {
    out.median = parsed.value("median_ms", kNaN);
    absl::StatusOr<std::vector<float>> median = ReadFloats(dir.path() + "/median.f32", params);
    if (!median.ok()) return median.status();
    out.median_values = *std::move(median);
  }
  return out;
}

// Peak data each part of a configuration holds, in bytes (not counting the
// processes' code and libraries), for a pool of `pool` distinct updates. B is
// one model, 4P bytes.
struct MemoryNeed {
  double fedavg = 0;        // pool, global, FedAvg sum, the mean from the plain loop, NumPy's
                            // median, then the expected result and NumPy's (FedAvg) or
                            // FedAdam's m and v and its expected result: (pool + 7) B
  double robust = 0;        // pool, global, n rows, result, NumPy's median: (pool + n + 3) B
                            // + sort blocks
  double norm_mean = 0;     // robust + the float64 copy of one row that norm bounding makes
  double numpy_fedavg = 0;  // pool, global, acc, tmp, `w * u`, result copy: (pool + 5) B
  double numpy_median = 0;  // + the stack (if the pool is smaller) + np.median's copy + result

  MemoryNeed(uint32_t nodes, int64_t params, uint32_t pool) {
    const double b = 4.0 * static_cast<double>(params), k = pool, n = nodes;
    fedavg = (k + 7) * b;
    robust = (k + n + 3) * b + n * kSortBlockBytesPerNode;
    norm_mean = robust + 2 * b;
    numpy_fedavg = (k + 5) * b;
    numpy_median = numpy_fedavg + (pool < nodes ? n * b : 0) + n * b + b;
  }
};

// 1000000 as "1e6"; other counts as they are.
std::string Count(double v) {
  const double exponent = std::log10(v);
  if (v >= 1000 && exponent == std::round(exponent)) return absl::StrCat("1e", exponent);
  return absl::StrCat(v);
}

std::string Gib(double bytes) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.2f GiB", bytes / kGiB);
  return text;
}

// One row of the table.
struct Row {
  std::string name;
  RoundTime time;
  double bytes = kNaN;     // touched per round, by the row's definition
  double numpy_ms = kNaN;  // the NumPy figure this row is compared with
  std::string note;
  bool round = true;  // false: one pass, not compared with rounds
};

struct ConfigResult {
  uint32_t nodes = 0;
  int64_t params = 0;
  bool skipped = false;
  std::vector<Row> rows;
  double bandwidth = kNaN;  // GB/s, best plain loop
  double fedavg_ms = kNaN;  // our FedAvg round
  double numpy_ms = kNaN;   // NumPy FedAvg, fastest formulation
  double numpy_naive_ms = kNaN;
  double median_ms = kNaN, trimmed_ms = kNaN;
};

const Row* FindRow(const ConfigResult& r, const std::string& name) {
  for (const Row& row : r.rows) {
    if (row.name == name) return &row;
  }
  return nullptr;
}

double GBps(const Row& row) { return row.bytes / (row.time.total * 1e6); }

void PrintRow(const ConfigResult& r, const Row& row) {
  auto cell = [](double v, const char* format) {
    if (std::isnan(v)) return std::string("-");
    char text[32];
    std::snprintf(text, sizeof(text), format, v);
    return std::string(text);
  };
  const double gbps = GBps(row);
  std::printf("%4u %5s  %-30s %10s %9s %9s %7s %6s %8s %8s  %s\n", r.nodes,
              Count(static_cast<double>(r.params)).c_str(), row.name.c_str(),
              cell(row.time.total, "%.2f").c_str(), cell(row.time.fold, "%.2f").c_str(),
              cell(row.time.final, "%.2f").c_str(), cell(gbps, "%.2f").c_str(),
              cell(row.round ? 100 * gbps / r.bandwidth : kNaN, "%.0f%%").c_str(),
              cell(row.round ? row.time.total / r.fedavg_ms : kNaN, "%.2fx").c_str(),
              cell(row.numpy_ms / row.time.total, "%.2fx").c_str(), row.note.c_str());
}

struct Options {
  std::vector<uint32_t> nodes = {10, 100};
  std::vector<int64_t> params = {1000000, 10000000};
  int repeats = 3;
  int big_repeats = 1;  // 0: as --repeats
  double max_memory_gib = 8;
  int torch_threads = 0;  // 0: every core, as the coordinator (CoordinatorConfig.threads)
};

// Everything for one (n, P): memory plan, NumPy, the plain loops, our
// aggregators, the correctness checks. A failed check or aggregator is an error.
absl::StatusOr<ConfigResult> RunConfig(const Options& options, const TempDir& dir, uint32_t n,
                                       int64_t p) {
  ConfigResult r;
  r.nodes = n;
  r.params = p;
  const double budget = options.max_memory_gib * kGiB;
  const std::string label = absl::StrCat("n=", n, " P=", Count(static_cast<double>(p)));

  // The largest pool for which FedAvg, NumPy's FedAvg and the robust rules fit;
  // failing that, the largest for FedAvg alone.
  uint32_t pool = n;
  auto fits_all = [&](uint32_t k) {
    const MemoryNeed m(n, p, k);
    return m.fedavg <= budget && m.numpy_fedavg <= budget && m.robust <= budget;
  };
  auto fits_fedavg = [&](uint32_t k) {
    const MemoryNeed m(n, p, k);
    return m.fedavg <= budget && m.numpy_fedavg <= budget;
  };
  while (pool > 0 && !fits_all(pool)) --pool;
  const bool robust = pool > 0;
  if (!robust) {
    pool = n;
    while (pool > 0 && !fits_fedavg(pool)) --pool;
  }
  const MemoryNeed full(n, p, n);
  std::printf(
      "%s: memory need with %u distinct updates (data only): %s (FedAvg %s, robust %s, "
      "MEAN with norm bound %s, NumPy FedAvg %s, NumPy median %s); limit %s\n",
      label.c_str(), n,
      Gib(std::max(
              {full.fedavg, full.robust, full.norm_mean, full.numpy_fedavg, full.numpy_median}))
          .c_str(),
      Gib(full.fedavg).c_str(), Gib(full.robust).c_str(), Gib(full.norm_mean).c_str(),
      Gib(full.numpy_fedavg).c_str(), Gib(full.numpy_median).c_str(), Gib(budget).c_str());
  if (pool == 0) {
    std::printf("  SKIPPED: even one update with FedAvg's buffers (%s) exceeds --max-memory-gib\n",
                Gib(MemoryNeed(n, p, 1).fedavg).c_str());
    r.skipped = true;
    return r;
  }
  const MemoryNeed need(n, p, pool);
  if (pool < n) {
    std::printf(
        "  %u updates do not fit: a pool of %u distinct updates is reused cyclically "
        "(node s sends update s mod %u)\n",
        n, pool, pool);
  }
  if (!robust) {
    std::printf("  robust rules SKIPPED: their %u stored updates need %s\n", n,
                Gib(MemoryNeed(n, p, 1).robust).c_str());
  }
  const bool norm_mean = robust && need.norm_mean <= budget;
  if (robust && !norm_mean) {
    std::printf(
        "  MEAN with norm bound SKIPPED: needs %s (the n stored updates, and one row at a "
        "time in float64 for its norm)\n",
        Gib(need.norm_mean).c_str());
  }
  const bool numpy_median = need.numpy_median <= budget;
  if (!numpy_median) {
    std::printf("  NumPy median SKIPPED: needs %s\n", Gib(need.numpy_median).c_str());
  }
  // The slow rows (sorts, Krum's Gram matrix, NumPy's median) of a big
  // configuration may get fewer repeats.
  const bool big = static_cast<double>(n) * static_cast<double>(p) >= 1e9;
  const int slow_repeats = big && options.big_repeats > 0
                               ? std::min(options.big_repeats, options.repeats)
                               : options.repeats;
  if (slow_repeats < options.repeats) {
    std::printf(
        "  n x P >= 1e9: MEDIAN, TRIMMED_MEAN, KRUM, MULTI_KRUM and NumPy's median "
        "timed %d time(s), not %d, to keep the run near 10 minutes (--big-repeats)\n",
        slow_repeats, options.repeats);
  }
  std::fflush(stdout);

  // Reference (b) first, while this process holds no updates.
  auto start = Clock::now();
  absl::StatusOr<NumpyResult> numpy =
      RunNumpy(dir, n, p, pool, options.repeats, numpy_median ? slow_repeats : 0);
  if (!numpy.ok()) {
    return absl::Status(numpy.status().code(),
                        absl::StrCat("numpy_fedavg.py: ", numpy.status().message()));
  }
  std::fprintf(stderr, "%s: NumPy %.1f s\n", label.c_str(), MsSince(start) / 1000);

  start = Clock::now();
  const Workload w = MakeWorkload(n, p, pool);
  const UpdateSpec spec = UpdateSpec::Of(w.global);
  const float* global = w.global_flat.data_ptr<float>();
  const double model_bytes = 4.0 * static_cast<double>(p);

  // Reference (a).
  std::vector<float> sum(p, 0.0f);
  std::vector<float> mean(p);  // the weighted mean update, from the single-thread loop
  std::vector<float> expected(p);
  for (int threads : {1, 2}) {
    Row row;
    row.name = absl::StrCat("plain loop, ", threads, threads == 1 ? " thread" : " threads");
    row.bytes = 12.0 * n * static_cast<double>(p);
    for (int repeat = 0; repeat < options.repeats; ++repeat) {
      RoundTime t;
      t.total = PlainRound(w, sum.data(), threads);
      row.time.KeepBest(t);
      if (threads == 1 && repeat == 0) {
        const float inverse = static_cast<float>(1.0 / static_cast<double>(w.total_samples));
        for (int64_t i = 0; i < p; ++i) {
          mean[i] = sum[i] * inverse;
          expected[i] = global[i] + mean[i];
        }
      }
    }
    r.bandwidth = std::isnan(r.bandwidth) ? GBps(row) : std::max(r.bandwidth, GBps(row));
    r.rows.push_back(row);
  }
  std::vector<float>().swap(sum);
  if (absl::Status s =
          Expect(label + " NumPy FedAvg vs the plain loop",
                 MaxDiff(AsModel(torch::from_blob(numpy->fedavg.data(), {p})), expected), 1e-5);
      !s.ok()) {
    return s;
  }

  // FedAvg and FedAdam.
  const double fedavg_bytes = model_bytes * (3.0 * n + 3);
  Row fedavg{"FedAvg (Add x n + Apply)", {}, fedavg_bytes, numpy->Fastest(), ""};
  for (int repeat = 0; repeat < options.repeats; ++repeat) {
    tensor::NamedTensors result;
    absl::StatusOr<RoundTime> t = FedAvgRound(w, spec, nullptr, &result);
    if (!t.ok()) return t.status();
    fedavg.time.KeepBest(*t);
    if (repeat == 0) {
      if (absl::Status s =
              Expect(label + " FedAvg vs the plain loop", MaxDiff(result, expected), 1e-5);
          !s.ok()) {
        return s;
      }
      if (absl::Status s = Expect(label + " FedAvg vs NumPy", MaxDiff(result, numpy->fedavg), 1e-5);
          !s.ok()) {
        return s;
      }
    }
  }
  r.fedavg_ms = fedavg.time.total;
  std::vector<float>().swap(expected);
  std::vector<float>().swap(numpy->fedavg);
  r.numpy_ms = numpy->Fastest();
  r.numpy_naive_ms = numpy->naive;
  v1::ServerStrategyConfig adam_config;
  adam_config.set_kind(v1::ServerStrategyConfig::FEDADAM);
  adam_config.set_server_learning_rate(kServerLr);
  adam_config.set_beta1(kBeta1);
  adam_config.set_beta2(kBeta2);
  adam_config.set_tau(kTau);
  Row fedadam{"FedAdam (Apply + optimizer)", {}, model_bytes * (3.0 * n + 7), kNaN, ""};
  {
    const std::vector<float> adam_expected = ExpectedFedAdam(mean, global);
    for (int repeat = 0; repeat < options.repeats; ++repeat) {
      ServerOptimizer optimizer(adam_config, spec);  // fresh state: every round is a first
      tensor::NamedTensors result;
      absl::StatusOr<RoundTime> t = FedAvgRound(w, spec, &optimizer, &result);
      if (!t.ok()) return t.status();
      fedadam.time.KeepBest(*t);
      if (repeat == 0) {
        if (absl::Status s =
                Expect(label + " FedAdam vs its formula", MaxDiff(result, adam_expected), 1e-5);
            !s.ok()) {
          return s;
        }
      }
    }
  }
  std::vector<float>().swap(mean);

  // NumPy rows, beside FedAvg.
  auto numpy_row = [&](const std::string& name, double ms) {
    Row row{name, {ms, kNaN, kNaN}, fedavg_bytes, kNaN, ""};
    return row;
  };
  r.rows.push_back(numpy_row("NumPy acc += w*u", numpy->naive));
  r.rows.push_back(numpy_row("NumPy multiply(out=) + add", numpy->out));
  r.rows.push_back(numpy_row("NumPy chunked 2^16", numpy->chunked));
  r.rows.back().note = absl::StrCat("numpy ", numpy->version, ", 1 thread");
  r.rows.push_back(fedavg);
  r.rows.push_back(fedadam);
  // Where Apply's time goes: its passes over one model (FedAvg::Apply runs them
  // per tensor: mul_ by 1/Σn, add_ the global, AllFinite), each timed alone.
  {
    at::Tensor t = torch::empty({p}, torch::kFloat32);
    const double inverse = 1.0 / static_cast<double>(w.total_samples);
    struct Pass {
      const char* name;
      double bytes_per_param;
      std::function<void()> run;
    };
    const Pass passes[] = {{"  Apply pass: sum.mul_(1/N)", 8, [&] { t.mul_(inverse); }},
                           {"  Apply pass: sum.add_(global)", 12, [&] { t.add_(w.global_flat); }},
                           {"  Apply pass: AllFinite(sum)", 4, [&] {
                              if (!tensor::AllFinite(t))
                                throw std::runtime_error("a pass made Inf or NaN");
                            }}};
    for (const Pass& pass : passes) {
      Row row{pass.name, {}, pass.bytes_per_param * static_cast<double>(p), kNaN, "", false};
      for (int repeat = 0; repeat < options.repeats; ++repeat) {
        t.copy_(w.global_flat);  // same values every time: repeated mul_ would reach denormals
        const auto pass_start = Clock::now();
        pass.run();
        RoundTime time;
        time.total = MsSince(pass_start);
        row.time.KeepBest(time);
      }
      r.rows.push_back(row);
    }
    r.rows.back().note = "1 pass over P (not a round)";
  }
  std::fprintf(stderr, "%s: plain loops, FedAvg, FedAdam %.1f s\n", label.c_str(),
               MsSince(start) / 1000);

  // Robust rules.
  if (robust) {
    std::vector<int64_t> checked;
    const int64_t count = std::min<int64_t>(p, kCheckedCoordinates);
    for (int64_t j = 0; j < count; ++j) checked.push_back(j * p / count);
    std::vector<double> norms;
    for (uint32_t k = 0; k < pool; ++k) {
      double squares = 0;
      const float* u = w.flat[k].data_ptr<float>();
      for (int64_t i = 0; i < p; ++i) squares += double{u[i]} * u[i];
      norms.push_back(std::sqrt(squares));
    }
    struct Rule {
      std::string name;
      Robust config;
      double bytes_per_update;  // per parameter
      double bytes_once;        // per parameter
      bool slow;
    };
    std::vector<Rule> rules;
    Robust c;
    c.set_kind(Robust::MEDIAN);
    // Add copies each update (8 B/param), Aggregate reads every row and writes the result.
    rules.push_back({"MEDIAN", c, 12, 4, true});
    c.set_kind(Robust::TRIMMED_MEAN);
    c.set_trim_fraction(0.1);
    rules.push_back({"TRIMMED_MEAN 0.1", c, 12, 4, true});
    c = Robust();
    c.set_kind(Robust::KRUM);
    c.set_byzantine_nodes(1);
    // + the chosen update(s) read again for their mean.
    rules.push_back({"KRUM f=1", c, 12, 8, true});
    c.set_kind(Robust::MULTI_KRUM);
    rules.push_back({"MULTI_KRUM f=1 (m=n-1)", c, 16, 0, true});  // 12n + 4(n-1) + 4
    if (norm_mean) {
      c = Robust();
      c.set_kind(Robust::MEAN);
      c.set_norm_bound(1);
      // Copy 8, norm pass 4, scaled weighted fold 12: the least a stored-rows
      // implementation touches.
      rules.push_back({"MEAN norm_bound=1", c, 24, 0, false});
    }
    const bool check_krum_choice = 0.5 * n * n * static_cast<double>(p) <= 5e9;
    for (const Rule& rule : rules) {
      start = Clock::now();
      Row row{
          rule.name, {}, model_bytes * (rule.bytes_per_update * n + rule.bytes_once) / 4, kNaN, ""};
      const int repeats = rule.slow ? slow_repeats : options.repeats;
      for (int repeat = 0; repeat < repeats; ++repeat) {
        at::Tensor result;
        std::vector<uint32_t> chosen;
        absl::StatusOr<RoundTime> t = RobustRound(w, spec, rule.config, &result, &chosen);
        if (!t.ok()) {
          return absl::Status(t.status().code(),
                              absl::StrCat(label, " ", rule.name, ": ", t.status().message()));
        }
        row.time.KeepBest(*t);
        if (repeat > 0) continue;
        const uint32_t f = rule.config.byzantine_nodes();
        if (rule.config.kind() == Robust::KRUM || rule.config.kind() == Robust::MULTI_KRUM) {
          const uint32_t m = rule.config.kind() == Robust::KRUM ? 1 : n - f;
          if (chosen.size() != m) {
            return absl::DataLossError(
                absl::StrCat(label, " ", rule.name, " chose ", chosen.size(), " updates, not ", m));
          }
          if (check_krum_choice && ExpectedKrumChoice(w, f, m) != chosen) {
            return absl::DataLossError(
                absl::StrCat(label, " ", rule.name, " chose other updates than a direct Krum"));
          }
          row.note = check_krum_choice ? "choice checked" : "choice not checked (n^2 P large)";
        }
        const std::vector<double> direct = ExpectedRobust(w, rule.config, checked, norms, chosen);
        const float* got = result.data_ptr<float>();
        double diff = 0, scale = 0;
        for (size_t j = 0; j < checked.size(); ++j) {
          diff = std::max(diff, std::abs(got[checked[j]] - direct[j]));
          scale = std::max(scale, std::abs(direct[j]));
        }
        // The norm-bounded mean is ~1/sqrt(P) in size: its tolerance is relative.
        const double tolerance = rule.config.kind() == Robust::MEAN ? 1e-4 * scale : 1e-5;
        if (absl::Status s = Expect(label + " " + rule.name + " vs direct", diff, tolerance);
            !s.ok()) {
          return s;
        }
        if (rule.config.kind() == Robust::MEDIAN && !numpy->median_values.empty()) {
          double worst = 0;
          for (int64_t i = 0; i < p; ++i) {
            worst = std::max(worst, std::abs(double{got[i]} - numpy->median_values[i]));
          }
          if (absl::Status s = Expect(label + " MEDIAN vs np.median", worst, 1e-6); !s.ok()) {
            return s;
          }
        }
      }
      if (rule.config.kind() == Robust::MEDIAN) {
        row.numpy_ms = numpy->median;
        r.median_ms = row.time.total;
      }
      if (rule.config.kind() == Robust::TRIMMED_MEAN) r.trimmed_ms = row.time.total;
      if (repeats < options.repeats) row.note = absl::StrCat(repeats, " repeat(s)");
      r.rows.push_back(row);
      std::fprintf(stderr, "%s: %s %.1f s\n", label.c_str(), rule.name.c_str(),
                   MsSince(start) / 1000);
    }
    if (numpy_median) {
      Row row{"NumPy median(stack, axis=0)",
              {numpy->median, kNaN, kNaN},
              model_bytes * (n + 1.0),
              kNaN,
              "reads the stack, writes the result"};
      r.rows.push_back(row);
    }
  }
  return r;
}

std::string Verdict(bool met) { return met ? "met" : "MISSED"; }

void PrintTargets(const std::vector<ConfigResult>& results) {
  std::printf("\nTargets (issue) against this run:\n");
  for (const ConfigResult& r : results) {
    if (r.skipped) continue;
    const std::string label =
        absl::StrCat("n=", r.nodes, " P=", Count(static_cast<double>(r.params)));
    const Row* fedavg = FindRow(r, "FedAvg (Add x n + Apply)");
    const Row* plain = FindRow(r, "plain loop, 2 threads");
    const double share = GBps(*fedavg) / r.bandwidth;
    const double speedup = r.numpy_ms / r.fedavg_ms;
    std::printf("  %-12s FedAvg >= 70%% of memory bandwidth: %.0f%% (%.2f of %.2f GB/s)  %s\n",
                label.c_str(), 100 * share, GBps(*fedavg), r.bandwidth,
                Verdict(share >= 0.7).c_str());
    std::printf(
        "  %-12s FedAvg >= 3x NumPy: %.2fx its fastest formulation (%.2fx acc += w*u)  "
        "%s; the 2-thread plain loop is %.2fx\n",
        label.c_str(), speedup, r.numpy_naive_ms / r.fedavg_ms, Verdict(speedup >= 3).c_str(),
        r.numpy_ms / plain->time.total);
  }
  bool found = false;
  for (const ConfigResult& r : results) {
    if (r.skipped || r.nodes != 10 || r.params != 10000000) continue;
    found = true;
    for (const auto& [name, ms] :
         {std::pair{"MEDIAN", r.median_ms}, std::pair{"TRIMMED_MEAN", r.trimmed_ms}}) {
      if (std::isnan(ms)) {
        std::printf("  n=10 P=1e7   %s within 5x of FedAvg: not run\n", name);
        continue;
      }
      std::printf("  n=10 P=1e7   %-12s within 5x of FedAvg: %.2fx (%.1f vs %.1f ms)  %s\n", name,
                  ms / r.fedavg_ms, ms, r.fedavg_ms, Verdict(ms <= 5 * r.fedavg_ms).c_str());
    }
  }
  if (!found) std::printf("  median and trimmed mean at n=10 P=1e7: configuration not run\n");
}

int Run(int argc, char** argv) {
  CLI::App app{"One aggregation round: our aggregators next to the memory bandwidth and NumPy"};
  Options options;
  bool quick = false;
  app.add_option("--nodes", options.nodes, "node counts n")
      ->delimiter(',')
      ->check(CLI::Range(4, 999));
  app.add_option("--params", options.params, "float32 parameter counts P")
      ->delimiter(',')
      ->check(CLI::Range(int64_t{8}, int64_t{1000000000}));
  app.add_option("--repeats", options.repeats, "rounds per configuration; the best is kept")
      ->check(CLI::Range(1, 100));
  app.add_option("--big-repeats", options.big_repeats,
                 "repeats of the sorting and Krum rules and NumPy's median when n x P >= 1e9, "
                 "which take minutes per round (0: --repeats)")
      ->check(CLI::Range(0, 100));
  app.add_option("--max-memory-gib", options.max_memory_gib,
                 "skip what would hold more data than this")
      ->check(CLI::PositiveNumber);
  app.add_option("--torch-threads", options.torch_threads,
                 "at::set_num_threads before the run (0: every core, as the coordinator)")
      ->check(CLI::Range(0, 256));
  app.add_flag("--quick", quick, "n = 10 and P = 1e6 unless given");
  CLI11_PARSE(app, argc, argv);
  if (quick && app.count("--nodes") == 0) options.nodes = {10};
  if (quick && app.count("--params") == 0) options.params = {1000000};

  torch::NoGradGuard no_grad;
  at::set_num_threads(options.torch_threads > 0
                          ? options.torch_threads
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  const auto run_start = Clock::now();
  std::printf(
      "bench_aggregation: %u hardware threads; torch intra-op threads "
      "(at::get_num_threads) %d; NumPy on %s, one thread for element-wise ops; best of "
      "%d round(s); --max-memory-gib %g\n",
      std::thread::hardware_concurrency(), at::get_num_threads(), kPython, options.repeats,
      options.max_memory_gib);
  std::printf(
      "Model: 4 float32 tensors (P/2, P/4, P/8, rest); updates uniform in [-0.5, 0.5), sample "
      "counts in [50, 500). Round = n Add + Apply/Aggregate; aggregator built before the clock.\n"
      "Bytes touched per round (GB/s = bytes / round time), B = 4P bytes:\n"
      "  plain loop      12nP: sum[i] += w*u[i] reads u and reads+writes sum (12 B/param/update)\n"
      "  FedAvg, NumPy   (3n+3)B: the folds, then Apply reads sum and global, writes the result\n"
      "  FedAdam         (3n+7)B: + reads and writes m and v\n"
      "  MEDIAN, TRIMMED (3n+1)B: Add copies (read+write), Aggregate reads each row and writes\n"
      "                  the result\n"
      "  KRUM (m=1)      (3n+2)B; MULTI_KRUM (4n)B: + the m chosen rows read again\n"
      "  MEAN norm bound 6nB: copy, norm pass, scaled weighted fold (read row, read+write sum)\n"
      "  NumPy median    (n+1)B: reads the stack (already built), writes the result\n"
      "%% bw = GB/s over the best plain loop of the same configuration (the memory bandwidth).\n"
      "x FedAvg = round time over FedAvg's; NumPy/ours = the NumPy time (fastest FedAvg "
      "formulation, or np.median) over ours.\n"
      "Correctness, once per configuration: FedAvg vs the plain loop and vs NumPy (1e-5), FedAdam "
      "vs its formula (1e-5), robust rules vs direct computation at %lld coordinates, MEDIAN vs "
      "np.median everywhere.\n\n",
      static_cast<long long>(kCheckedCoordinates));
  std::fflush(stdout);

  absl::StatusOr<std::unique_ptr<TempDir>> dir = TempDir::Create();
  if (!dir.ok()) {
    std::fprintf(stderr, "bench_aggregation: %s\n", std::string(dir.status().message()).c_str());
    return 1;
  }
  std::vector<ConfigResult> results;
  for (uint32_t n : options.nodes) {
    for (int64_t p : options.params) {
      absl::StatusOr<ConfigResult> r = RunConfig(options, **dir, n, p);
      if (!r.ok()) {
        std::fprintf(stderr, "bench_aggregation: %s\n", std::string(r.status().message()).c_str());
        return 1;
      }
      results.push_back(*std::move(r));
    }
  }

  std::printf("\n%4s %5s  %-30s %10s %9s %9s %7s %6s %8s %8s\n", "n", "P", "strategy", "round ms",
              "fold ms", "final ms", "GB/s", "% bw", "x FedAvg", "NumPy/");
  std::printf("%4s %5s  %-30s %10s %9s %9s %7s %6s %8s %8s\n", "", "", "", "(best)", "(Add)",
              "(Apply)", "", "", "time", "ours");
  for (const ConfigResult& r : results) {
    if (r.skipped) {
      std::printf("%4u %5s  skipped (memory, see above)\n", r.nodes,
                  Count(static_cast<double>(r.params)).c_str());
      continue;
    }
    for (const Row& row : r.rows) PrintRow(r, row);
    std::printf("\n");
  }
  PrintTargets(results);
  std::printf("\nWhole run: %.0f s\n", MsSince(run_start) / 1000);
  return 0;
}

}  // namespace
}  // namespace fedcustoms::bench

int main(int argc, char** argv) {
  try {
    return fedcustoms::bench::Run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_aggregation: %s\n", e.what());
    return 1;
  }
}
