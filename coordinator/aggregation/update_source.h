#pragma once

#include <ATen/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/tensor/named_tensors.h"

namespace fedcustoms::coordinator {

// One piece of one tensor of an update: elements [offset, offset + numel) of
// the flattened tensor `name`. Every tensor is visited as consecutive slices
// from offset 0 to its end (a tensor without elements as one empty slice), so
// a large tensor never has to be in memory whole.
struct UpdateSlice {
  const std::string& name;
  at::ScalarType dtype;
  const std::vector<int64_t>& shape;  // of the whole tensor
  int64_t offset;                     // in elements
  const at::Tensor& data;             // 1-D, contiguous, of `dtype`
  int64_t total_numel;                // of the whole tensor

  bool first() const { return offset == 0; }
  bool last() const { return offset + data.numel() == total_numel; }
};

// One node's update as a stream of tensor slices, read as many times as
// needed (once to validate, once to fold) in memory O(slice), not O(model).
// This is the seam between how an update arrives (spooled upload, memory) and
// how it is aggregated.
class UpdateSource {
 public:
  using Visitor = std::function<absl::Status(const UpdateSlice&)>;
  virtual ~UpdateSource() = default;
  // Calls `visit` for each slice of each tensor in stored order; stops at the
  // first error (from the source or from `visit`) and returns it.
  virtual absl::Status ForEach(const Visitor& visit) const = 0;
};

// An update already in memory (tests, benchmarks): one slice per tensor.
class InMemoryUpdate final : public UpdateSource {
 public:
  // `tensors` must outlive this object.
  explicit InMemoryUpdate(const tensor::NamedTensors& tensors) : tensors_(tensors) {}
  absl::Status ForEach(const Visitor& visit) const override;

 private:
  const tensor::NamedTensors& tensors_;
};

// An update spooled to a file in the tensor codec format, decoded in slices
// of at most `slice_bytes` into one reused buffer.
class SpooledUpdate final : public UpdateSource {
 public:
  static constexpr uint64_t kDefaultSliceBytes = uint64_t{4} << 20;
  explicit SpooledUpdate(std::string path, uint64_t slice_bytes = kDefaultSliceBytes)
      : path_(std::move(path)), slice_bytes_(slice_bytes) {}
  absl::Status ForEach(const Visitor& visit) const override;

 private:
  const std::string path_;
  const uint64_t slice_bytes_;
};

}  // namespace fedcustoms::coordinator
