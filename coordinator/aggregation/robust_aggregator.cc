#include "coordinator/aggregation/robust_aggregator.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <numeric>

#include "absl/strings/str_cat.h"

namespace fedcustoms::coordinator {
namespace {

using Kind = v1::RobustAggregationConfig;

// Columns sorted or multiplied at a time: a block of all n updates stays a
// few MiB, so the sort's copy never approaches the size of the updates.
constexpr int64_t kBlockColumns = 1 << 15;

// Up to this many updates, the sorting rules run a sorting network across
// columns (vectorized compare-exchanges between rows); above it a
// per-coordinate selection is cheaper.
constexpr int64_t kNetworkMaxUpdates = 128;
// Columns per network block: n rows of them stay in L1 (about 24 KiB), so
// the compare-exchange passes over a block never wait on L2.
int64_t NetworkColumns(int64_t n) {
  return std::clamp<int64_t>((24 * 1024 / 4 / n) / 64 * 64, 128, 4096);
}

// Runs `network` over one block: `rows` holds n rows of `width` columns,
// `stride` floats apart; each compare-exchange is a min/max over the columns
// at once. Cloned for AVX2, where it is twice as wide as the SSE2 default
// (the build targets any x86-64; the loader picks the clone).
__attribute__((target_clones("avx2", "default"))) void RunNetworkOnBlock(
    float* rows, int64_t stride, int64_t width,
    const std::vector<std::pair<int64_t, int64_t>>& network) {
  for (const auto& [first_row, second_row] : network) {
    float* __restrict lo = rows + first_row * stride;
    float* __restrict hi = rows + second_row * stride;
    for (int64_t k = 0; k < width; ++k) {
      const float a = lo[k], z = hi[k];
      lo[k] = std::min(a, z);
      hi[k] = std::max(a, z);
    }
  }
}

// Batcher's odd-even merge sort network for the next power of two at or
// above n, without the comparators that touch a position >= n (those would
// compare with +inf padding and never exchange): 32 compare-exchanges for
// n = 10 and 191 for n = 32, against 45 and 496 for odd-even transposition.
std::vector<std::pair<int64_t, int64_t>> SortingNetwork(int64_t n) {
  int64_t size = 1;
  while (size < n) size *= 2;
  std::vector<std::pair<int64_t, int64_t>> out;
  for (int64_t p = 1; p < size; p *= 2) {
    for (int64_t k = p; k >= 1; k /= 2) {
      for (int64_t j = k % p; j <= size - 1 - k; j += 2 * k) {
        for (int64_t i = 0; i <= std::min(k - 1, size - j - k - 1); ++i) {
          const int64_t a = i + j, b = i + j + k;
          if (a / (2 * p) == b / (2 * p) && b < n) out.emplace_back(a, b);
        }
      }
    }
  }
  return out;
}

// The comparators of `network` that the values at positions `wanted` depend
// on (a backward pass): for the median, the comparators of the last stages
// that only order the upper or lower half drop out.
std::vector<std::pair<int64_t, int64_t>> PrunedFor(
    const std::vector<std::pair<int64_t, int64_t>>& network, std::vector<bool> wanted) {
  std::vector<std::pair<int64_t, int64_t>> kept;
  for (auto it = network.rbegin(); it != network.rend(); ++it) {
    if (!wanted[it->first] && !wanted[it->second]) continue;
    wanted[it->first] = wanted[it->second] = true;
    kept.push_back(*it);
  }
  std::reverse(kept.begin(), kept.end());
  return kept;
}

}  // namespace

RobustAggregator::RobustAggregator(const v1::RobustAggregationConfig& config, UpdateSpec spec,
                                   uint32_t capacity)
    : config_(config), spec_(std::move(spec)) {
  for (const UpdateSpec::Entry& e : spec_.entries) {
    offsets_.push_back(parameters_);
    int64_t n = 1;
    for (int64_t d : e.shape) n *= d;
    parameters_ += n;
  }
  // Zeroed (first touched) here, when the round opens, so that copying an
  // update in does not pay the page faults.
  rows_ = torch::zeros({static_cast<int64_t>(capacity), parameters_}, torch::kFloat32);
}

uint64_t RobustAggregator::MemoryBytes(const UpdateSpec& spec, uint32_t capacity) {
  return static_cast<uint64_t>(capacity) * spec.Parameters() * sizeof(float);
}

absl::Status RobustAggregator::Add(const TensorSource& update, uint64_t sample_count) {
  if (sample_count == 0) return absl::InvalidArgumentError("sample count must be > 0");
  if (count_ >= rows_.size(0)) {
    return absl::ResourceExhaustedError(
        absl::StrCat("room for ", rows_.size(0), " updates (the selected nodes) is full"));
  }
  at::Tensor row = rows_[count_];
  size_t index = 0;
  absl::Status status = update.ForEach([&](const TensorSlice& slice) -> absl::Status {
    if (index >= spec_.entries.size() || slice.name != spec_.entries[index].name) {
      return absl::InternalError(absl::StrCat("unvalidated update tensor \"", slice.name, "\""));
    }
    row.narrow(0, offsets_[index] + slice.offset, slice.data.numel())
        .copy_(slice.data.reshape({-1}));
    if (slice.last()) ++index;
    return absl::OkStatus();
  });
  if (!status.ok()) return status;  // the row is overwritten by the next Add
  sample_counts_.push_back(sample_count);
  samples_ += sample_count;
  ++count_;
  return absl::OkStatus();
}

std::vector<double> RobustAggregator::KrumScores(const at::Tensor& x) const {
  const int64_t n = x.size(0);
  // Gram matrix in double, block by block, then d_ij = G_ii + G_jj - 2 G_ij.
  at::Tensor gram = torch::zeros({n, n}, torch::kFloat64);
  for (int64_t c = 0; c < parameters_; c += kBlockColumns) {
    const at::Tensor block =
        x.narrow(1, c, std::min(kBlockColumns, parameters_ - c)).to(torch::kFloat64);
    gram.add_(block.matmul(block.t()));
  }
  const at::Tensor diagonal = gram.diagonal();
  const at::Tensor distances =
      (diagonal.unsqueeze(0) + diagonal.unsqueeze(1) - 2 * gram).clamp_min(0).contiguous();
  const double* d = distances.data_ptr<double>();
  const int64_t neighbours = n - static_cast<int64_t>(config_.byzantine_nodes()) - 2;
  std::vector<double> scores(n);
  for (int64_t i = 0; i < n; ++i) {
    std::vector<double> others;
    for (int64_t j = 0; j < n; ++j) {
      if (j != i) others.push_back(d[i * n + j]);
    }
    std::partial_sort(others.begin(), others.begin() + neighbours, others.end());
    scores[i] = std::accumulate(others.begin(), others.begin() + neighbours, 0.0);
  }
  return scores;
}

void RobustAggregator::SortedColumnsByNetwork(const at::Tensor& x, bool median, int64_t trim,
                                              float* result) const {
  const int64_t n = x.size(0);
  const float* base = x.data_ptr<float>();
  const int64_t stride = x.stride(0);
  std::vector<std::pair<int64_t, int64_t>> network = SortingNetwork(n);
  if (median) {
    std::vector<bool> middle(n, false);
    middle[(n - 1) / 2] = middle[n / 2] = true;
    network = PrunedFor(network, std::move(middle));
  }
  const int64_t columns = NetworkColumns(n);
  at::parallel_for(0, (parameters_ + columns - 1) / columns, 1, [&](int64_t first, int64_t last) {
    std::vector<float> rows(static_cast<size_t>(n * columns));
    for (int64_t b = first; b < last; ++b) {
      const int64_t c = b * columns;
      const int64_t width = std::min(columns, parameters_ - c);
      for (int64_t i = 0; i < n; ++i) {
        std::copy(base + i * stride + c, base + i * stride + c + width, rows.data() + i * columns);
      }
      RunNetworkOnBlock(rows.data(), columns, width, network);
      float* __restrict target = result + c;
      if (median) {
        const float* upper = rows.data() + (n / 2) * columns;
        const float* lower = rows.data() + ((n - 1) / 2) * columns;
        for (int64_t k = 0; k < width; ++k) target[k] = (lower[k] + upper[k]) * 0.5f;
      } else {
        std::fill(target, target + width, 0.0f);
        for (int64_t i = trim; i < n - trim; ++i) {
          const float* row = rows.data() + i * columns;
          for (int64_t k = 0; k < width; ++k) target[k] += row[k];
        }
        const float scale = 1.0f / static_cast<float>(n - 2 * trim);
        for (int64_t k = 0; k < width; ++k) target[k] *= scale;
      }
    }
  });
}

absl::StatusOr<at::Tensor> RobustAggregator::Aggregate() {
  torch::NoGradGuard no_grad;
  chosen_.clear();
  if (count_ == 0) return absl::FailedPreconditionError("no update was aggregated");
  const int64_t n = count_;
  at::Tensor x = rows_.narrow(0, 0, n);
  if (config_.norm_bound() > 0) {
    // Each update scaled to at most the bound: x_i *= min(1, B / ||x_i||).
    // Row by row, in double: one row copied at a time, never all n updates.
    for (int64_t i = 0; i < n; ++i) {
      const double norm = x[i].to(torch::kFloat64).norm().item<double>();
      if (norm > config_.norm_bound()) x[i].mul_(config_.norm_bound() / norm);
    }
  }
  switch (config_.kind()) {
    case Kind::MEDIAN:
    case Kind::TRIMMED_MEAN: {
      const int64_t trim =
          config_.kind() == Kind::MEDIAN
              ? 0
              : static_cast<int64_t>(std::floor(config_.trim_fraction() * static_cast<double>(n)));
      at::Tensor out = torch::empty({parameters_}, torch::kFloat32);
      float* result = out.data_ptr<float>();
      const bool median = config_.kind() == Kind::MEDIAN;
      if (n <= kNetworkMaxUpdates) {
        SortedColumnsByNetwork(x, median, trim, result);
        return out;
      }
      // Many updates: per block of columns, transposed so that each
      // coordinate's n values are contiguous, then a selection (median) or
      // sort (trimmed mean) per coordinate, blocks spread over the threads.
      at::parallel_for(
          0, (parameters_ + kBlockColumns - 1) / kBlockColumns, 1,
          [&](int64_t first, int64_t last) {
            std::vector<float> values(n);
            for (int64_t b = first; b < last; ++b) {
              const int64_t c = b * kBlockColumns;
              const int64_t width = std::min(kBlockColumns, parameters_ - c);
              const at::Tensor block = x.narrow(1, c, width).t().contiguous();  // [width, n]
              const float* rows = block.data_ptr<float>();
              for (int64_t j = 0; j < width; ++j) {
                std::copy(rows + j * n, rows + (j + 1) * n, values.begin());
                if (median) {
                  auto middle = values.begin() + n / 2;
                  std::nth_element(values.begin(), middle, values.end());
                  float m = *middle;
                  if (n % 2 == 0) m = (m + *std::max_element(values.begin(), middle)) * 0.5f;
                  result[c + j] = m;
                } else {
                  std::sort(values.begin(), values.end());
                  double sum = 0;
                  for (int64_t k = trim; k < n - trim; ++k) sum += values[k];
                  result[c + j] = static_cast<float>(sum / static_cast<double>(n - 2 * trim));
                }
              }
            }
          });
      return out;
    }
    case Kind::KRUM:
    case Kind::MULTI_KRUM: {
      const int64_t f = config_.byzantine_nodes();
      if (n <= 2 * f + 2) {
        return absl::FailedPreconditionError(
            absl::StrCat(Kind::Kind_Name(config_.kind()), " with byzantine_nodes ", f,
                         " needs more than ", 2 * f + 2, " updates; the round has ", n));
      }
      const std::vector<double> scores = KrumScores(x);
      std::vector<uint32_t> order(n);
      std::iota(order.begin(), order.end(), 0u);
      std::stable_sort(order.begin(), order.end(),
                       [&](uint32_t a, uint32_t b) { return scores[a] < scores[b]; });
      int64_t m = 1;
      if (config_.kind() == Kind::MULTI_KRUM) {
        m = config_.multi_krum_m() == 0 ? n - f : config_.multi_krum_m();
        if (m > n) m = n;
      }
      chosen_.assign(order.begin(), order.begin() + m);
      std::sort(chosen_.begin(), chosen_.end());
      at::Tensor out = torch::zeros({parameters_}, torch::kFloat32);
      for (uint32_t i : chosen_) out.add_(x[i]);
      return out.div_(static_cast<double>(m));
    }
    default: {  // MEAN (with a norm bound): sample-weighted
      at::Tensor out = torch::zeros({parameters_}, torch::kFloat32);
      for (int64_t i = 0; i < n; ++i) {
        out.add_(x[i], static_cast<double>(sample_counts_[i]) / static_cast<double>(samples_));
      }
      return out;
    }
  }
}

absl::Status RobustAggregator::Validate(const TensorSource& update) const {
  return ValidateUpdate(update, spec_);
}

absl::StatusOr<MeanUpdate> RobustAggregator::Finish() {
  absl::StatusOr<at::Tensor> combined = Aggregate();
  if (!combined.ok()) {
    return absl::Status(combined.status().code(),
                        absl::StrCat("robust aggregation failed: ", combined.status().message()));
  }
  rows_ = at::Tensor();  // the stored updates go before the model is applied
  absl::StatusOr<MeanUpdate> mean = MeanUpdate::FromFlat(spec_, *std::move(combined), samples_);
  if (!mean.ok()) {
    return absl::Status(mean.status().code(),
                        absl::StrCat("robust aggregation failed: ", mean.status().message()));
  }
  return mean;
}

}  // namespace fedcustoms::coordinator
