#pragma once

#include "common/tensor/named_tensors.h"

namespace fedcustoms::task {

// Δ = local − global for every aggregatable (floating point) tensor, as
// float32; integer buffers are not part of an update. The same for every
// task kind. `local` is consumed:
// where a tensor is already contiguous float32, Δ is computed in its memory,
// so a trained model whose state `local` aliases (tensor::StateOf) is
// overwritten and an update costs no second model in memory. `local` must not
// share storage with `global` (Δ would be zero).
tensor::NamedTensors UpdateFrom(tensor::NamedTensors&& local, const tensor::NamedTensors& global);

}  // namespace fedcustoms::task
