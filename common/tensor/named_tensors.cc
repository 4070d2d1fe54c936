#include "common/tensor/named_tensors.h"

#include <caffe2/serialize/inline_container.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <torch/csrc/jit/serialization/export.h>
#include <torch/csrc/jit/serialization/pickler.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>

#include "absl/strings/str_cat.h"
#include "common/io/atomic_file.h"
#include "common/tensor/tensor_spec.h"

namespace fedcustoms::tensor {
namespace {

std::string ErrnoText() { return std::strerror(errno); }

// An IEEE value is NaN or Inf exactly when all its exponent bits are set.
// Checked on the bits with integer AND/compare/OR, which the compiler
// vectorizes (a float reduction such as sum(x * 0) it may not reorder, so that
// loop ran one element at a time: 4.9 GB/s, now memory speed).
template <typename T, typename Bits, Bits kExponent>
bool AllFiniteContiguous(const at::Tensor& t) {
  const T* p = t.data_ptr<T>();
  const int64_t n = t.numel();
  Bits bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    Bits bits;
    std::memcpy(&bits, p + i, sizeof(bits));
    bad |= static_cast<Bits>((bits & kExponent) == kExponent);
  }
  return bad == 0;
}

}  // namespace

bool IsAggregatable(const at::Tensor& tensor) {
  return tensor.defined() && tensor.is_floating_point();
}

bool AllFinite(const at::Tensor& tensor) {
  if (!tensor.defined() || !tensor.is_floating_point() || tensor.numel() == 0) return true;
  at::Tensor t = tensor.detach();
  if (t.device().is_cpu() && t.layout() == at::kStrided) {
    if (t.scalar_type() == at::kFloat)
      return AllFiniteContiguous<float, uint32_t, 0x7f800000u>(t.contiguous());
    if (t.scalar_type() == at::kDouble)
      return AllFiniteContiguous<double, uint64_t, 0x7ff0000000000000ull>(t.contiguous());
  }
  return at::isfinite(t).all().item<bool>();
}

void SortByName(NamedTensors& tensors) {
  std::stable_sort(tensors.begin(), tensors.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
}

absl::Status IsCanonical(const NamedTensors& tensors) {
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (tensors[i].first.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("tensor ", i, " has an empty name"));
    }
    if (i > 0 && !(tensors[i - 1].first < tensors[i].first)) {
      return absl::InvalidArgumentError(absl::StrCat("tensor ", i, " \"", tensors[i].first,
                                                     "\" is not after \"", tensors[i - 1].first,
                                                     "\": names must be unique and ascending"));
    }
  }
  return absl::OkStatus();
}

NamedTensors StateOf(const torch::nn::Module& module) {
  NamedTensors state;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    state.emplace_back(item.key(), item.value().detach());
  }
  for (const auto& item : module.named_buffers(/*recurse=*/true)) {
    state.emplace_back(item.key(), item.value().detach());
  }
  SortByName(state);
  return state;
}

NamedTensors CloneState(const NamedTensors& tensors) {
  NamedTensors copy;
  copy.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    copy.emplace_back(name, t.detach().clone(at::MemoryFormat::Contiguous));
  }
  return copy;
}

absl::Status LoadState(torch::nn::Module& module, const NamedTensors& state) {
  std::map<std::string, at::Tensor> targets;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    targets.emplace(item.key(), item.value());
  }
  for (const auto& item : module.named_buffers(/*recurse=*/true)) {
    targets.emplace(item.key(), item.value());
  }
  // Check everything first so that a bad state never leaves a half-loaded module.
  std::map<std::string, const at::Tensor*> sources;
  for (const auto& [name, t] : state) {
    auto it = targets.find(name);
    if (it == targets.end()) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected tensor \"", name, "\""));
    }
    if (!sources.emplace(name, &t).second) {
      return absl::InvalidArgumentError(absl::StrCat("duplicate tensor \"", name, "\""));
    }
    const at::Tensor& target = it->second;
    if (absl::Status s =
            CheckMatchesSpec(name, t, TensorSpec{name, target.scalar_type(), target.sizes().vec()});
        !s.ok()) {
      return s;
    }
  }
  for (const auto& [name, target] : targets) {
    if (!sources.contains(name)) {
      return absl::InvalidArgumentError(absl::StrCat("missing tensor \"", name, "\""));
    }
  }
  torch::NoGradGuard no_grad;
  for (auto& [name, target] : targets) target.copy_(*sources.at(name));
  return absl::OkStatus();
}

absl::Status SavePickledState(const NamedTensors& tensors, const std::filesystem::path& path) {
  // What torch::pickle_save does, but the zip container streams straight into
  // the file instead of into a vector: no second copy of the model in memory.
  io::AtomicFileWriter file;
  if (absl::Status s = file.Open(path.string()); !s.ok()) return s;
  absl::Status write_status;
  try {
    c10::Dict<std::string, at::Tensor> dict;
    for (const auto& [name, t] : tensors) {
      if (!t.defined()) {
        return absl::InvalidArgumentError(absl::StrCat("tensor \"", name, "\" is undefined"));
      }
      if (dict.contains(name)) {
        return absl::InvalidArgumentError(absl::StrCat("duplicate tensor \"", name, "\""));
      }
      dict.insert(name, t.detach().contiguous());
    }
    std::string pickle;
    torch::jit::Pickler pickler(
        [&](const char* bytes, size_t size) { pickle.append(bytes, size); });
    pickler.protocol();
    pickler.pushIValue(c10::IValue(std::move(dict)));
    pickler.stop();
    // A failed write is remembered and reported after the writer is done, never
    // signalled to it: LibTorch 1.13's writer may throw from its destructor.
    caffe2::serialize::PyTorchStreamWriter zip([&](const void* bytes, size_t size) -> size_t {
      if (write_status.ok()) {
        write_status = file.Write(std::string_view(static_cast<const char*>(bytes), size));
      }
      return size;
    });
    torch::jit::writeArchiveAndTensors("data", pickle.data(), pickle.size(), pickler.tensorData(),
                                       zip);
    zip.writeEndOfFile();
  } catch (const c10::Error& e) {
    if (!write_status.ok()) return write_status;
    return absl::InternalError(
        absl::StrCat("cannot pickle state for ", path.string(), ": ", e.what_without_backtrace()));
  }
  if (!write_status.ok()) return write_status;
  return file.Commit();
}

absl::StatusOr<NamedTensors> LoadPickledState(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot open ", path.string(), ": ", ErrnoText()));
  }
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) {
    return absl::DataLossError(absl::StrCat("cannot read ", path.string()));
  }
  return ParsePickledState(bytes, path.string());
}

absl::StatusOr<NamedTensors> ParsePickledState(std::string_view bytes, const std::string& source) {
  NamedTensors state;
  try {
    c10::IValue value = torch::pickle_load(std::vector<char>(bytes.begin(), bytes.end()));
    if (!value.isGenericDict()) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": not a dict of tensors (found ", value.tagKind(), ")"));
    }
    for (const auto& entry : value.toGenericDict()) {
      if (!entry.key().isString()) {
        return absl::InvalidArgumentError(
            absl::StrCat(source, ": a key is a ", entry.key().tagKind(), ", not a string"));
      }
      std::string name = entry.key().toStringRef();
      if (!entry.value().isTensor()) {
        return absl::InvalidArgumentError(absl::StrCat(source, ": \"", name, "\" is a ",
                                                       entry.value().tagKind(), ", not a tensor"));
      }
      state.emplace_back(std::move(name), entry.value().toTensor().detach());
    }
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": not a pickled state dict: ", e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": not a pickled state dict: ", e.what()));
  }
  SortByName(state);
  if (absl::Status s = IsCanonical(state); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", s.message()));
  }
  return state;
}

}  // namespace fedcustoms::tensor
