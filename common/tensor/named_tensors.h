#pragma once

#include <ATen/Tensor.h>

#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace torch::nn {
class Module;
}  // namespace torch::nn

namespace fedcustoms::tensor {

// A model state or an update: tensors keyed by their module path
// ("hidden.0.weight", "standardize.running_mean", ...). The canonical order is
// ascending by name (byte-wise std::string comparison), with unique names;
// everything in this folder produces canonical order, and weights move between
// modules by name, never by position alone.
//
// What an update carries: only aggregatable (floating point) tensors. Integer
// buffers such as BatchNorm's `num_batches_tracked` (int64) are part of a
// model state (so a state dict is complete for PyTorch) but are not averaged;
// they keep the global model's value (the risk model does not use its counter).
using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// True for tensors that take part in aggregation: floating point dtypes.
bool IsAggregatable(const at::Tensor& tensor);

// True when a floating point tensor holds no NaN or ±Inf; always true for
// integer and bool tensors. Reads the tensor in place (no full-size temporary
// for float32/float64).
bool AllFinite(const at::Tensor& tensor);

// Sorts `tensors` into canonical order. Duplicate names are left adjacent
// (IsCanonical() reports them).
void SortByName(NamedTensors& tensors);

// OK when names are unique, non-empty and ascending; otherwise an
// InvalidArgument error naming the first offending pair.
absl::Status IsCanonical(const NamedTensors& tensors);

// All parameters and buffers of `module` (recursively), canonical order,
// detached. The tensors SHARE storage with the module: training the module
// afterwards changes them. Use CloneState() for a snapshot.
NamedTensors StateOf(const torch::nn::Module& module);

// Deep copy (detached, contiguous) of `tensors`, same order.
NamedTensors CloneState(const NamedTensors& tensors);

// Copies `state` into the parameters and buffers of `module`. `state` may be in
// any order but must name exactly the module's tensors, each with the same
// shape and dtype. Everything is checked before anything is written: on error
// the module is unchanged and the message names the tensor ("tensor
// \"hidden.0.weight\": shape [64, 10] expected, got [32, 10]", "missing tensor
// \"...\"", "unexpected tensor \"...\"").
absl::Status LoadState(torch::nn::Module& module, const NamedTensors& state);

// Writes `tensors` as a `torch::pickle_save` of a Dict[str, Tensor] in the
// given order, so Python's `torch.load(path)` returns a dict of tensors (a
// PyTorch state dict). Atomic: written to a temporary file in the same
// directory, fsync'ed, renamed over `path`, directory fsync'ed; on error `path`
// is untouched and the temporary file removed. Streams into the file: no
// copy of the tensor bytes is held in memory.
absl::Status SavePickledState(const NamedTensors& tensors, const std::filesystem::path& path);

// Reads a file written by SavePickledState() or by Python's
// `torch.save(dict_of_tensors, path)`. Returns canonical order. Errors name the
// file: NotFound when it cannot be opened, InvalidArgument when it is not a
// pickled dict of string -> tensor.
absl::StatusOr<NamedTensors> LoadPickledState(const std::filesystem::path& path);
// The same from bytes already read; errors start with `source` (a file name).
absl::StatusOr<NamedTensors> ParsePickledState(std::string_view bytes, const std::string& source);

}  // namespace fedcustoms::tensor
