#pragma once

#include <ATen/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/tensor/named_tensors.h"

namespace fedcustoms::coordinator {

// One piece of one tensor of a set of named tensors: elements [offset, offset + numel) of
// the flattened tensor `name`. Every tensor is visited as consecutive slices
// from offset 0 to its end (a tensor without elements as one empty slice), so
// a large tensor never has to be in memory whole.
struct TensorSlice {
  const std::string& name;
  at::ScalarType dtype;
  const std::vector<int64_t>& shape;  // of the whole tensor
  int64_t offset;                     // in elements
  const at::Tensor& data;             // 1-D, contiguous, of `dtype`
  int64_t total_numel;                // of the whole tensor

  bool first() const { return offset == 0; }
  bool last() const { return offset + data.numel() == total_numel; }
};

// A set of named tensors — one node's update, or a global model on disk — as a
// stream of tensor slices, read as many times as needed (an update once to
// validate, once to fold) in memory O(slice), not O(model). This is the seam
// between how an update arrives (spooled upload, memory) and how it is
// aggregated.
class TensorSource {
 public:
  using Visitor = std::function<absl::Status(const TensorSlice&)>;
  virtual ~TensorSource() = default;
  // Calls `visit` for each slice of each tensor in stored order; stops at the
  // first error (from the source or from `visit`) and returns it.
  virtual absl::Status ForEach(const Visitor& visit) const = 0;
};

// Tensors already in memory (tests, benchmarks): one slice per tensor.
class InMemoryTensors final : public TensorSource {
 public:
  // `tensors` must outlive this object.
  explicit InMemoryTensors(const tensor::NamedTensors& tensors) : tensors_(tensors) {}
  absl::Status ForEach(const Visitor& visit) const override;

 private:
  const tensor::NamedTensors& tensors_;
};

// A file in the tensor codec format (a spooled upload, a global model's wire
// encoding), decoded in slices of at most `slice_bytes` into one reused buffer.
class TensorFile final : public TensorSource {
 public:
  static constexpr uint64_t kDefaultSliceBytes = uint64_t{4} << 20;
  explicit TensorFile(std::string path, uint64_t slice_bytes = kDefaultSliceBytes)
      : path_(std::move(path)), slice_bytes_(slice_bytes) {}
  absl::Status ForEach(const Visitor& visit) const override;

 private:
  const std::string path_;
  const uint64_t slice_bytes_;
};

// Checks that `actual` holds exactly the tensors of `expected` (same names in
// the same order, same dtypes and shapes); the error names the first
// difference. Values are not compared.
absl::Status CheckLayout(const tensor::NamedTensors& expected, const TensorSource& actual);

}  // namespace fedcustoms::coordinator
