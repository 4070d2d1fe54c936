#include "coordinator/aggregation/server_optimizer.h"

#include <torch/torch.h>

#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace fedcustoms::coordinator {
namespace {

using Kind = v1::ServerStrategyConfig;

std::string NameOf(v1::ServerStrategyConfig::Kind kind) {
  switch (kind) {
    case Kind::FEDAVGM:
      return "fedavgm";
    case Kind::FEDADAGRAD:
      return "fedadagrad";
    case Kind::FEDADAM:
      return "fedadam";
    case Kind::FEDYOGI:
      return "fedyogi";
    default:
      return "fedavg";
  }
}

bool HasFirstMoment(Kind::Kind kind) {
  return kind == Kind::FEDADAGRAD || kind == Kind::FEDADAM || kind == Kind::FEDYOGI;
}

}  // namespace

ServerOptimizer::ServerOptimizer(const v1::ServerStrategyConfig& config, const UpdateSpec& spec)
    : config_(config), spec_(spec), name_(NameOf(config.kind())) {
  Reset();
}

void ServerOptimizer::Reset() {
  m_.clear();
  v_.clear();
  const Kind::Kind kind = config_.kind();
  if (kind == Kind::FEDAVG || kind == Kind::KIND_UNSPECIFIED) return;
  const double v0 = kind == Kind::FEDAVGM ? 0.0 : config_.tau() * config_.tau();
  for (const UpdateSpec::Entry& e : spec_.entries) {
    int64_t n = 1;
    for (int64_t d : e.shape) n *= d;
    if (HasFirstMoment(kind)) m_.push_back(torch::zeros({n}, torch::kFloat32));
    v_.push_back(torch::full({n}, v0, torch::kFloat32));
  }
}

void ServerOptimizer::Step(size_t entry, int64_t offset, at::Tensor mean) {
  torch::NoGradGuard no_grad;
  const double lr = config_.server_learning_rate();
  const int64_t n = mean.numel();
  switch (config_.kind()) {
    case Kind::FEDAVGM: {
      at::Tensor v = v_[entry].narrow(0, offset, n);
      v.mul_(config_.momentum()).add_(mean);
      mean.copy_(v).mul_(lr);
      return;
    }
    case Kind::FEDADAGRAD:
    case Kind::FEDADAM:
    case Kind::FEDYOGI: {
      const double b1 = config_.beta1();
      const double b2 = config_.beta2();
      at::Tensor m = m_[entry].narrow(0, offset, n);
      at::Tensor v = v_[entry].narrow(0, offset, n);
      m.mul_(b1).add_(mean, 1 - b1);
      if (config_.kind() == Kind::FEDADAGRAD) {
        v.addcmul_(mean, mean);
      } else if (config_.kind() == Kind::FEDADAM) {
        v.mul_(b2).addcmul_(mean, mean, 1 - b2);
      } else {
        const at::Tensor squared = mean * mean;
        v.sub_(squared * torch::sign(v - squared), 1 - b2);
      }
      // mean <- lr * m / (sqrt(v) + tau), reusing mean's memory.
      torch::sqrt_out(mean, v).add_(config_.tau());
      mean.reciprocal_().mul_(m).mul_(lr);
      return;
    }
    default:
      if (lr != 1.0) mean.mul_(lr);
      return;
  }
}

tensor::NamedTensors ServerOptimizer::State() const {
  tensor::NamedTensors state;
  for (size_t i = 0; i < m_.size(); ++i) {
    state.emplace_back("m/" + spec_.entries[i].name, m_[i].view(spec_.entries[i].shape));
  }
  for (size_t i = 0; i < v_.size(); ++i) {
    state.emplace_back("v/" + spec_.entries[i].name, v_[i].view(spec_.entries[i].shape));
  }
  return state;
}

absl::Status ServerOptimizer::Restore(const tensor::NamedTensors& state) {
  std::map<std::string, at::Tensor> saved(state.begin(), state.end());
  std::vector<at::Tensor> m, v;
  auto take = [&](const std::string& prefix, size_t count, std::vector<at::Tensor>& out) {
    for (size_t i = 0; i < count; ++i) {
      const UpdateSpec::Entry& e = spec_.entries[i];
      const std::string key = prefix + e.name;
      auto it = saved.find(key);
      if (it == saved.end()) {
        return absl::InvalidArgumentError(absl::StrCat(name_, " state lacks tensor \"", key, "\""));
      }
      if (it->second.sizes() != at::IntArrayRef(e.shape) ||
          it->second.scalar_type() != torch::kFloat32) {
        return absl::InvalidArgumentError(
            absl::StrCat(name_, " state tensor \"", key, "\" is ", it->second.toString(), " [",
                         absl::StrJoin(it->second.sizes(), ","), "], expected float32 [",
                         absl::StrJoin(e.shape, ","), "]"));
      }
      out.push_back(it->second.contiguous().view(-1).clone());
      saved.erase(it);
    }
    return absl::OkStatus();
  };
  if (absl::Status s = take("m/", m_.size(), m); !s.ok()) return s;
  if (absl::Status s = take("v/", v_.size(), v); !s.ok()) return s;
  if (!saved.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(name_, " state has unexpected tensor \"",
                                                   saved.begin()->first,
                                                   "\" (saved by another strategy?)"));
  }
  m_ = std::move(m);
  v_ = std::move(v);
  return absl::OkStatus();
}

}  // namespace fedcustoms::coordinator
