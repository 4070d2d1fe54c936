#include "common/tensor/tensor_spec.h"

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace fedcustoms::tensor {

std::vector<TensorSpec> SpecOf(const NamedTensors& tensors) {
  std::vector<TensorSpec> specs;
  specs.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    specs.push_back(TensorSpec{name, t.scalar_type(), t.sizes().vec()});
  }
  return specs;
}

NamedTensors AggregatableOf(const NamedTensors& tensors) {
  NamedTensors out;
  for (const auto& [name, t] : tensors) {
    if (IsAggregatable(t)) out.emplace_back(name, t);
  }
  return out;
}

absl::Status CheckSpec(const TensorSpec& actual, const TensorSpec& expected, int64_t index) {
  if (actual.name != expected.name) {
    if (index >= 0) {
      return absl::InvalidArgumentError(absl::StrCat("tensor ", index, " is \"", actual.name,
                                                     "\", expected \"", expected.name, "\""));
    }
    return absl::InvalidArgumentError(
        absl::StrCat("tensor \"", actual.name, "\", expected \"", expected.name, "\""));
  }
  if (actual.dtype != expected.dtype) {
    return absl::InvalidArgumentError(absl::StrCat("tensor \"", actual.name, "\": dtype ",
                                                   DtypeName(expected.dtype), " expected, got ",
                                                   DtypeName(actual.dtype)));
  }
  if (actual.shape != expected.shape) {
    return absl::InvalidArgumentError(absl::StrCat("tensor \"", actual.name, "\": shape ",
                                                   ShapeString(expected.shape), " expected, got ",
                                                   ShapeString(actual.shape)));
  }
  return absl::OkStatus();
}

absl::Status CheckMatchesSpec(std::string_view name, const at::Tensor& tensor,
                              const TensorSpec& expected, int64_t index) {
  if (tensor.defined()) {
    return CheckSpec(TensorSpec{std::string(name), tensor.scalar_type(), tensor.sizes().vec()},
                     expected, index);
  }
  // An undefined tensor under a wrong name is reported by its name first.
  if (name != expected.name) {
    return CheckSpec(TensorSpec{std::string(name), expected.dtype, expected.shape}, expected,
                     index);
  }
  return absl::InvalidArgumentError(absl::StrCat("tensor \"", expected.name, "\" is undefined"));
}

absl::Status CheckMatchesSpec(const NamedTensors& tensors, std::span<const TensorSpec> expected) {
  if (tensors.size() != expected.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("has ", tensors.size(), " tensors, expected ", expected.size()));
  }
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (absl::Status s = CheckMatchesSpec(tensors[i].first, tensors[i].second, expected[i],
                                          static_cast<int64_t>(i));
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

std::string DtypeName(at::ScalarType dtype) {
  switch (dtype) {
    case at::kFloat:
      return "float32";
    case at::kDouble:
      return "float64";
    case at::kHalf:
      return "float16";
    case at::kBFloat16:
      return "bfloat16";
    case at::kLong:
      return "int64";
    case at::kInt:
      return "int32";
    case at::kShort:
      return "int16";
    case at::kChar:
      return "int8";
    case at::kByte:
      return "uint8";
    case at::kBool:
      return "bool";
    default:
      return c10::toString(dtype);
  }
}

std::string ShapeString(at::IntArrayRef shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

}  // namespace fedcustoms::tensor
