#include "coordinator/rounds/candidate_check.h"

#include <torch/torch.h>

#include <cmath>
#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/secagg/fixed_point.h"

namespace fedcustoms::coordinator {
namespace {

// Σ of squares of one tensor and of its change, summed over the slices.
struct Norms {
  double global = 0;
  double change = 0;
  int64_t numel = 0;
};

}  // namespace

absl::StatusOr<CandidateReport> CheckCandidate(const tensor::NamedTensors& candidate,
                                               const TensorSource& global,
                                               const CandidateLimits& limits) {
  std::map<std::string, size_t> index;
  std::vector<at::Tensor> flat(candidate.size());
  for (size_t i = 0; i < candidate.size(); ++i) {
    const auto& [name, t] = candidate[i];
    if (!index.emplace(name, i).second) {
      return absl::FailedPreconditionError(
          absl::StrCat("the candidate has two tensors named ", name));
    }
    flat[i] = t.reshape({-1});  // a view of a contiguous tensor, once
    if (!at::isFloatingType(t.scalar_type())) continue;
    if (!torch::isfinite(t).all().item<bool>()) {
      return absl::FailedPreconditionError(
          absl::StrCat("candidate tensor ", name, " has NaN or infinite values"));
    }
    if (name.ends_with("running_var") && t.numel() > 0 && !(t > 0).all().item<bool>()) {
      return absl::FailedPreconditionError(
          absl::StrCat("candidate tensor ", name, " has a variance <= 0 (min ",
                       t.min().item<double>(), "): standardizing with it would give NaN scores"));
    }
  }
  std::vector<Norms> norms(candidate.size());
  absl::Status read = global.ForEach([&](const TensorSlice& slice) -> absl::Status {
    auto it = index.find(slice.name);
    if (it == index.end()) {
      return absl::FailedPreconditionError(
          absl::StrCat("the global model's tensor ", slice.name, " is not in the candidate"));
    }
    const at::Tensor& next = flat[it->second];
    if (slice.total_numel != next.numel()) {
      return absl::FailedPreconditionError(absl::StrCat("candidate tensor ", slice.name, " has ",
                                                        next.numel(), " values, the global one ",
                                                        slice.total_numel));
    }
    if (!at::isFloatingType(next.scalar_type()) || slice.data.numel() == 0) return absl::OkStatus();
    const at::Tensor base = slice.data.to(torch::kFloat64);
    const at::Tensor part = next.narrow(0, slice.offset, slice.data.numel()).to(torch::kFloat64);
    Norms& n = norms[it->second];
    n.global += base.square().sum().item<double>();
    n.change += (part - base).square().sum().item<double>();
    n.numel += slice.data.numel();
    return absl::OkStatus();
  });
  if (!read.ok()) return read;
  CandidateReport report;
  for (size_t i = 0; i < candidate.size(); ++i) {
    const std::string& name = candidate[i].first;
    const Norms& n = norms[i];
    if (n.numel == 0 || secagg::IsStandardizationStatistic(name)) continue;
    // A tensor the global model lacks is refused above; one with no values
    // read (n.numel 0) has nothing to bound.
    const double scale = std::max(std::sqrt(n.global / n.numel), CandidateLimits::kChangeFloor);
    const double relative = std::sqrt(n.change / n.numel) / scale;
    if (relative > report.max_relative_change) report = {relative, name};
    if (limits.max_relative_change > 0 && relative > limits.max_relative_change) {
      return absl::FailedPreconditionError(absl::StrCat(
          "candidate tensor ", name, " moved ", relative,
          " times its scale (RMS of the change over the global tensor's RMS, at least ",
          CandidateLimits::kChangeFloor, "); max_relative_change is ", limits.max_relative_change));
    }
  }
  return report;
}

}  // namespace fedcustoms::coordinator
