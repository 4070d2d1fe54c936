// Server strategies (FedAvg, FedAvgM, FedAdagrad, FedAdam, FedYogi) against a
// direct element-wise computation in double over several rounds, their state
// saved and restored exactly, and persisted in the registry with the model.
#include "coordinator/aggregation/server_optimizer.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/crypto/ed25519.h"
#include "coordinator/aggregation/fed_avg.h"
#include "coordinator/config/coordinator_config.h"
#include "coordinator/registry/model_registry.h"
#include "tests/support/loopback_federation.h"

namespace fedcustoms::coordinator {
namespace {

using Kind = v1::ServerStrategyConfig;

tensor::NamedTensors Global() {
  torch::manual_seed(5);
  return {{"a.weight", torch::randn({4, 3})},
          {"b.bias", torch::randn({5})},
          {"bn.num_batches_tracked", torch::tensor(7, torch::kInt64)}};
}

// Round r's update of node k: distinct per round and node, some coordinates
// with opposite signs across rounds so that Yogi's sign term is exercised.
tensor::NamedTensors UpdateOf(int round, int node) {
  torch::manual_seed(100 * round + node);
  return {{"a.weight", torch::randn({4, 3}) * (0.1 * (round + 1))},
          {"b.bias", torch::randn({5}) * (0.05 * (node + 1))}};
}

v1::ServerStrategyConfig Config(Kind::Kind kind) {
  v1::ServerStrategyConfig c;
  c.set_kind(kind);
  c.set_server_learning_rate(kind == Kind::FEDAVG ? 0.7 : 0.05);
  c.set_momentum(0.8);
  c.set_beta1(0.85);
  c.set_beta2(0.95);
  c.set_tau(0.02);
  return c;
}

// The rules of ServerStrategyConfig written out per element, in double.
struct Reference {
  v1::ServerStrategyConfig c;
  std::vector<double> m = {}, v = {};
  void Step(std::vector<double>& w, const std::vector<double>& d) {
    if (m.empty()) {
      m.assign(w.size(), 0);
      v.assign(w.size(), c.kind() == Kind::FEDAVGM ? 0 : c.tau() * c.tau());
    }
    const double lr = c.server_learning_rate(), b1 = c.beta1(), b2 = c.beta2(), tau = c.tau();
    for (size_t i = 0; i < w.size(); ++i) {
      switch (c.kind()) {
        case Kind::FEDAVG:
          w[i] += lr * d[i];
          break;
        case Kind::FEDAVGM:
          v[i] = c.momentum() * v[i] + d[i];
          w[i] += lr * v[i];
          break;
        default: {
          m[i] = b1 * m[i] + (1 - b1) * d[i];
          const double d2 = d[i] * d[i];
          if (c.kind() == Kind::FEDADAGRAD) v[i] = v[i] + d2;
          if (c.kind() == Kind::FEDADAM) v[i] = b2 * v[i] + (1 - b2) * d2;
          if (c.kind() == Kind::FEDYOGI) {
            const double diff = v[i] - d2;
            v[i] = v[i] - (1 - b2) * d2 * ((diff > 0) - (diff < 0));
          }
          w[i] += lr * m[i] / (std::sqrt(v[i]) + tau);
        }
      }
    }
  }
};

std::vector<double> Flat(const tensor::NamedTensors& tensors, size_t count) {
  std::vector<double> out;
  for (size_t i = 0; i < count; ++i) {
    at::Tensor t = tensors[i].second.to(torch::kFloat64).contiguous().view(-1);
    out.insert(out.end(), t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
  }
  return out;
}

// One round: three nodes with 100, 300 and 600 samples.
tensor::NamedTensors Round(const tensor::NamedTensors& global, int round,
                           ServerOptimizer& optimizer) {
  FedAvg fed_avg(UpdateSpec::Of(global));
  const uint64_t samples[] = {100, 300, 600};
  for (int k = 0; k < 3; ++k) {
    EXPECT_TRUE(fed_avg.Add(InMemoryTensors(UpdateOf(round, k)), samples[k]).ok());
  }
  absl::StatusOr<tensor::NamedTensors> next = fed_avg.Apply(InMemoryTensors(global), &optimizer);
  EXPECT_TRUE(next.ok()) << next.status();
  return *next;
}

std::vector<double> MeanUpdate(int round) {
  const double samples[] = {100, 300, 600};
  std::vector<double> mean;
  for (int k = 0; k < 3; ++k) {
    std::vector<double> u = Flat(UpdateOf(round, k), 2);
    if (mean.empty()) mean.assign(u.size(), 0);
    for (size_t i = 0; i < u.size(); ++i) mean[i] += u[i] * samples[k] / 1000.0;
  }
  return mean;
}

class ServerOptimizerTest : public ::testing::TestWithParam<Kind::Kind> {};

TEST_P(ServerOptimizerTest, FourRoundsMatchTheDirectComputation) {
  tensor::NamedTensors global = Global();
  ServerOptimizer optimizer(Config(GetParam()), UpdateSpec::Of(global));
  Reference reference{Config(GetParam())};
  std::vector<double> w = Flat(global, 2);
  for (int round = 0; round < 4; ++round) {
    global = Round(global, round, optimizer);
    reference.Step(w, MeanUpdate(round));
    const std::vector<double> got = Flat(global, 2);
    ASSERT_EQ(got.size(), w.size());
    for (size_t i = 0; i < w.size(); ++i) {
      ASSERT_NEAR(got[i], w[i], 2e-5 * (1 + std::abs(w[i])))
          << optimizer.name() << " round " << round << " element " << i;
    }
    // The integer buffer is never touched by a strategy.
    EXPECT_EQ(global[2].second.item<int64_t>(), 7);
  }
}

TEST_P(ServerOptimizerTest, SavedStateContinuesExactly) {
  tensor::NamedTensors global = Global();
  const UpdateSpec spec = UpdateSpec::Of(global);
  ServerOptimizer running(Config(GetParam()), spec);
  for (int round = 0; round < 2; ++round) global = Round(global, round, running);
  ServerOptimizer restarted(Config(GetParam()), spec);
  ASSERT_TRUE(restarted.Restore(running.State()).ok());
  tensor::NamedTensors a = Round(global, 2, running);
  tensor::NamedTensors b = Round(global, 2, restarted);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i].second, b[i].second));
  const size_t moments = GetParam() == Kind::FEDAVG ? 0 : GetParam() == Kind::FEDAVGM ? 2 : 4;
  EXPECT_EQ(running.State().size(), moments);
}

INSTANTIATE_TEST_SUITE_P(AllRules, ServerOptimizerTest,
                         ::testing::Values(Kind::FEDAVG, Kind::FEDAVGM, Kind::FEDADAGRAD,
                                           Kind::FEDADAM, Kind::FEDYOGI));

TEST(ServerOptimizer, RestoreRefusesStateThatDoesNotFit) {
  const UpdateSpec spec = UpdateSpec::Of(Global());
  ServerOptimizer adam(Config(Kind::FEDADAM), spec);
  tensor::NamedTensors state = adam.State();

  tensor::NamedTensors missing(state.begin(), state.end() - 1);
  absl::Status s = adam.Restore(missing);
  EXPECT_NE(std::string(s.message()).find("lacks tensor \"v/b.bias\""), std::string::npos) << s;

  tensor::NamedTensors wrong_shape = state;
  wrong_shape[0].second = torch::zeros({3, 4});
  s = adam.Restore(wrong_shape);
  EXPECT_NE(std::string(s.message()).find("\"m/a.weight\" is"), std::string::npos) << s;
  EXPECT_NE(std::string(s.message()).find("expected float32 [4,3]"), std::string::npos) << s;

  ServerOptimizer momentum(Config(Kind::FEDAVGM), spec);
  s = momentum.Restore(state);  // Adam's m and v
  EXPECT_NE(std::string(s.message()).find("unexpected tensor \"m/a.weight\""), std::string::npos)
      << s;
}

TEST(ServerOptimizer, ConfigDefaultsAndRangesNameTheField) {
  // Finalizing checks fields only; none of these files needs to exist.
  v1::CoordinatorConfig c = testing_support::LoopbackCoordinatorConfig(
      "pki", "dir", "schema.json", v1::AGGREGATION_MODE_UNSPECIFIED);
  v1::TaskConfig* t = c.mutable_tasks(0);
  t->mutable_strategy()->set_kind(Kind::FEDADAM);
  auto ok = FinalizeCoordinatorConfig(c, "coordinator.json", "");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_DOUBLE_EQ(ok->tasks(0).strategy().server_learning_rate(), 0.01);
  EXPECT_DOUBLE_EQ(ok->tasks(0).strategy().beta2(), 0.99);
  EXPECT_DOUBLE_EQ(ok->tasks(0).strategy().tau(), 1e-3);

  c.mutable_tasks(0)->mutable_strategy()->set_beta1(1.0);
  auto bad = FinalizeCoordinatorConfig(c, "coordinator.json", "");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "coordinator.json: tasks[0].strategy: beta1: 1 is outside [0, 1)");
  c.mutable_tasks(0)->mutable_strategy()->set_beta1(0.9);
  c.mutable_tasks(0)->mutable_strategy()->set_server_learning_rate(0);  // explicit 0 is not "unset"
  bad = FinalizeCoordinatorConfig(c, "coordinator.json", "");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "coordinator.json: tasks[0].strategy: server_learning_rate: 0 is outside (0, 100]");
}

TEST(ServerOptimizer, StateIsPublishedWithTheVersionAndCheckedOnLoad) {
  const std::string root = absl::StrCat(std::filesystem::temp_directory_path().string(),
                                        "/fedcustoms-strategy-", ::getpid());
  std::filesystem::remove_all(root);
  std::filesystem::create_directories(root);
  ASSERT_TRUE(crypto::GenerateEd25519KeyPair(root + "/sign.key", root + "/sign.pub").ok());
  auto signer = crypto::Ed25519Signer::Create(root + "/sign.key");
  ASSERT_TRUE(signer.ok());
  auto verifier = crypto::Ed25519Verifier::Create(root + "/sign.pub");
  ASSERT_TRUE(verifier.ok());
  auto registry = ModelRegistry::Open(root + "/registry", signer->get(), verifier->get());
  ASSERT_TRUE(registry.ok()) << registry.status();

  tensor::NamedTensors global = Global();
  ServerOptimizer yogi(Config(Kind::FEDYOGI), UpdateSpec::Of(global));
  global = Round(global, 0, yogi);
  manifest::ModelManifest m;
  m.task = "risk";
  m.version = 0;
  m.strategy = yogi.name();
  ASSERT_TRUE((*registry)->Publish(m, global, yogi.State()).ok());
  m.version = 1;
  ASSERT_TRUE((*registry)->Publish(m, global).ok());  // no state

  auto loaded = (*registry)->LoadServerState("risk", 0);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ServerOptimizer restored(Config(Kind::FEDYOGI), UpdateSpec::Of(global));
  ASSERT_TRUE(restored.Restore(*loaded).ok());
  const tensor::NamedTensors a = yogi.State(), b = restored.State();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i].second, b[i].second));
  auto none = (*registry)->LoadServerState("risk", 1);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  {  // One flipped byte in the saved state is refused, never loaded.
    std::fstream f(root + "/registry/risk/v00000000/server_state.pt",
                   std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x5a');
  }
  auto damaged = (*registry)->LoadServerState("risk", 0);
  EXPECT_EQ(damaged.status().code(), absl::StatusCode::kDataLoss) << damaged.status();
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace fedcustoms::coordinator
