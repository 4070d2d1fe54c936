#include "coordinator/aggregation/tensor_source.h"

#include <torch/torch.h>

#include <algorithm>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/tensor/tensor_codec.h"
#include "common/tensor/tensor_spec.h"

namespace fedcustoms::coordinator {

absl::Status InMemoryTensors::ForEach(const Visitor& visit) const {
  for (const auto& [name, t] : tensors_) {
    const at::Tensor flat = t.detach().contiguous().view(-1);
    const std::vector<int64_t> shape = t.sizes().vec();
    const TensorSlice slice{name, t.scalar_type(), shape, 0, flat, flat.numel()};
    if (absl::Status s = visit(slice); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status TensorFile::ForEach(const Visitor& visit) const {
  std::ifstream in(path_, std::ios::binary);
  if (!in) return absl::InternalError(absl::StrCat("cannot open tensor file ", path_));
  tensor::TensorDecoder decoder(in);
  // One buffer for every slice of every tensor of a dtype: after the first
  // tensor no memory is allocated or first touched.
  at::Tensor buffer;
  while (true) {
    auto header = decoder.NextHeader();
    if (!header.ok()) return header.status();
    if (!header->has_value()) return absl::OkStatus();
    const tensor::TensorDecoder::TensorHeader& h = **header;
    const int64_t item = static_cast<int64_t>(c10::elementSize(h.dtype));
    const int64_t total = static_cast<int64_t>(h.data_bytes) / item;
    const int64_t per_slice = std::max<int64_t>(1, static_cast<int64_t>(slice_bytes_) / item);
    if (!buffer.defined() || buffer.scalar_type() != h.dtype ||
        buffer.numel() < std::min(per_slice, total)) {
      buffer = at::empty({std::min(per_slice, std::max<int64_t>(total, 1))},
                         at::TensorOptions().dtype(h.dtype));
    }
    int64_t offset = 0;
    do {
      const int64_t n = std::min(per_slice, total - offset);
      const at::Tensor data = buffer.narrow(0, 0, n);
      if (absl::Status s = decoder.ReadData(static_cast<char*>(data.data_ptr()),
                                            static_cast<uint64_t>(n * item));
          !s.ok()) {
        return s;
      }
      const TensorSlice slice{h.name, h.dtype, h.shape, offset, data, total};
      if (absl::Status s = visit(slice); !s.ok()) return s;
      offset += n;
    } while (offset < total);
  }
}

absl::Status CheckLayout(const tensor::NamedTensors& expected, const TensorSource& actual) {
  const std::vector<tensor::TensorSpec> specs = tensor::SpecOf(expected);
  size_t index = 0;
  absl::Status status = actual.ForEach([&](const TensorSlice& slice) -> absl::Status {
    if (!slice.first()) return absl::OkStatus();
    if (index >= specs.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("has more than the expected ", specs.size(), " tensors"));
    }
    const tensor::TensorSpec got{slice.name, slice.dtype, slice.shape};
    if (absl::Status s = tensor::CheckSpec(got, specs[index], static_cast<int64_t>(index));
        !s.ok()) {
      return s;
    }
    ++index;
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  if (index != specs.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("has ", index, " tensors, expected ", specs.size()));
  }
  return absl::OkStatus();
}

}  // namespace fedcustoms::coordinator
