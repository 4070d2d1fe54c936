#pragma once

#include <ATen/Tensor.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "common/tensor/named_tensors.h"

namespace fedcustoms::tensor {

// What a tensor must look like: its name, dtype and shape. The coordinator
// takes the spec of the global model (SpecOf(AggregatableOf(global))) and
// checks each tensor of an update against it as it is decoded, before adding
// anything to the running sum.
struct TensorSpec {
  std::string name;
  at::ScalarType dtype = at::ScalarType::Float;
  std::vector<int64_t> shape;

  bool operator==(const TensorSpec&) const = default;
};

// The spec of each tensor, same order.
std::vector<TensorSpec> SpecOf(const NamedTensors& tensors);

// The aggregatable (floating point) tensors of `tensors`, same order, sharing
// storage. This is the set an update carries.
NamedTensors AggregatableOf(const NamedTensors& tensors);

// OK when `name`, `tensor`'s dtype and shape equal `expected`; otherwise an
// InvalidArgument error such as
//   tensor "hidden.0.weight": shape [32, 10] expected, got [64, 10]
//   tensor "hidden.0.weight": dtype float32 expected, got float64
//   tensor 3 is "b", expected "a"   (only when `index` >= 0)
// An undefined tensor is an error.
absl::Status CheckMatchesSpec(std::string_view name, const at::Tensor& tensor,
                              const TensorSpec& expected, int64_t index = -1);

// As CheckMatchesSpec() for a tensor known only by its spec (e.g. from a file's
// tensor headers): the same checks and messages, without the tensor.
absl::Status CheckSpec(const TensorSpec& actual, const TensorSpec& expected, int64_t index = -1);

// Checks a whole set in order: same count, then CheckMatchesSpec() per tensor.
absl::Status CheckMatchesSpec(const NamedTensors& tensors, std::span<const TensorSpec> expected);

// Short dtype names used in messages and docs: "float32", "int64", "bool", ...
std::string DtypeName(at::ScalarType dtype);

// "[64, 10]".
std::string ShapeString(at::IntArrayRef shape);

}  // namespace fedcustoms::tensor
