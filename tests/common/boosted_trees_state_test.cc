// A gradient-boosted tree model as a state dict (common/models/
// boosted_trees_state.h): it round-trips exactly, through torch's pickle too,
// and a hostile state is refused with the tensor and the rule named.
#include "common/models/boosted_trees_state.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "common/trees/boosted_trees_trainer.h"

namespace fedcustoms::models {
namespace {

using ::testing::HasSubstr;

// A small ensemble with numeric and categorical splits, trained on rows whose
// label depends on both.
struct Trained {
  data::DeclarationTable table;
  trees::TreeEnsemble ensemble;
};

Trained TrainSmall() {
  Trained t;
  t.table.rows = 600;
  t.table.numeric_names = {"x"};
  t.table.categorical_names = {"c"};
  t.table.buckets = {6};
  for (size_t i = 0; i < 600; ++i) {
    const float x = static_cast<float>(i % 50);
    const int64_t c = static_cast<int64_t>(i % 6);
    t.table.numeric.push_back(x);
    t.table.categorical.push_back(c);
    t.table.labels.push_back((x > 25) != (c % 3 == 0) ? 1.0f : 0.0f);
  }
  std::vector<int64_t> rows(600);
  for (int64_t i = 0; i < 600; ++i) rows[static_cast<size_t>(i)] = i;
  trees::BoostingRows party(t.table, rows, {});
  trees::BoostingParams params;
  params.trees = 5;
  params.tree.max_depth = 3;
  params.early_stopping_trees = 0;
  trees::BoostingRows* parties[] = {&party};
  auto result = trees::TrainBoostedTrees(parties, params);
  EXPECT_TRUE(result.ok()) << result.status();
  if (result.ok()) t.ensemble = result->ensemble;
  return t;
}

at::Tensor& Tensor(tensor::NamedTensors& state, const std::string& name) {
  for (auto& [n, t] : state) {
    if (n == name) return t;
  }
  ADD_FAILURE() << "no tensor " << name;
  static at::Tensor none;
  return none;
}

TEST(BoostedTreesState, RoundTripsExactlyThroughTorchPickle) {
  const Trained t = TrainSmall();
  bool categorical_split = false;
  for (const trees::Tree& tree : t.ensemble.trees) {
    for (const trees::TreeNode& n : tree.nodes) categorical_split |= !n.leaf() && n.categorical;
  }
  ASSERT_TRUE(categorical_split);
  const tensor::NamedTensors state = BoostedTreesState(t.ensemble);
  EXPECT_TRUE(tensor::IsCanonical(state).ok());
  const std::string path =
      (std::filesystem::temp_directory_path() / "trees_state_test.pt").string();
  ASSERT_TRUE(tensor::SavePickledState(state, path).ok());
  auto loaded = tensor::LoadPickledState(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  auto back = BoostedTreesFromState(*loaded);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->bins.numeric_edges, t.ensemble.bins.numeric_edges);
  EXPECT_EQ(back->bins.categorical_bins, t.ensemble.bins.categorical_bins);
  std::vector<int64_t> rows(600);
  for (int64_t i = 0; i < 600; ++i) rows[static_cast<size_t>(i)] = i;
  const std::vector<uint16_t> binned = trees::BinRows(t.ensemble.bins, t.table, rows);
  for (size_t i = 0; i < 600; ++i) {
    EXPECT_EQ(back->PredictLogit(&binned[i * 2]), t.ensemble.PredictLogit(&binned[i * 2]));
  }
}

// Tests of all the error paths follow: a state from the network or the disk.

TEST(BoostedTreesState, AHostileStateIsRefusedNamingTheTensorAndTheRule) {
  const Trained t = TrainSmall();
  struct Case {
    std::function<void(tensor::NamedTensors&)> spoil;
    const char* expected;
  };
  const Case cases[] = {
      {[](auto& s) { s.pop_back(); }, "trees.nodes: missing"},
      {[](auto& s) { Tensor(s, "base_score") = torch::zeros({1}, torch::kFloat32); },
       "base_score: expected Double with 1 dimension(s), found Float"},
      {[](auto& s) { Tensor(s, "base_score").fill_(NAN); }, "base_score: expected one finite"},
      {[](auto& s) {
         at::Tensor& e = Tensor(s, "bins.numeric_edges");
         if (e.numel() > 1) e[1] = e[0];
       },
       "bins.numeric_edges: feature 0: edges must be finite and ascending"},
      {[](auto& s) { Tensor(s, "bins.categorical_bins")[0] = 5000; },
       "bins.categorical_bins: feature 0 has 5000 bins"},
      {[](auto& s) { Tensor(s, "trees.nodes")[0][0] = 0; },
       "tree 0 node 0: children must be two later nodes of the tree"},
      {[](auto& s) { Tensor(s, "trees.nodes")[0][2] = 7; }, "tree 0 node 0: feature 7 is not"},
      {[](auto& s) { Tensor(s, "trees.nodes")[0][5] = INFINITY; },
       "tree 0 node 0 has a non-finite value"},
      {[](auto& s) { Tensor(s, "trees.node_counts")[0] = 100000; }, "tree 0 has 100000 nodes"},
      {[](auto& s) {
         at::Tensor& bits = Tensor(s, "trees.left_bins");
         bits = torch::cat({bits, torch::ones({1}, torch::kUInt8)});
       },
       "trees.left_bins:"},
  };
  for (const Case& c : cases) {
    tensor::NamedTensors state = BoostedTreesState(t.ensemble);
    c.spoil(state);
    const absl::Status s = BoostedTreesFromState(state).status();
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << c.expected << ": " << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.expected));
  }
}

}  // namespace
}  // namespace fedcustoms::models
