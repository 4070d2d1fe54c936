// The tensor-codec decoder on arbitrary bytes (what a node or coordinator
// receives from a peer). It must return an error or tensors, never crash,
// read out of bounds or allocate without bound; what it accepts must encode
// back to the same bytes (the encoding is canonical).
#include <torch/torch.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/tensor/tensor_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto decoded = fedcustoms::tensor::DecodeFromString(bytes);
  if (!decoded.ok()) return 0;
  auto encoded = fedcustoms::tensor::EncodeToString(*decoded);
  if (!encoded.ok() || *encoded != bytes) std::abort();
  return 0;
}
