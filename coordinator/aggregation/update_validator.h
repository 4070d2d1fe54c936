#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "coordinator/aggregation/tensor_source.h"

namespace fedcustoms::coordinator {

// The shape of a valid update: one float32 tensor per aggregatable (floating
// point) tensor of the global model, same names in canonical order, same
// shapes. Integer buffers (e.g. batch-norm's num_batches_tracked) are not part
// of updates: the coordinator keeps its own value.
struct UpdateSpec {
  struct Entry {
    std::string name;
    std::vector<int64_t> shape;
  };
  std::vector<Entry> entries;

  static UpdateSpec Of(const tensor::NamedTensors& global);

  // Elements in `entry`, and in every entry together (P, the length of a
  // flat update).
  static uint64_t Size(const Entry& entry);
  uint64_t Parameters() const;
};

// Checks an update before anything of it is summed: names, order, shapes,
// dtype float32, every value finite, nothing missing or extra. The error says
// which tensor and what was expected. Reads the source once.
absl::Status ValidateUpdate(const TensorSource& update, const UpdateSpec& spec);

}  // namespace fedcustoms::coordinator
