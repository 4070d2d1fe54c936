#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/secagg/key_agreement.h"

namespace fedcustoms::boosting {

// A boosting vector (moments, sketch counts, gradient histograms, loss) in
// the form secure aggregation sums: each value in fixed point with 24
// fractional bits, offset by 2^119 so that it is non-negative, written as
// kDigits digits of 24 bits, one per uint32 word. The words of up to
// kMaxMembers members add up without carrying out of a word
// (255 x (2^24 - 1) < 2^32), so the sum of the members' words, taken modulo
// 2^32 word by word, gives back the exact sum of their fixed-point values:
// the pairwise masks, also added modulo 2^32 word by word, cancel in it.
// Sums of squares of customs values need the width: |value| < 2^94 (a
// million declared values of 10^12 squared and summed is 2^99... so
// moments of such columns want log1p in the schema, as models do anyway).
inline constexpr uint32_t kDigits = 5;
inline constexpr uint32_t kMaxMembers = 255;
inline constexpr double kMaxMagnitude = 0x1p94;
// A vector goes in parts of at most this many values (each part's message
// stays under gRPC's 4 MiB: 2 MiB of masked words).
inline constexpr uint64_t kPartValues = uint64_t{1} << 17;

// The parts a vector of `values` values is sent in (at least 1).
uint64_t PartsOf(uint64_t values);

// kDigits words per value. InvalidArgument naming the index when a value is
// not finite or |value| >= kMaxMagnitude (2^94).
absl::StatusOr<std::vector<uint32_t>> EncodeValues(std::span<const double> values);

// The values whose encodings, summed over `members` members (1..kMaxMembers),
// gave `words` (kDigits per value). Never fails on content: hostile words
// decode to some numbers, which the tree builder's checks then judge.
std::vector<double> DecodeSum(std::span<const uint32_t> words, uint32_t members);

// The sum of equally long vectors exactly as a session computes it, masked
// or not: each encoded (EncodeValues), the words added, the sum decoded. It
// does not depend on the order of the parts (integer addition), so every
// run on the same vectors gives the same bits, whichever member arrived
// first. EncodeValues' error for a value it cannot encode; InvalidArgument
// for vectors of different lengths or more than kMaxMembers.
absl::StatusOr<std::vector<double>> FixedPointSum(const std::vector<std::vector<double>>& parts);

// One member's pairwise masks for a session: with each other member j a key
// agreed once (X25519 then HKDF, PairContext), from which each step's mask
// is expanded (HKDF with the step number and the digest of the step's
// content, then AES-128-CTR). The mask is added when this member's name
// sorts before j's and subtracted otherwise, so the masks of all members of
// one step cancel in their sum when, and only when, they all computed the
// same step: a coordinator that shows one member other content than the
// others (to make their vectors zeros and read the one) gets noise, and a
// step's masks are never those of another step.
class PairwiseMasker {
 public:
  struct Member {
    std::string node;
    secagg::X25519PublicKey key{};
  };

  // `members` (this member, `self` with `own`'s public key, included): the
  // session's, names distinct. InvalidArgument when self is missing or its
  // key is not own's; the agreement's error (a low-order key) otherwise.
  static absl::StatusOr<PairwiseMasker> Create(const secagg::X25519KeyPair& own,
                                               const std::string& self,
                                               const std::vector<Member>& members,
                                               const std::string& task, uint64_t round_id);
  PairwiseMasker(PairwiseMasker&&) = default;
  // Wipes this masker's pair keys before taking the other's.
  PairwiseMasker& operator=(PairwiseMasker&& other);
  // Wipes the pair keys.
  ~PairwiseMasker();

  // Adds the masks of step `step` whose content digests to `content` (raw
  // or hex bytes, the same for every member) to `words`.
  absl::Status Mask(uint64_t step, std::string_view content, std::span<uint32_t> words) const;

 private:
  struct Pair {
    secagg::SharedKey key;
    bool add;
  };
  PairwiseMasker() = default;
  std::vector<Pair> pairs_;
};

}  // namespace fedcustoms::boosting
