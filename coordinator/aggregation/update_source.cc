#include "coordinator/aggregation/update_source.h"

#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/tensor/tensor_codec.h"

namespace fedcustoms::coordinator {

absl::Status InMemoryUpdate::ForEach(const Visitor& visit) const {
  for (const auto& [name, t] : tensors_) {
    if (absl::Status s = visit(name, t); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status SpooledUpdate::ForEach(const Visitor& visit) const {
  std::ifstream in(path_, std::ios::binary);
  if (!in) return absl::InternalError(absl::StrCat("cannot open spooled update ", path_));
  tensor::TensorDecoder decoder(in);
  while (true) {
    auto next = decoder.Next();
    if (!next.ok()) return next.status();
    if (!next->has_value()) return absl::OkStatus();
    if (absl::Status s = visit((*next)->first, (*next)->second); !s.ok()) return s;
  }
}

}  // namespace fedcustoms::coordinator
