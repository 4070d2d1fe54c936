#include "common/models/risk_mlp.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/task/model_update.h"
#include "common/task/risk_task.h"
#include "common/tensor/named_tensors.h"
#include "common/tensor/tensor_spec.h"

namespace fedcustoms::models {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kPython[] = "/usr/bin/python3";

v1::RiskModelConfig SmallConfig() {
  v1::RiskModelConfig c;
  c.add_hidden_units(4);
  c.add_hidden_units(3);
  c.set_embedding_dim(2);
  c.set_dropout(0.25);
  return c;
}

RiskMlp SmallModel(uint64_t seed = 1) {
  return RiskMlp(3, std::vector<uint32_t>{5, 7}, SmallConfig(), seed);
}

std::vector<std::string> Names(const tensor::NamedTensors& tensors) {
  std::vector<std::string> names;
  for (const auto& [name, t] : tensors) names.push_back(name);
  return names;
}

torch::Tensor SomeNumeric(int64_t rows) {
  return torch::arange(rows * 3, torch::kFloat32).reshape({rows, 3}) / 7.0;
}
torch::Tensor SomeCategorical(int64_t rows) {
  torch::Tensor ids = torch::arange(rows * 2, torch::kInt64).reshape({rows, 2});
  ids.select(1, 0).remainder_(5);
  ids.select(1, 1).remainder_(7);
  return ids;
}

bool AllEqual(const tensor::NamedTensors& a, const tensor::NamedTensors& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].first != b[i].first || !torch::equal(a[i].second, b[i].second)) return false;
  }
  return true;
}

// A fresh directory under the test temp dir.
std::filesystem::path MakeTempDir() {
  std::string pattern = (std::filesystem::path(testing::TempDir()) / "risk_mlp_XXXXXX").string();
  EXPECT_NE(::mkdtemp(pattern.data()), nullptr);
  return pattern;
}

struct PythonRun {
  int exit_code = -1;
  std::string output;
};

PythonRun RunPython(const std::filesystem::path& dir, const std::string& script,
                    const std::string& args) {
  const std::filesystem::path file = dir / "script.py";
  std::ofstream(file) << script;
  const std::string command = absl::StrCat(kPython, " ", file.string(), " ", args, " 2>&1");
  PythonRun run;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  char buffer[4096];
  while (size_t n = std::fread(buffer, 1, sizeof(buffer), pipe)) run.output.append(buffer, n);
  const int status = ::pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

// Exit code of the scripts below when the interpreter lacks torch.
constexpr int kNoTorch = 77;

TEST(RiskMlp, ForwardGivesOneLogitPerRow) {
  RiskMlp model = SmallModel();
  model->eval();
  torch::Tensor logits = model->forward(SomeNumeric(6), SomeCategorical(6));
  EXPECT_EQ(logits.sizes(), torch::IntArrayRef({6}));
  EXPECT_EQ(logits.scalar_type(), torch::kFloat32);
  model->train();
  EXPECT_EQ(model->forward(SomeNumeric(6), SomeCategorical(6)).sizes(), torch::IntArrayRef({6}));
}

TEST(RiskMlp, StateNamesAreCanonicalAndSorted) {
  RiskMlp model = SmallModel();
  const tensor::NamedTensors state = tensor::StateOf(*model);
  EXPECT_THAT(Names(state),
              ElementsAre("embeddings.0.weight", "embeddings.1.weight", "hidden.0.bias",
                          "hidden.0.weight", "hidden.1.bias", "hidden.1.weight", "output.bias",
                          "output.weight", "standardize.num_batches_tracked",
                          "standardize.running_mean", "standardize.running_var"));
  EXPECT_TRUE(tensor::IsCanonical(state).ok());
  std::vector<tensor::TensorSpec> spec = tensor::SpecOf(state);
  EXPECT_EQ(spec[0], (tensor::TensorSpec{"embeddings.0.weight", torch::kFloat32, {5, 2}}));
  EXPECT_EQ(spec[1], (tensor::TensorSpec{"embeddings.1.weight", torch::kFloat32, {7, 2}}));
  EXPECT_EQ(spec[3], (tensor::TensorSpec{"hidden.0.weight", torch::kFloat32, {4, 3 + 2 * 2}}));
  EXPECT_EQ(spec[7], (tensor::TensorSpec{"output.weight", torch::kFloat32, {1, 3}}));
  EXPECT_EQ(spec[8], (tensor::TensorSpec{"standardize.num_batches_tracked", torch::kInt64, {}}));
}

// A config with one cross of features 0 and 1 into `buckets` buckets.
v1::RiskModelConfig WithCross(v1::RiskModelConfig c, uint32_t buckets) {
  v1::CategoricalCross* cross = c.add_crosses();
  cross->add_columns("a");
  cross->add_columns("b");
  cross->set_hash_buckets(buckets);
  return c;
}

TEST(RiskMlp, CrossesStartAtZeroSoTheModelStartsAsTheSameMlp) {
  RiskMlp plain = SmallModel(5);
  RiskMlp crossed(3, std::vector<uint32_t>{5, 7}, WithCross(SmallConfig(), 11), 5,
                  std::vector<CrossColumns>{{0, 1}});
  plain->eval();
  crossed->eval();
  const tensor::NamedTensors state = tensor::StateOf(*crossed);
  EXPECT_EQ(Names(state).front(), "crosses.0.weight");
  EXPECT_EQ(tensor::SpecOf(state).front(),
            (tensor::TensorSpec{"crosses.0.weight", torch::kFloat32, {11, 1}}));
  EXPECT_TRUE(tensor::IsCanonical(state).ok());
  const torch::Tensor numeric = SomeNumeric(8), categorical = SomeCategorical(8);
  EXPECT_TRUE(
      torch::equal(plain->forward(numeric, categorical), crossed->forward(numeric, categorical)));
  // A weight in a cross bucket moves exactly the rows of that bucket's pairs.
  const torch::Tensor ids = crossed->CrossIds(categorical, 0);
  {
    torch::NoGradGuard no_grad;
    crossed->named_parameters()["crosses.0.weight"][ids[0].item<int64_t>()][0] = 2.5;
  }
  const torch::Tensor moved =
      crossed->forward(numeric, categorical) - plain->forward(numeric, categorical);
  for (int64_t i = 0; i < 8; ++i) {
    const bool same_bucket = ids[i].item<int64_t>() == ids[0].item<int64_t>();
    EXPECT_NEAR(moved[i].item<float>(), same_bucket ? 2.5f : 0.0f, 1e-5) << "row " << i;
  }
  // The encoded input ends with the cross column; the logit adds it.
  EXPECT_EQ(crossed->encoded_width(), crossed->deep_width() + 1);
  EXPECT_TRUE(torch::allclose(crossed->LogitsOfEncoded(crossed->Encode(numeric, categorical)),
                              crossed->forward(numeric, categorical)));
}

TEST(RiskMlp, CrossIdsHashBothValuesIntoTheBuckets) {
  RiskMlp model(0, std::vector<uint32_t>{300, 300}, WithCross(SmallConfig(), 64), 1,
                std::vector<CrossColumns>{{0, 1}});
  const torch::Tensor a = torch::arange(300, torch::kInt64).repeat_interleave(300);
  const torch::Tensor b = torch::arange(300, torch::kInt64).repeat(300);
  const torch::Tensor ids = model->CrossIds(torch::stack({a, b}, 1), 0);
  EXPECT_GE(ids.min().item<int64_t>(), 0);
  EXPECT_LT(ids.max().item<int64_t>(), 64);
  // 90 000 pairs over 64 buckets: each holds about 1406; none is starved or
  // flooded (a hash of one value alone would leave pairs collide by rows).
  const torch::Tensor counts = torch::bincount(ids, {}, 64);
  EXPECT_GT(counts.min().item<int64_t>(), 1100);
  EXPECT_LT(counts.max().item<int64_t>(), 1700);
  // Swapping the values changes the bucket (the pair is ordered).
  const torch::Tensor swapped = model->CrossIds(torch::stack({b, a}, 1), 0);
  EXPECT_GT((swapped != ids).sum().item<int64_t>(), 80000);
}

TEST(RiskMlp, LogisticIsALinearModelOfBucketsThatStartsAtZero) {
  v1::RiskModelConfig config = WithCross(v1::RiskModelConfig(), 13);
  config.set_kind(v1::RiskModelConfig::LOGISTIC);
  RiskMlp model(3, std::vector<uint32_t>{5, 7}, config, 1, std::vector<CrossColumns>{{0, 1}});
  EXPECT_TRUE(model->config().hidden_units().empty());
  EXPECT_EQ(model->config().embedding_dim(), 1u);
  EXPECT_THAT(Names(tensor::StateOf(*model)),
              ElementsAre("crosses.0.weight", "embeddings.0.weight", "embeddings.1.weight",
                          "output.bias", "output.weight", "standardize.num_batches_tracked",
                          "standardize.running_mean", "standardize.running_var"));
  model->eval();
  const torch::Tensor numeric = SomeNumeric(6), categorical = SomeCategorical(6);
  EXPECT_TRUE(torch::equal(model->forward(numeric, categorical), torch::zeros({6})));
  // Random weights: the logit is bias + w . standardized numerics + one
  // weight per bucket of each column and of the cross.
  auto params = model->named_parameters();
  {
    torch::NoGradGuard no_grad;
    for (auto& p : params) p.value().normal_();
  }
  model->SetStandardization(torch::tensor({1.0f, -1.0f, 0.5f}), torch::tensor({4.0f, 1.0f, 9.0f}));
  const torch::Tensor standardized = (numeric - torch::tensor({1.0f, -1.0f, 0.5f})) /
                                     torch::sqrt(torch::tensor({4.0f, 1.0f, 9.0f}) + 1e-5);
  const torch::Tensor expected =
      params["output.bias"] + standardized.matmul(params["output.weight"].squeeze(0)) +
      params["embeddings.0.weight"].index_select(0, categorical.select(1, 0)).squeeze(1) +
      params["embeddings.1.weight"].index_select(0, categorical.select(1, 1)).squeeze(1) +
      params["crosses.0.weight"].index_select(0, model->CrossIds(categorical, 0)).squeeze(1);
  EXPECT_TRUE(torch::allclose(model->forward(numeric, categorical), expected, 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(model->LogitsOfEncoded(model->Encode(numeric, categorical)), expected,
                              1e-5, 1e-5));
}

TEST(RiskTask, CrossesAreResolvedByNameToCategoricalColumns) {
  v1::DeclarationSchema schema;
  auto column = [&](const std::string& name, v1::ColumnRole role) {
    v1::ColumnSpec* c = schema.add_columns();
    c->set_name(name);
    c->set_role(role);
    if (role == v1::CATEGORICAL) c->set_hash_buckets(16);
  };
  column("value", v1::NUMERIC);
  column("hs_code", v1::CATEGORICAL);
  column("office", v1::CATEGORICAL);
  column("origin", v1::CATEGORICAL);
  v1::RiskModelConfig config;
  config.add_crosses()->add_columns("origin");
  config.mutable_crosses(0)->add_columns("hs_code");
  // (Finalizing replaces the config: each edit below takes the cross anew.)
  auto cross = [&]() { return config.mutable_crosses(0); };
  auto resolved = task::ResolveCrosses(schema, config);
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  ASSERT_EQ(resolved->size(), 1u);
  EXPECT_EQ((*resolved)[0].first, 2);
  EXPECT_EQ((*resolved)[0].second, 0);
  ASSERT_TRUE(task::FinalizeRiskModelConfig(&config).ok());
  EXPECT_EQ(config.crosses(0).hash_buckets(), 16384u);
  EXPECT_TRUE(task::InitialRiskState(schema, config, 1).ok());

  cross()->set_columns(1, "value");
  EXPECT_THAT(std::string(task::ResolveCrosses(schema, config).status().message()),
              HasSubstr("model.crosses[0]: \"value\" is not a CATEGORICAL column"));
  EXPECT_THAT(std::string(task::InitialRiskState(schema, config, 1).status().message()),
              HasSubstr("\"value\" is not a CATEGORICAL column"));
  cross()->set_columns(1, "origin");
  EXPECT_THAT(std::string(task::FinalizeRiskModelConfig(&config).message()),
              HasSubstr("model.crosses[0].columns must name two distinct columns"));
  cross()->add_columns("office");
  EXPECT_THAT(std::string(task::FinalizeRiskModelConfig(&config).message()), HasSubstr("got 3"));
  cross()->clear_columns();
  cross()->add_columns("origin");
  cross()->add_columns("office");
  cross()->set_hash_buckets((1u << 24) + 1);
  EXPECT_THAT(std::string(task::FinalizeRiskModelConfig(&config).message()),
              HasSubstr("crosses[0].hash_buckets 16777217 is not in 1..16777216"));
  // Crosses count against the cap on table weights (1 GiB of float32).
  cross()->set_hash_buckets(1u << 24);
  for (int k = 1; k < 17; ++k) *config.add_crosses() = config.crosses(0);
  EXPECT_THAT(std::string(task::FinalizeRiskModelConfig(&config).message()),
              HasSubstr("embeddings and crosses would hold"));
  // A logistic model refuses the MLP's settings rather than ignore them.
  v1::RiskModelConfig logistic;
  logistic.set_kind(v1::RiskModelConfig::LOGISTIC);
  ASSERT_TRUE(task::FinalizeRiskModelConfig(&logistic).ok());
  logistic.add_hidden_units(8);
  EXPECT_THAT(std::string(task::FinalizeRiskModelConfig(&logistic).message()),
              HasSubstr("kind LOGISTIC has no hidden_units, embedding_dim or dropout to set"));
}

TEST(RiskMlp, NumBatchesTrackedIsTheOnlyNonAggregatableTensor) {
  RiskMlp model = SmallModel();
  const tensor::NamedTensors state = tensor::StateOf(*model);
  std::vector<std::string> skipped;
  for (const auto& [name, t] : state) {
    if (!tensor::IsAggregatable(t)) skipped.push_back(name);
  }
  EXPECT_THAT(skipped, ElementsAre("standardize.num_batches_tracked"));
  EXPECT_EQ(tensor::AggregatableOf(state).size(), state.size() - 1);
}

TEST(RiskMlp, WithoutNumericFeaturesHasNoStandardization) {
  RiskMlp model(0, std::vector<uint32_t>{4}, v1::RiskModelConfig());
  EXPECT_THAT(Names(tensor::StateOf(*model)),
              ElementsAre("embeddings.0.weight", "hidden.0.bias", "hidden.0.weight",
                          "hidden.1.bias", "hidden.1.weight", "output.bias", "output.weight"));
  model->eval();
  EXPECT_EQ(model->forward(torch::zeros({2, 0}), torch::tensor({{1}, {3}})).sizes(),
            torch::IntArrayRef({2}));
}

TEST(RiskMlp, ZeroConfigValuesTakeTheDocumentedDefaults) {
  const v1::RiskModelConfig c = WithDefaults(v1::RiskModelConfig());
  EXPECT_THAT(c.hidden_units(), ElementsAre(64, 32));
  EXPECT_EQ(c.embedding_dim(), 8u);
  EXPECT_DOUBLE_EQ(c.dropout(), 0.1);
  RiskMlp model(2, std::vector<uint32_t>{10}, v1::RiskModelConfig());
  EXPECT_EQ(model->config().hidden_units_size(), 2);
  EXPECT_EQ(tensor::SpecOf(tensor::StateOf(*model))[0].shape, (std::vector<int64_t>{10, 8}));
  // Set values are kept.
  EXPECT_THAT(WithDefaults(SmallConfig()).hidden_units(), ElementsAre(4, 3));
}

TEST(RiskMlp, SameSeedSameWeightsDifferentSeedDifferentWeights) {
  EXPECT_TRUE(AllEqual(tensor::StateOf(*SmallModel(42)), tensor::StateOf(*SmallModel(42))));
  EXPECT_FALSE(AllEqual(tensor::StateOf(*SmallModel(42)), tensor::StateOf(*SmallModel(43))));
}

TEST(RiskMlp, InitializationDoesNotDependOnTheGlobalRng) {
  torch::manual_seed(5);
  RiskMlp model = SmallModel(9);
  torch::manual_seed(123);
  EXPECT_TRUE(AllEqual(tensor::StateOf(*model), tensor::StateOf(*SmallModel(9))));
}

TEST(RiskMlp, DropoutIsReproducibleFromItsSeed) {
  RiskMlp model = SmallModel();
  model->train();
  auto run = [&] {
    model->SeedDropout(77);
    torch::Tensor out = model->forward(SomeNumeric(8), SomeCategorical(8));
    return out.detach();
  };
  torch::Tensor first = run();
  torch::Tensor second = run();
  EXPECT_TRUE(torch::allclose(first, second));
  model->eval();
  torch::Tensor x = model->forward(SomeNumeric(8), SomeCategorical(8));
  EXPECT_TRUE(torch::equal(x, model->forward(SomeNumeric(8), SomeCategorical(8))));
}

TEST(RiskMlp, LoadStateCopiesAnotherModelsState) {
  RiskMlp source = SmallModel(1);
  source->train();
  source->forward(SomeNumeric(8), SomeCategorical(8));  // moves the running statistics
  RiskMlp target = SmallModel(2);
  ASSERT_TRUE(tensor::LoadState(*target, tensor::StateOf(*source)).ok());
  EXPECT_TRUE(AllEqual(tensor::StateOf(*source), tensor::StateOf(*target)));
  source->eval();
  target->eval();
  EXPECT_TRUE(torch::equal(source->forward(SomeNumeric(5), SomeCategorical(5)),
                           target->forward(SomeNumeric(5), SomeCategorical(5))));
}

// One Python run (importing torch takes seconds): it loads our pickled state
// into the same architecture written in PyTorch, checks the logits, and writes
// a state dict of its own for LoadPickledState.
// The update is local − global for float tensors only, computed in the local
// tensors' own memory (no second model), as float32 also for other floats.
TEST(RiskTask, UpdateIsLocalMinusGlobalInTheLocalMemory) {
  tensor::NamedTensors global = {{"a", torch::tensor({1.0f, 2.0f, 3.0f})},
                                 {"b", torch::tensor({0.5}, torch::kFloat64)},
                                 {"n", torch::tensor(4, torch::kInt64)}};
  tensor::NamedTensors local = {{"a", torch::tensor({1.5f, 1.0f, 3.0f})},
                                {"b", torch::tensor({0.75}, torch::kFloat64)},
                                {"n", torch::tensor(9, torch::kInt64)}};
  const void* local_a = local[0].second.data_ptr();
  tensor::NamedTensors update = task::UpdateFrom(std::move(local), global);
  ASSERT_EQ(update.size(), 2u);
  EXPECT_EQ(update[0].first, "a");
  EXPECT_TRUE(torch::equal(update[0].second, torch::tensor({0.5f, -1.0f, 0.0f})));
  EXPECT_EQ(update[0].second.data_ptr(), local_a);
  EXPECT_EQ(update[1].first, "b");
  EXPECT_EQ(update[1].second.scalar_type(), torch::kFloat32);
  EXPECT_FLOAT_EQ(update[1].second.item<float>(), 0.25f);
  // The global is untouched.
  EXPECT_TRUE(torch::equal(global[0].second, torch::tensor({1.0f, 2.0f, 3.0f})));
}

TEST(RiskMlp, PickledStateRoundTripsThroughPythonTorch) {
  const std::filesystem::path dir = MakeTempDir();
  RiskMlp model = SmallModel(3);
  model->train();
  model->forward(SomeNumeric(8), SomeCategorical(8));  // non-trivial running statistics
  model->eval();
  const tensor::NamedTensors state = tensor::StateOf(*model);
  ASSERT_TRUE(tensor::SavePickledState(state, dir / "model.pt").ok());
  tensor::NamedTensors io;
  io.emplace_back("categorical", SomeCategorical(6));
  io.emplace_back("logits", model->forward(SomeNumeric(6), SomeCategorical(6)).detach());
  io.emplace_back("numeric", SomeNumeric(6));
  ASSERT_TRUE(tensor::SavePickledState(io, dir / "io.pt").ok());

  const std::string script = R"PY(
import sys
try:
    import torch
    from torch import nn
except ImportError:
    sys.exit(77)
state = torch.load(sys.argv[1])
assert isinstance(state, dict), type(state)
for name, t in state.items():
    print(name, str(t.dtype).replace("torch.", ""), list(t.shape))
class RiskMlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.standardize = nn.BatchNorm1d(3, affine=False, momentum=None)
        self.embeddings = nn.ModuleList([nn.Embedding(5, 2), nn.Embedding(7, 2)])
        self.hidden = nn.ModuleList([nn.Linear(7, 4), nn.Linear(4, 3)])
        self.output = nn.Linear(3, 1)
    def forward(self, numeric, categorical):
        parts = [self.standardize(numeric)]
        parts += [e(categorical[:, j]) for j, e in enumerate(self.embeddings)]
        x = torch.cat(parts, 1)
        for layer in self.hidden:
            x = torch.relu(layer(x))
        return self.output(x).squeeze(1)
m = RiskMlp()
m.load_state_dict(state, strict=True)
m.eval()
io = torch.load(sys.argv[2])
with torch.no_grad():
    got = m(io["numeric"], io["categorical"])
assert torch.allclose(got, io["logits"], atol=1e-6), (got, io["logits"])
print("LOGITS MATCH")
torch.save({"b": torch.arange(3, dtype=torch.float32), "a": torch.ones(2, 2, dtype=torch.int64)},
           sys.argv[3])
)PY";
  const PythonRun run =
      RunPython(dir, script,
                absl::StrCat((dir / "model.pt").string(), " ", (dir / "io.pt").string(), " ",
                             (dir / "from_python.pt").string()));
  if (run.exit_code == kNoTorch) {
    std::filesystem::remove_all(dir);
    GTEST_SKIP() << kPython << " cannot import torch (install python3-torch)";
  }
  ASSERT_EQ(run.exit_code, 0) << run.output;
  std::string expected;
  for (const auto& [name, t] : state) {
    std::vector<std::string> dims;
    for (int64_t d : t.sizes()) dims.push_back(absl::StrCat(d));
    absl::StrAppend(&expected, name, " ", tensor::DtypeName(t.scalar_type()), " [",
                    absl::StrJoin(dims, ", "), "]\n");
  }
  absl::StrAppend(&expected, "LOGITS MATCH\n");
  EXPECT_EQ(run.output, expected);

  absl::StatusOr<tensor::NamedTensors> from_python =
      tensor::LoadPickledState(dir / "from_python.pt");
  ASSERT_TRUE(from_python.ok()) << from_python.status();
  ASSERT_THAT(Names(*from_python), ElementsAre("a", "b"));  // canonical order
  EXPECT_TRUE(torch::equal((*from_python)[0].second, torch::ones({2, 2}, torch::kInt64)));
  EXPECT_TRUE(torch::equal((*from_python)[1].second, torch::arange(3, torch::kFloat32)));
  std::filesystem::remove_all(dir);
}

// Tests of the error paths follow.

TEST(RiskMlpErrors, LoadStateWrongShapeNamesTheTensorAndChangesNothing) {
  RiskMlp model = SmallModel(1);
  const tensor::NamedTensors before = tensor::CloneState(tensor::StateOf(*model));
  tensor::NamedTensors other =
      tensor::StateOf(*RiskMlp(3, std::vector<uint32_t>{5, 9}, SmallConfig(), 2));
  absl::Status status = tensor::LoadState(*model, other);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "tensor \"embeddings.1.weight\": shape [7, 2] expected, got [9, 2]");
  EXPECT_TRUE(AllEqual(before, tensor::StateOf(*model)));
}

TEST(RiskMlpErrors, LoadStateWrongDtype) {
  RiskMlp model = SmallModel();
  tensor::NamedTensors state = tensor::CloneState(tensor::StateOf(*model));
  state[2].second = state[2].second.to(torch::kFloat64);
  EXPECT_EQ(tensor::LoadState(*model, state).message(),
            "tensor \"hidden.0.bias\": dtype float32 expected, got float64");
}

TEST(RiskMlpErrors, LoadStateUnknownMissingOrDuplicateName) {
  RiskMlp model = SmallModel();
  tensor::NamedTensors state = tensor::CloneState(tensor::StateOf(*model));

  tensor::NamedTensors renamed = state;
  renamed[0].first = "embeddings.9.weight";
  EXPECT_EQ(tensor::LoadState(*model, renamed).message(),
            "unexpected tensor \"embeddings.9.weight\"");

  tensor::NamedTensors missing(state.begin() + 1, state.end());
  EXPECT_EQ(tensor::LoadState(*model, missing).message(), "missing tensor \"embeddings.0.weight\"");

  tensor::NamedTensors duplicate = state;
  duplicate.push_back(state[0]);
  EXPECT_EQ(tensor::LoadState(*model, duplicate).message(),
            "duplicate tensor \"embeddings.0.weight\"");
}

TEST(RiskMlpErrors, InvalidArgumentsAreReportedOrThrown) {
  v1::RiskModelConfig c = SmallConfig();
  EXPECT_EQ(CheckRiskMlpArgs(0, {}, c).message(), "the model needs at least one feature");
  EXPECT_EQ(CheckRiskMlpArgs(2, {0}, c).message(), "buckets[0] = 0 is not in 1..16777216");
  EXPECT_EQ(CheckRiskMlpArgs(-1, {3}, c).message(), "numeric width -1 is not in 0..4096");
  v1::RiskModelConfig bad_dropout = c;
  bad_dropout.set_dropout(1.0);
  EXPECT_EQ(CheckRiskMlpArgs(2, {3}, bad_dropout).message(), "dropout 1 is not in [0, 1)");
  v1::RiskModelConfig bad_hidden = c;
  bad_hidden.set_hidden_units(1, 9000);
  EXPECT_EQ(CheckRiskMlpArgs(2, {3}, bad_hidden).message(),
            "hidden_units[1] = 9000 is not in 1..8192");
  EXPECT_THROW(RiskMlp(0, std::vector<uint32_t>{}, c), c10::Error);
}

TEST(RiskMlpErrors, ForwardRejectsWrongInputs) {
  RiskMlp model = SmallModel();
  model->eval();
  EXPECT_THROW(model->forward(torch::zeros({2, 4}), SomeCategorical(2)), c10::Error);
  EXPECT_THROW(model->forward(SomeNumeric(2), torch::zeros({2, 2}, torch::kInt64).slice(1, 0, 1)),
               c10::Error);
  EXPECT_THROW(model->forward(SomeNumeric(2), SomeCategorical(3)), c10::Error);
  EXPECT_THROW(model->forward(SomeNumeric(2).to(torch::kFloat64), SomeCategorical(2)), c10::Error);
  EXPECT_THROW(model->forward(SomeNumeric(2), torch::full({2, 2}, 7, torch::kInt64)), c10::Error);
}

TEST(RiskMlpErrors, LoadPickledStateReportsMissingAndGarbageFiles) {
  const std::filesystem::path dir = MakeTempDir();
  absl::StatusOr<tensor::NamedTensors> missing = tensor::LoadPickledState(dir / "nope.pt");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("nope.pt"));
  std::ofstream(dir / "garbage.pt") << "this is not a pickle";
  absl::StatusOr<tensor::NamedTensors> garbage = tensor::LoadPickledState(dir / "garbage.pt");
  EXPECT_EQ(garbage.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(garbage.status().message()),
              HasSubstr("garbage.pt: not a pickled state dict"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace fedcustoms::models
