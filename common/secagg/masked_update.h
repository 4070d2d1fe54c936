#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/secagg/fixed_point.h"
#include "fedcustoms/v1/node_service.pb.h"

namespace fedcustoms::secagg {

// Name of the single int32 tensor a masked upload consists of; the node
// writes it, the coordinator accepts nothing else in mode SECURE.
inline constexpr char kMaskedInputTensorName[] = "masked_input";

// The wire layout of one node's update in mode SECURE, before the pairwise and
// self masks are added (the node) and after they are removed from the sum (the
// coordinator). Both sides use this one Encode/Decode pair, so the layout is
// written down once:
//
//   words [0, P)   the update's P aggregatable values (the model's tensors
//                  flattened in model order), each weighted by n / W and
//                  encoded in fixed point (FixedPointCodec); standardization
//                  statistics (IsStandardizationStatistic) divided by
//                  kStatisticsDivisor first
//   word  P        the node's sample count n, exact (honest counts sum to at
//                  most W < 2^32, so the unmasked word is Σ n_i). The
//                  coordinator decodes with the contributors' public rows,
//                  not with this word: a node that masks a false count
//                  cannot rescale the mean; the word is only compared.
//
// W is the round's announced total weight (v1::SecureRound.total_weight, the
// training rows the selected nodes declared). A MaskedUpdate holds only the
// round's public parameters: it is immutable after Create and safe to share
// between threads.
class MaskedUpdate {
 public:
  // One named tensor of the update, flattened: a view, the caller owns the
  // values and keeps them alive during the call.
  struct Piece {
    std::string_view name;
    std::span<const float> values;
  };
  // One tensor's place in the layout (name and element count), for Decode.
  struct Entry {
    std::string name;
    uint64_t size = 0;
  };
  struct Encoded {
    std::vector<uint32_t> words;  // P + 1, unmasked: the caller wipes them after masking
    uint64_t clipped = 0;         // coordinates that were clipped to ±clip
  };

  // The codec of a round: its fixed-point parameters (clip, scale, max_nodes)
  // and W. InvalidArgument naming the bound when the fixed-point parameters
  // are unsafe (FixedPointCodec::Create) or W is outside 1..2^32-1.
  static absl::StatusOr<MaskedUpdate> Create(const v1::SecureRound& params);

  // Words of the layout for an update of `parameters` values: P + 1.
  static uint64_t Words(uint64_t parameters) { return parameters + 1; }

  // The P + 1 unmasked words of an update of `samples` samples. InvalidArgument
  // when `samples` is outside 1..W or a value cannot be encoded; nothing is
  // returned then.
  absl::StatusOr<Encoded> Encode(std::span<const Piece> update, uint64_t samples) const;

  // Reads the unmasked sum of the contributors' encodings (P + 1 words, laid
  // out by `layout`): writes the weighted mean update Σ (n_i/W) Δ_i · W /
  // `weight` into `mean` (P values; standardization statistics multiplied
  // back), where `weight` is Σ n_i of the contributors as the coordinator
  // knows them (the rows they declared), and returns the sum's count word
  // (Σ n_i as the nodes masked it) for the caller to compare. InvalidArgument
  // when `weight` is outside 1..W or the sizes of `sum`, `layout` and `mean`
  // do not agree. `mean` is unspecified on failure.
  absl::StatusOr<uint64_t> Decode(std::span<const uint32_t> sum, std::span<const Entry> layout,
                                  std::span<float> mean, uint64_t weight) const;

  const FixedPointCodec& codec() const { return codec_; }
  uint64_t total_weight() const { return total_weight_; }

 private:
  MaskedUpdate(FixedPointCodec codec, uint64_t total_weight)
      : codec_(std::move(codec)), total_weight_(total_weight) {}

  FixedPointCodec codec_;
  uint64_t total_weight_;
};

}  // namespace fedcustoms::secagg
