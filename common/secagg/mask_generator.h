#pragma once

#include <array>
#include <cstdint>
#include <span>

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

}  // namespace fedcustoms::secagg
