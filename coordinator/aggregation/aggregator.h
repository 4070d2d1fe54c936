#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "coordinator/aggregation/mean_update.h"
#include "coordinator/aggregation/tensor_source.h"
#include "coordinator/aggregation/update_validator.h"
#include "fedcustoms/v1/config.pb.h"
#include "fedcustoms/v1/node_service.pb.h"

namespace fedcustoms::coordinator {

// The rule that combines one round's updates (after Flower's Strategy, only
// the part a round needs): each upload is checked with Validate, folded in
// with Add as it arrives, and Finish turns what was folded into the
// MeanUpdate the server optimizer applies (MeanUpdate::Apply). One aggregator
// serves one round; TaskRunner makes a fresh one with MakeAggregator when the
// round opens.
//
// Thread safety: Validate reads only what was fixed at construction and may
// run concurrently with any call; the caller serializes Add and Finish.
class Aggregator {
 public:
  virtual ~Aggregator() = default;

  // Checks an upload before anything of it is folded (the layout the rule
  // expects, every value finite); the error names the tensor and what was
  // expected. Reads the source once.
  virtual absl::Status Validate(const TensorSource& upload) const = 0;

  // Folds an upload that passed Validate, weighted by `sample_count` (> 0;
  // ignored by rules whose input carries its own count, e.g. mode SECURE).
  // If reading fails midway the aggregator either discards the partial input
  // or is poisoned (Finish then fails): never a half-counted update.
  virtual absl::Status Add(const TensorSource& upload, uint64_t sample_count) = 0;

  // Number of uploads folded so far.
  virtual uint32_t updates() const = 0;

  // Takes out an update added before with the same weight (mode SECURE: the
  // masked input of a node dropped after it was folded). Unimplemented for
  // aggregators that cannot.
  virtual absl::Status Remove(const TensorSource& upload, uint64_t weight) {
    (void)upload;
    (void)weight;
    return absl::UnimplementedError("this aggregator cannot take an update out again");
  }

  // The combined update of everything folded; the aggregator is spent
  // afterwards. Fails (and the round aborts, the model unchanged) when nothing
  // was folded, the aggregator is poisoned, or the rule cannot combine what it
  // has; the message says why.
  virtual absl::StatusOr<MeanUpdate> Finish() = 0;
};

// Every rule the coordinator knows; MakeAggregator is the one place that maps
// a kind to its class. A new rule is a new Aggregator file and a value here.
enum class AggregatorKind {
  kFedAvg,  // mode TRUSTED, the weighted mean (FedAvg)
  kRobust,  // mode TRUSTED, a rule that looks at each update (RobustAggregator)
  kSecure,  // mode SECURE, the masked sum, unmasked and decoded (SecureAggregator)
};

// The kind a task's configuration asks for: kSecure in mode SECURE (the config
// refuses robust rules there), kRobust for a robust rule or a norm bound,
// kFedAvg otherwise.
AggregatorKind AggregatorKindOf(v1::AggregationMode mode, const v1::RobustAggregationConfig& r);

// What MakeAggregator needs; only the fields of the chosen kind are read.
struct AggregatorOptions {
  UpdateSpec spec;
  // kRobust: the rule, its memory cap, and room for `capacity` updates (the
  // round's selected nodes).
  v1::RobustAggregationConfig robust;
  uint32_t capacity = 0;
  // kSecure: the round's parameters (as sent to the nodes) and how to remove
  // the masks from the masked sum (SecureRound::Unmask); `unmask` is called at
  // most once, from Finish, and what it refers to must outlive that call.
  v1::SecureRound secure_params;
  std::function<absl::StatusOr<std::vector<uint32_t>>(std::vector<uint32_t>)> unmask;
};

// A fresh aggregator of `kind` for one round, its memory (one model, or
// capacity models for a robust rule) allocated here. FailedPrecondition when a
// robust rule would need more than robust.max_memory_mib (the message names
// the rule, the sizes and the cap); InvalidArgument when the secure
// parameters are unsafe.
absl::StatusOr<std::unique_ptr<Aggregator>> MakeAggregator(AggregatorKind kind,
                                                           AggregatorOptions options);

}  // namespace fedcustoms::coordinator
