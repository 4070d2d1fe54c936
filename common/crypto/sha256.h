#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/crypto/openssl_ptr.h"

namespace fedcustoms::crypto {

inline constexpr size_t kSha256Bytes = 32;
using Sha256Digest = std::array<uint8_t, kSha256Bytes>;

// Incremental SHA-256 (OpenSSL EVP). Not thread-safe: one hasher per stream.
// Movable, not copyable.
//
// OpenSSL failing to hash (no SHA-256 in the loaded provider, out of memory)
// is treated as an impossible state: the process aborts with a message rather
// than hashing wrongly.
class Sha256 {
 public:
  Sha256();

  // Adds `size` bytes at `data` (may be null when size is 0).
  void Update(const void* data, size_t size);
  void Update(std::string_view data) { Update(data.data(), data.size()); }

  // Returns the digest of everything added since construction or the last
  // Final(), and starts over with an empty input.
  Sha256Digest Final();

 private:
  EvpMdCtxPtr ctx_;
};

// Lower-case hex of raw bytes.
std::string ToHex(std::string_view bytes);
std::string ToHex(std::span<const uint8_t> bytes);

// Raw bytes of a hex string (either case). InvalidArgument on odd length or a
// non-hex character, naming its position.
absl::StatusOr<std::string> FromHex(std::string_view hex);

// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);

// Lower-case hex SHA-256 of the file at `path`, read in a streaming fashion.
// Errors name the path.
absl::StatusOr<std::string> Sha256File(const std::string& path);

}  // namespace fedcustoms::crypto
