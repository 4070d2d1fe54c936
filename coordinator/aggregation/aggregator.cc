#include "coordinator/aggregation/aggregator.h"

#include "absl/strings/str_cat.h"
#include "common/secagg/masked_update.h"
#include "coordinator/aggregation/fed_avg.h"
#include "coordinator/aggregation/robust_aggregator.h"
#include "coordinator/aggregation/secure_aggregator.h"

namespace fedcustoms::coordinator {
AggregatorKind AggregatorKindOf(v1::AggregationMode mode, const v1::RobustAggregationConfig& r) {
  if (mode == v1::SECURE) return AggregatorKind::kSecure;
  if (r.kind() != v1::RobustAggregationConfig::MEAN || r.norm_bound() > 0) {
    return AggregatorKind::kRobust;
  }
  return AggregatorKind::kFedAvg;
}

absl::StatusOr<std::unique_ptr<Aggregator>> MakeAggregator(AggregatorKind kind,
                                                           AggregatorOptions options) {
  switch (kind) {
    case AggregatorKind::kFedAvg:
      return std::make_unique<FedAvg>(std::move(options.spec));
    case AggregatorKind::kRobust: {
      // A rule that keeps every update must fit in its memory cap, or the
      // round does not open.
      const uint64_t need = RobustAggregator::MemoryBytes(options.spec, options.capacity);
      const uint64_t cap = uint64_t{options.robust.max_memory_mib()} << 20;
      if (need > cap) {
        return absl::FailedPreconditionError(absl::StrCat(
            v1::RobustAggregationConfig::Kind_Name(options.robust.kind()), " would keep ",
            options.capacity, " updates of ", options.spec.Parameters(), " parameters (",
            need >> 20, " MiB); robust_aggregation.max_memory_mib is ",
            options.robust.max_memory_mib()));
      }
      return std::make_unique<RobustAggregator>(options.robust, std::move(options.spec),
                                                options.capacity);
    }
    case AggregatorKind::kSecure: {
      absl::StatusOr<secagg::MaskedUpdate> codec =
          secagg::MaskedUpdate::Create(options.secure_params);
      if (!codec.ok()) return codec.status();
      return std::make_unique<SecureAggregator>(std::move(options.spec), *std::move(codec),
                                                std::move(options.unmask));
    }
  }
  return absl::InternalError("unknown aggregator kind");
}

}  // namespace fedcustoms::coordinator
