#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "fedcustoms/v1/node_service.pb.h"

namespace fedcustoms::coordinator {

// What an update's header may claim, known before its upload starts.
struct UpdateHeaderLimits {
  bool secure = false;  // mode SECURE: the counts travel masked
  uint64_t max_sample_count = 0;
  // The training rows the node declared when it joined; nullopt if it has
  // not joined since the coordinator started.
  std::optional<uint64_t> declared_rows;
};

// Checks the claims of `node`'s update header for `task` (its round, version and
// selection are the round's to check). In mode SECURE the header carries no
// sample_count or train_loss: a clear one would tell the coordinator
// something about this node alone. In trusted mode the sample count lies in
// 1..max_sample_count and within the declared rows, and the loss is finite.
// INVALID_ARGUMENT for a header that breaks a rule (a rejected update);
// FAILED_PRECONDITION when the node has not joined.
absl::Status CheckUpdateHeader(const std::string& task, const std::string& node,
                               const v1::UpdateHeader& header, const UpdateHeaderLimits& limits);

}  // namespace fedcustoms::coordinator
