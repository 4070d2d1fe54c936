// The re-run attack of docs/threat_model.md, computed on real local training:
// a coordinator that completes a round with every node, then runs the round
// again on the same model without the target, learns the difference of two
// weighted sums. With training reproducible from the coordinator's seed that
// difference is exactly the target's weighted update. With each node's own
// OS randomness mixed into the seed (the default) the other nodes' retraining
// noise stays in it, but it hides little: the estimate still points the
// target's way. That is why nodes refuse to confirm a second survivor list
// for one model (tests/adversarial/malicious_coordinator_test.cc), rather
// than relying on the noise. Masking is exact
// (tests/federation/secure_aggregation_test.cc), so the plain sums here are
// what the attacker would unmask.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>

#include "common/synth/declarations_synth.h"
#include "node/config/node_config.h"
#include "node/learner/local_learner.h"
#include "tests/support/federation_dir.h"
#include "tests/support/loopback_federation.h"

namespace fedcustoms {
namespace {

const std::vector<std::string> kAdmins = {"EE", "FI", "LV", "SE"};
const std::string kTarget = "EE";

class RerunAttackTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto root = testing_support::MakeFederationDir("rerun", kAdmins);
    ASSERT_TRUE(root.ok()) << root.status();
    root_ = new std::string(*root);
    synth::SynthOptions synth;
    synth.admins = kAdmins;
    synth.rows = 1500;
    synth.seed = 5;
    ASSERT_TRUE(testing_support::AddSyntheticData(*root_, synth).ok());
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*root_);
    delete root_;
  }

  // Every admin's Σ-weighted update (n_i x_i) trained from `global` for round
  // `round_id` of a task whose coordinator seed is 1.
  std::map<std::string, torch::Tensor> WeightedUpdates(const tensor::NamedTensors& global,
                                                       uint64_t round_id, bool reproducible) {
    std::map<std::string, torch::Tensor> out;
    for (const std::string& admin : kAdmins) {
      auto config = node::FinalizeNodeConfig(
          testing_support::LoopbackNodeConfig(*root_, admin, 1, "rerun", "risk"), "test", "");
      EXPECT_TRUE(config.ok()) << config.status();
      auto learner = node::CreateLocalLearner(*config);
      EXPECT_TRUE(learner.ok()) << learner.status();
      if (!learner.ok()) return {};
      v1::TrainingConfig training;
      training.set_local_epochs(2);
      training.set_batch_size(128);
      training.set_learning_rate(0.01);
      training.set_optimizer("adam");
      training.set_max_positive_weight(30);
      training.set_seed(node::RoundTrainingSeed(1, round_id, reproducible));
      tensor::NamedTensors start;
      for (const auto& [name, t] : global) start.emplace_back(name, t.clone());
      auto trained = (*learner)->Train(spec_, std::move(start), training, /*dp=*/nullptr);
      EXPECT_TRUE(trained.ok()) << trained.status();
      if (!trained.ok()) return {};
      std::vector<torch::Tensor> flat;
      for (const auto& [name, t] : trained->update) flat.push_back(t.flatten());
      out[admin] = torch::cat(flat).to(torch::kFloat64) * static_cast<double>(trained->samples);
    }
    return out;
  }

  // How far the attacker's estimate of the target's weighted update is from
  // it: the round with everyone minus the rerun without the target (the
  // rerun is given the same seed, as a coordinator choosing it would).
  struct Estimate {
    double relative_error = 0;
    double cosine = 0;
  };
  Estimate Attack(bool reproducible) {
    auto learner_config = node::FinalizeNodeConfig(
        testing_support::LoopbackNodeConfig(*root_, kTarget, 1, "rerun", "risk"), "test", "");
    EXPECT_TRUE(learner_config.ok());
    auto learner = node::CreateLocalLearner(*learner_config);
    EXPECT_TRUE(learner.ok());
    v1::TaskAssignment assignment;
    assignment.set_task("risk");
    assignment.set_task_kind(v1::TASK_RISK);
    spec_ = (*learner)->SpecOf(assignment);
    auto global = task::InitialState(spec_, 7);
    EXPECT_TRUE(global.ok()) << global.status();
    std::map<std::string, torch::Tensor> first = WeightedUpdates(*global, 5, reproducible);
    std::map<std::string, torch::Tensor> rerun = WeightedUpdates(*global, 5, reproducible);
    torch::Tensor all = torch::zeros_like(first[kTarget]);
    torch::Tensor others = torch::zeros_like(first[kTarget]);
    for (const std::string& admin : kAdmins) {
      all += first[admin];
      if (admin != kTarget) others += rerun[admin];
    }
    const torch::Tensor estimate = all - others;
    const torch::Tensor truth = first[kTarget];
    Estimate e;
    e.relative_error = ((estimate - truth).norm() / truth.norm()).item<double>();
    e.cosine = (torch::dot(estimate, truth) / (estimate.norm() * truth.norm())).item<double>();
    return e;
  }

  static std::string* root_;
  task::ModelSpec spec_;
};

std::string* RerunAttackTest::root_ = nullptr;

TEST_F(RerunAttackTest, ReproducibleTrainingGivesTheTargetsUpdateAway) {
  const Estimate e = Attack(/*reproducible=*/true);
  std::printf("rerun attack with reproducible training: relative error %.2e, cosine %.6f\n",
              e.relative_error, e.cosine);
  EXPECT_LT(e.relative_error, 1e-6);  // the attack works: why nodes do not train this way
}

// Measured (4 nodes of 1 500 synthetic rows, 2 local epochs): relative error
// 0.15 to 0.16, cosine 0.99, run to run. The bounds say "inexact but close".
TEST_F(RerunAttackTest, FreshTrainingRandomnessAloneHidesLittle) {
  const Estimate e = Attack(/*reproducible=*/false);
  std::printf("rerun attack with fresh training randomness: relative error %.3f, cosine %.3f\n",
              e.relative_error, e.cosine);
  EXPECT_GT(e.relative_error, 1e-3);  // no longer the update itself
  EXPECT_GT(e.cosine, 0.8);           // but still most of it
}

}  // namespace
}  // namespace fedcustoms
