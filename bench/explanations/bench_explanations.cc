// bench_explanations: integrated gradients of a trained risk model, ours
// (ComputeIntegratedGradients: midpoint gradient of the logit times the exact
// mean of sigmoid' per interval, on a grid that follows P, refined per row
// until the completeness gap is at most 1e-3) against the same model in
// PyTorch Python (ig_reference.py: the textbook midpoint Riemann sum of
// autograd gradients of P on N uniform steps), in the same run, on the same
// encoded declarations and baseline.
//
// The model is the risk MLP trained for a few epochs on synthetic
// declarations of one administration. For each method: seconds, ms per
// declaration, and the completeness gap |sum of attributions - (P(x) - P(b))|
// (median, 99th percentile, maximum): the error the method makes in the one
// property integrated gradients promises. Our method is also run on fixed
// uniform step counts without refinement, for the same steps side by side.
//
//   bench_explanations [--rows 2000] [--threads 1] [--train-rows 20000] [--epochs 3]
// Exit code 1 on errors (data, training, the Python reference failed), never
// on a figure.
#include <sys/wait.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <numeric>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "analyst/explain/integrated_gradients.h"
#include "common/data/declarations_csv.h"
#include "common/synth/declarations_synth.h"
#include "common/task/declaration_models.h"
#include "common/tensor/named_tensors.h"
#include "common/training/risk_trainer.h"
#include "common/training/table_tensors.h"

namespace fedcustoms::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Figures {
  std::string method;
  double seconds = 0;
  double ms_per_row = 0;
  double gap_median = 0;
  double gap_p99 = 0;
  double gap_max = 0;
};

Figures Measure(const std::string& method, double seconds, torch::Tensor gap) {
  const torch::Tensor sorted = std::get<0>(gap.sort());
  const int64_t n = sorted.numel();
  return {method,
          seconds,
          1000 * seconds / static_cast<double>(n),
          sorted[n / 2].item<double>(),
          sorted[std::min(n - 1, static_cast<int64_t>(n * 0.99))].item<double>(),
          sorted[n - 1].item<double>()};
}

void Print(const Figures& f) {
  std::printf("%-44s %8.2f s %8.3f ms/row   gap median %.1e  p99 %.1e  max %.1e\n",
              f.method.c_str(), f.seconds, f.ms_per_row, f.gap_median, f.gap_p99, f.gap_max);
}

int Run(int argc, char** argv) {
  CLI::App app{"integrated gradients: ours against PyTorch Python on the same model"};
  int64_t rows = 2000;
  uint64_t train_rows = 20000;
  int threads = 1;
  uint32_t epochs = 3;
  app.add_option("--rows", rows, "declarations explained")->capture_default_str();
  app.add_option("--epochs", epochs,
                 "training epochs (more make a steeper model, where P jumps along the path)")
      ->capture_default_str();
  app.add_option("--train-rows", train_rows, "synthetic rows the model trains on")
      ->capture_default_str();
  app.add_option("--threads", threads, "LibTorch threads, both sides")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  torch::set_num_threads(threads);

  const std::string dir =
      (std::filesystem::temp_directory_path() / absl::StrCat("bench-explanations-", ::getpid()))
          .string();
  synth::SynthOptions synth;
  synth.admins = {"EE"};
  synth.rows = train_rows;
  synth.out_dir = dir;
  if (absl::Status s = synth::SynthesizeDeclarations(synth); !s.ok()) {
    std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
    return 1;
  }
  task::ModelSpec spec;
  spec.kind = v1::TASK_RISK;
  spec.schema = synth::SyntheticDeclarationSchema();
  auto table = data::ReadDeclarationsCsv(dir + "/EE/declarations.csv", spec.schema, v1::FAIL);
  auto model = task::MakeRiskModel(spec);
  if (!table.ok() || !model.ok()) {
    std::fprintf(stderr, "%s\n",
                 std::string((table.ok() ? model.status() : table.status()).message()).c_str());
    return 1;
  }
  std::vector<int64_t> all(table->rows);
  std::iota(all.begin(), all.end(), 0);
  v1::TrainingConfig training;
  training.set_local_epochs(epochs);
  training.set_batch_size(256);
  training.set_learning_rate(1e-3);
  training.set_seed(1);
  if (auto trained = training::TrainRiskModel(*model, *table, all, training); !trained.ok()) {
    std::fprintf(stderr, "%s\n", std::string(trained.status().message()).c_str());
    return 1;
  }
  (*model)->eval();
  rows = std::min<int64_t>(rows, static_cast<int64_t>(table->rows));
  const std::vector<int64_t> explained(all.begin(), all.begin() + rows);
  torch::Tensor encoded, baseline;
  {
    torch::NoGradGuard no_grad;
    encoded = (*model)->Encode(training::NumericTensor(*table, explained),
                               training::CategoricalTensor(*table, explained));
    baseline =
        (*model)
            ->Encode(training::NumericTensor(*table, all), training::CategoricalTensor(*table, all))
            .to(torch::kFloat64)
            .mean(0)
            .to(torch::kFloat32);
  }
  const std::string state_path = dir + "/model.pt", inputs_path = dir + "/inputs.pt";
  if (!tensor::SavePickledState(tensor::StateOf(**model), state_path).ok() ||
      !tensor::SavePickledState({{"encoded", encoded}, {"baseline", baseline}}, inputs_path).ok()) {
    std::fprintf(stderr, "cannot write the model and inputs for Python\n");
    return 1;
  }
  std::printf(
      "risk MLP trained %u epochs on %zu synthetic declarations; %lld explained, encoded "
      "width %lld, %d thread(s)\n\n",
      epochs, table->rows, static_cast<long long>(rows), static_cast<long long>(encoded.size(1)),
      threads);

  std::vector<Figures> ours;
  {
    const auto start = Clock::now();
    const auto r = analyst::ComputeIntegratedGradients(*model, encoded, baseline);
    ours.push_back(Measure("ours: adaptive grid, refined to gap <= 1e-3",
                           std::chrono::duration<double>(Clock::now() - start).count(),
                           r.completeness_gap));
  }
  for (int64_t steps : {64, 256, 1024, 4096}) {
    analyst::IntegratedGradientsOptions fixed;
    fixed.steps = steps;
    fixed.max_steps = steps;
    const auto start = Clock::now();
    const auto r = analyst::ComputeIntegratedGradients(*model, encoded, baseline, fixed);
    ours.push_back(Measure(absl::StrCat("ours: ", steps, " steps, no refinement"),
                           std::chrono::duration<double>(Clock::now() - start).count(),
                           r.completeness_gap));
  }

  const std::string command =
      absl::StrCat("/usr/bin/python3 '", FEDCUSTOMS_BENCH_DIR, "/ig_reference.py' --state '",
                   state_path, "' --inputs '", inputs_path, "' --threads ", threads);
  FILE* pipe = ::popen(command.c_str(), "r");
  std::string output;
  char buffer[4096];
  while (pipe != nullptr) {
    const size_t got = std::fread(buffer, 1, sizeof(buffer), pipe);
    if (got == 0) break;
    output.append(buffer, got);
  }
  const int status = pipe == nullptr ? -1 : ::pclose(pipe);
  std::filesystem::remove_all(dir);
  const nlohmann::json python = nlohmann::json::parse(output, nullptr, false);
  if (status != 0 || python.is_discarded() || !python.contains("steps")) {
    std::fprintf(stderr, "ig_reference.py failed (status %d): %s\n", status, output.c_str());
    return 1;
  }
  for (const Figures& f : ours) Print(f);
  for (const auto& [steps, f] : python["steps"].items()) {
    Print({absl::StrCat("PyTorch ", python.value("torch", "?"), " Python: ", steps,
                        " uniform midpoint steps"),
           f.value("seconds", 0.0), f.value("ms_per_row", 0.0), f.value("gap_median", 0.0),
           f.value("gap_p99", 0.0), f.value("gap_max", 0.0)});
  }
  return 0;
}

}  // namespace
}  // namespace fedcustoms::bench

int main(int argc, char** argv) {
  try {
    return fedcustoms::bench::Run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_explanations: %s\n", e.what());
    return 1;
  }
}
