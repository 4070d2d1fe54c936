#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "common/tensor/named_tensors.h"

namespace fedcustoms::coordinator {

// One node's update as a stream of named tensors, read as many times as needed
// (once to validate, once to fold) without holding the whole update in memory.
// This is the seam between how an update arrives (spooled upload, memory) and
// how it is aggregated.
class UpdateSource {
 public:
  using Visitor = std::function<absl::Status(const std::string& name, const at::Tensor&)>;
  virtual ~UpdateSource() = default;
  // Calls `visit` for each tensor in stored order; stops at the first error
  // (from the source or from `visit`) and returns it.
  virtual absl::Status ForEach(const Visitor& visit) const = 0;
};

// An update already in memory (tests, benchmarks).
class InMemoryUpdate final : public UpdateSource {
 public:
  // `tensors` must outlive this object.
  explicit InMemoryUpdate(const tensor::NamedTensors& tensors) : tensors_(tensors) {}
  absl::Status ForEach(const Visitor& visit) const override;

 private:
  const tensor::NamedTensors& tensors_;
};

// An update in a tensor-codec file (a spooled upload whose SHA-256 was checked).
// Each pass decodes one tensor at a time.
class SpooledUpdate final : public UpdateSource {
 public:
  explicit SpooledUpdate(std::string path) : path_(std::move(path)) {}
  absl::Status ForEach(const Visitor& visit) const override;

 private:
  const std::string path_;
};

}  // namespace fedcustoms::coordinator
