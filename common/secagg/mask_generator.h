#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"

namespace fedcustoms::secagg {

// 32 uniformly random bytes (an HKDF output, or fresh from RAND_bytes) from
// which a mask is expanded.
using MaskSeed = std::array<uint8_t, 32>;

enum class MaskSign { kAdd, kSubtract };

// Adds (or subtracts) the mask expanded from `seed` to `data`, word by word,
// modulo 2^32: data[i] ± m[i], where m is the AES-128-CTR keystream under key
// seed[0..16) and initial counter block seed[16..32), read as little-endian
// 32-bit words. The same seed always gives the same mask, so a node's pairwise
// masks cancel in the coordinator's sum and a reconstructed seed removes
// exactly the mask it made. AES-NI through OpenSSL EVP; the keystream is made
// in blocks that stay in cache. Fails only if OpenSSL does.
absl::Status ApplyMask(const MaskSeed& seed, MaskSign sign, std::span<uint32_t> data);

// One mask of several applied to the same vector.
struct SignedMask {
  MaskSeed seed;
  MaskSign sign;
};

// Applies every mask in `masks` to `data`, with the same result as calling
// ApplyMask for each in turn, but in one pass over `data`: each block of data
// stays in L1 while all keystreams are added to it, so memory is read and
// written once instead of once per mask (a node applies n masks, the
// coordinator one per survivor and more per dropout).
absl::Status ApplyMasks(std::span<const SignedMask> masks, std::span<uint32_t> data);

// Wipes the seeds (they are secrets) and empties the vector.
void WipeMasks(std::vector<SignedMask>& masks);

}  // namespace fedcustoms::secagg
