#pragma once

// Shamir t-of-n secret sharing of short byte strings: the building block with
// which secure aggregation (Bonawitz et al., CCS 2017) lets the survivors of a
// round recover the mask seeds and keys of nodes that dropped out, while no
// minority of nodes can recover anything.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace fedcustoms::secagg {

// Arithmetic in GF(p), p = 2^61 - 1. A Mersenne prime makes reduction a shift,
// a mask and an add (2^61 = 1 mod p) instead of a division, and its 61-bit
// elements hold a whole 7-byte limb of the secret while a product of two of
// them still fits in unsigned __int128. Inputs to Add, Sub, Mul and Inverse
// must already be reduced (< kPrime); results always are.
namespace field {

inline constexpr uint64_t kPrime = (uint64_t{1} << 61) - 1;

// `value` mod p, for any 128-bit value.
constexpr uint64_t Reduce(unsigned __int128 value) {
  // Two folds bring any 128-bit value below 2^61 + 2^7; one subtraction ends it.
  unsigned __int128 folded = (value & kPrime) + (value >> 61);
  folded = (folded & kPrime) + (folded >> 61);
  uint64_t result = static_cast<uint64_t>(folded);
  return result >= kPrime ? result - kPrime : result;
}

constexpr uint64_t Add(uint64_t a, uint64_t b) {
  const uint64_t sum = a + b;  // < 2^62: no overflow.
  return sum >= kPrime ? sum - kPrime : sum;
}

constexpr uint64_t Sub(uint64_t a, uint64_t b) { return a >= b ? a - b : a + kPrime - b; }

constexpr uint64_t Mul(uint64_t a, uint64_t b) {
  return Reduce(static_cast<unsigned __int128>(a) * b);
}

// a^-1 by Fermat's little theorem (a^(p-2)). `a` must be non-zero: Inverse(0)
// returns 0, which is no inverse.
constexpr uint64_t Inverse(uint64_t a) {
  uint64_t result = 1;
  uint64_t base = a;
  for (uint64_t e = kPrime - 2; e != 0; e >>= 1) {
    if (e & 1) result = Mul(result, base);
    base = Mul(base, base);
  }
  return result;
}

// Maps 64 uniformly random bits to a uniformly random field element, or
// nullopt when they must be redrawn (probability 2^-61). Keeping the low 61
// bits and rejecting the one value that is not below p avoids the bias that a
// plain `% kPrime` would give small elements.
constexpr std::optional<uint64_t> FromRandomWord(uint64_t word) {
  const uint64_t low = word & kPrime;
  if (low == kPrime) return std::nullopt;
  return low;
}

}  // namespace field

// Each limb of 7 bytes is below 2^56 < p, so it is a field element as is, and a
// reconstructed value of 2^56 or more can only come from wrong shares.
inline constexpr size_t kLimbBytes = 7;
inline constexpr size_t kMaxSecretBytes = 1024;
inline constexpr uint32_t kMaxShares = 100000;

// Number of field elements per share for a secret of `secret_bytes` bytes.
constexpr size_t LimbCount(size_t secret_bytes) {
  return (secret_bytes + kLimbBytes - 1) / kLimbBytes;
}

// One shareholder's share: the value at `x` of each limb's polynomial. Shares
// are as sensitive as the secret once `threshold` of them are together; callers
// send them encrypted to their holder.
struct ShamirShare {
  uint32_t x = 0;
  std::vector<uint64_t> y;  // One value per limb, each < field::kPrime.
};

// OK if `threshold`-of-`n` sharing is safe and possible: 2 <= threshold <= n,
// threshold > n/2 (so two disjoint groups of holders can never both
// reconstruct, as would otherwise happen if the coordinator splits the nodes),
// and n <= kMaxShares. Otherwise InvalidArgument naming the values and the rule.
absl::Status CheckThreshold(uint32_t threshold, uint32_t n);

// Splits `secret` (1..kMaxSecretBytes bytes) into n shares with x = 1..n, any
// `threshold` of which reconstruct it while fewer reveal nothing about it.
// Each 7-byte limb (the last may be shorter; bytes are little-endian within a
// limb) is the constant term of its own polynomial of degree threshold-1 with
// coefficients from OpenSSL's RAND_bytes. Costs about n * threshold * limbs
// field multiplications. Thread-safe. InvalidArgument if CheckThreshold fails
// or the secret is empty or too long; Internal if RAND_bytes fails. Internal
// copies of the secret and the coefficients are wiped before returning.
absl::StatusOr<std::vector<ShamirShare>> SplitSecret(std::span<const uint8_t> secret,
                                                     uint32_t threshold, uint32_t n);

// Reconstructs a secret of `secret_bytes` bytes by Lagrange interpolation at 0
// from the first `threshold` of `shares`; all shares are validated, shares past
// the first `threshold` are otherwise ignored. InvalidArgument, naming the
// share by its index in `shares`, for: threshold below 2 or above kMaxShares,
// secret_bytes outside 1..kMaxSecretBytes, fewer shares than threshold, x = 0,
// two shares with the same x, a y value >= p, shares with different limb
// counts or a limb count that does not fit `secret_bytes`, or a reconstructed
// limb wider than its bytes. Shamir sharing has no integrity: that last check
// catches most but not all wrong or tampered shares, so shares must be
// authenticated in transit. Thread-safe.
absl::StatusOr<std::vector<uint8_t>> ReconstructSecret(std::span<const ShamirShare> shares,
                                                       uint32_t threshold, size_t secret_bytes);

}  // namespace fedcustoms::secagg
