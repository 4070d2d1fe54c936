#include "common/models/boosted_trees_state.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "absl/strings/str_cat.h"

namespace fedcustoms::models {
namespace {

constexpr int64_t kNodeFields = 7;

absl::Status Bad(const std::string& tensor, const std::string& rule) {
  return absl::InvalidArgumentError(absl::StrCat("boosted trees state: ", tensor, ": ", rule));
}

}  // namespace

tensor::NamedTensors BoostedTreesState(const trees::TreeEnsemble& e) {
  std::vector<int64_t> edge_counts;
  std::vector<float> edges;
  for (const std::vector<float>& f : e.bins.numeric_edges) {
    edge_counts.push_back(static_cast<int64_t>(f.size()));
    edges.insert(edges.end(), f.begin(), f.end());
  }
  std::vector<int64_t> categorical(e.bins.categorical_bins.begin(), e.bins.categorical_bins.end());
  std::vector<int64_t> node_counts;
  std::vector<double> nodes;
  std::vector<uint8_t> left_bins;
  for (const trees::Tree& tree : e.trees) {
    node_counts.push_back(static_cast<int64_t>(tree.nodes.size()));
    for (const trees::TreeNode& n : tree.nodes) {
      nodes.insert(nodes.end(), {static_cast<double>(n.left), static_cast<double>(n.right),
                                 static_cast<double>(n.feature), n.categorical ? 1.0 : 0.0,
                                 static_cast<double>(n.threshold_bin), n.value, n.hessian});
      if (!n.leaf() && n.categorical) {
        left_bins.insert(left_bins.end(), n.left_bins.begin(), n.left_bins.end());
      }
    }
  }
  auto i64 = [](const std::vector<int64_t>& v) {
    return torch::tensor(v, torch::kInt64).reshape({static_cast<int64_t>(v.size())});
  };
  tensor::NamedTensors state = {
      {"base_score", torch::tensor(std::vector<double>{e.base_score}, torch::kFloat64)},
      {"bins.categorical_bins", i64(categorical)},
      {"bins.numeric_edge_counts", i64(edge_counts)},
      {"bins.numeric_edges",
       torch::tensor(edges, torch::kFloat32).reshape({static_cast<int64_t>(edges.size())})},
      {"trees.left_bins",
       torch::from_blob(left_bins.data(), {static_cast<int64_t>(left_bins.size())}, torch::kUInt8)
           .clone()},
      {"trees.node_counts", i64(node_counts)},
      {"trees.nodes",
       torch::tensor(nodes, torch::kFloat64)
           .reshape({static_cast<int64_t>(nodes.size()) / kNodeFields, kNodeFields})},
  };
  return state;
}

absl::StatusOr<trees::TreeEnsemble> BoostedTreesFromState(const tensor::NamedTensors& state) {
  std::map<std::string, at::Tensor> by_name;
  for (const auto& [name, t] : state) by_name[name] = t;
  auto get = [&](const std::string& name, at::ScalarType dtype, int64_t dims,
                 at::Tensor* out) -> absl::Status {
    auto it = by_name.find(name);
    if (it == by_name.end()) return Bad(name, "missing");
    if (it->second.scalar_type() != dtype || it->second.dim() != dims) {
      return Bad(
          name,
          absl::StrCat("expected ", c10::toString(dtype), " with ", dims, " dimension(s), found ",
                       c10::toString(it->second.scalar_type()), " with ", it->second.dim()));
    }
    *out = it->second.contiguous();
    return absl::OkStatus();
  };
  at::Tensor base, categorical, edge_counts, edges, left_bins, node_counts, nodes;
  for (auto [name, dtype, dims, out] :
       {std::tuple{"base_score", torch::kFloat64, 1, &base},
        std::tuple{"bins.categorical_bins", torch::kInt64, 1, &categorical},
        std::tuple{"bins.numeric_edge_counts", torch::kInt64, 1, &edge_counts},
        std::tuple{"bins.numeric_edges", torch::kFloat32, 1, &edges},
        std::tuple{"trees.left_bins", torch::kUInt8, 1, &left_bins},
        std::tuple{"trees.node_counts", torch::kInt64, 1, &node_counts},
        std::tuple{"trees.nodes", torch::kFloat64, 2, &nodes}}) {
    if (absl::Status s = get(name, dtype, dims, out); !s.ok()) return s;
  }
  if (state.size() != 7) return Bad("state", absl::StrCat(state.size(), " tensors, expected 7"));
  trees::TreeEnsemble e;
  if (base.numel() != 1 || !std::isfinite(base.item<double>())) {
    return Bad("base_score", "expected one finite value");
  }
  e.base_score = base.item<double>();
  const float* edge = edges.data_ptr<float>();
  int64_t used = 0;
  for (int64_t j = 0; j < edge_counts.numel(); ++j) {
    const int64_t n = edge_counts.data_ptr<int64_t>()[j];
    if (n < 0 || n > 255 || used + n > edges.numel()) {
      return Bad("bins.numeric_edge_counts",
                 absl::StrCat("feature ", j, " has ", n, " edges (0..255, within the edges)"));
    }
    std::vector<float> f(edge + used, edge + used + n);
    used += n;
    for (size_t k = 0; k < f.size(); ++k) {
      if (!std::isfinite(f[k]) || (k > 0 && !(f[k] > f[k - 1]))) {
        return Bad("bins.numeric_edges",
                   absl::StrCat("feature ", j, ": edges must be finite and ascending"));
      }
    }
    e.bins.numeric_edges.push_back(std::move(f));
  }
  if (used != edges.numel()) {
    return Bad("bins.numeric_edges", absl::StrCat(edges.numel(), " edges, the counts say ", used));
  }
  for (int64_t j = 0; j < categorical.numel(); ++j) {
    const int64_t b = categorical.data_ptr<int64_t>()[j];
    if (b < 1 || b > trees::kMaxCategoricalBins) {
      return Bad("bins.categorical_bins", absl::StrCat("feature ", j, " has ", b, " bins (1..",
                                                       trees::kMaxCategoricalBins, ")"));
    }
    e.bins.categorical_bins.push_back(static_cast<uint32_t>(b));
  }
  if (nodes.size(1) != kNodeFields) {
    return Bad("trees.nodes", absl::StrCat("expected ", kNodeFields, " columns"));
  }
  const double* row = nodes.data_ptr<double>();
  const uint8_t* bits = left_bins.data_ptr<uint8_t>();
  int64_t node_index = 0, bits_used = 0;
  const auto features = static_cast<double>(e.bins.features());
  for (int64_t t = 0; t < node_counts.numel(); ++t) {
    const int64_t count = node_counts.data_ptr<int64_t>()[t];
    if (count < 1 || node_index + count > nodes.size(0)) {
      return Bad("trees.node_counts", absl::StrCat("tree ", t, " has ", count, " nodes"));
    }
    trees::Tree tree;
    for (int64_t k = 0; k < count; ++k, ++node_index) {
      const double* r = row + node_index * kNodeFields;
      for (int64_t c = 0; c < kNodeFields; ++c) {
        if (!std::isfinite(r[c])) {
          return Bad("trees.nodes",
                     absl::StrCat("tree ", t, " node ", k, " has a non-finite value"));
        }
      }
      trees::TreeNode n;
      const bool leaf = r[0] == -1 && r[1] == -1;
      // Children come after their parent: no cycle, every walk ends.
      if (!leaf && !(r[0] > k && r[0] < count && r[1] > k && r[1] < count &&
                     r[0] == std::floor(r[0]) && r[1] == std::floor(r[1]) && r[0] != r[1])) {
        return Bad("trees.nodes", absl::StrCat("tree ", t, " node ", k,
                                               ": children must be two later nodes of the tree"));
      }
      n.left = static_cast<int32_t>(r[0]);
      n.right = static_cast<int32_t>(r[1]);
      n.value = r[5];
      n.hessian = r[6];
      if (!leaf) {
        if (!(r[2] >= 0 && r[2] < features && r[2] == std::floor(r[2]))) {
          return Bad("trees.nodes", absl::StrCat("tree ", t, " node ", k, ": feature ", r[2],
                                                 " is not one of the ", e.bins.features()));
        }
        n.feature = static_cast<uint32_t>(r[2]);
        n.categorical = r[3] != 0;
        if (n.categorical != e.bins.categorical(n.feature)) {
          return Bad("trees.nodes",
                     absl::StrCat("tree ", t, " node ", k, ": feature ", n.feature, " is ",
                                  n.categorical ? "not " : "", "categorical"));
        }
        const uint32_t bins = e.bins.bins(n.feature);
        if (n.categorical) {
          if (bits_used + bins > left_bins.numel()) {
            return Bad("trees.left_bins", "fewer than the categorical splits need");
          }
          n.left_bins.assign(bits + bits_used, bits + bits_used + bins);
          bits_used += bins;
        } else if (!(r[4] >= 0 && r[4] < bins && r[4] == std::floor(r[4]))) {
          return Bad("trees.nodes", absl::StrCat("tree ", t, " node ", k, ": threshold bin ", r[4],
                                                 " is not below the feature's ", bins, " bins"));
        } else {
          n.threshold_bin = static_cast<uint32_t>(r[4]);
        }
      }
      tree.nodes.push_back(std::move(n));
    }
    // A tree, not a graph: every node but the root is the child of exactly
    // one node (two parents would let a walk reach one leaf two ways, and
    // an orphan is a node no row reaches).
    std::vector<int> parents(tree.nodes.size(), 0);
    for (const trees::TreeNode& n : tree.nodes) {
      if (n.leaf()) continue;
      ++parents[static_cast<size_t>(n.left)];
      ++parents[static_cast<size_t>(n.right)];
    }
    for (size_t k = 1; k < parents.size(); ++k) {
      if (parents[k] != 1) {
        return Bad("trees.nodes",
                   absl::StrCat("tree ", t, " node ", k, " has ", parents[k], " parents, not 1"));
      }
    }
    e.trees.push_back(std::move(tree));
  }
  if (node_index != nodes.size(0)) {
    return Bad("trees.nodes", absl::StrCat(nodes.size(0), " nodes, the counts say ", node_index));
  }
  if (bits_used != left_bins.numel()) {
    return Bad("trees.left_bins",
               absl::StrCat(left_bins.numel(), " values, the categorical splits need ", bits_used));
  }
  return e;
}

}  // namespace fedcustoms::models
