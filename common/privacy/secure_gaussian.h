#pragma once

#include <ATen/Tensor.h>

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "common/crypto/openssl_ptr.h"

namespace fedcustoms::privacy {

// Gaussian noise that whoever sees a noised update cannot predict: the
// keystream of AES-256-CTR under a 256-bit key, turned into normals by the
// Box–Muller transform (a 53-bit uniform for the radius, 32 bits for the
// angle). A Mersenne
// Twister (LibTorch's CPU generator) would not do: it keeps 32 bits of its
// seed, so a coordinator could try every seed against the noise of an update
// and subtract it.
//
// The tails are cut where a 53-bit uniform ends (|z| below about 8.6 σ);
// the noise is drawn in double and rounded to float32 (see docs/privacy.md,
// "What is not covered").
//
// Not thread-safe; one per training.
class SecureGaussian {
 public:
  // Keyed by SHA-256("fedcustoms dp noise v1" || secret): a node passes 32
  // bytes from the OS; a test passes a fixed string and gets a fixed stream.
  explicit SecureGaussian(std::string_view secret);

  // `out` (float32, contiguous) filled with independent N(0, stddev²) values.
  // Aborts on an OpenSSL failure (an impossible state, as for hashing).
  void Fill(at::Tensor& out, double stddev);

 private:
  // The next `count` 64-bit words of the keystream.
  void NextWords(size_t count, std::vector<uint64_t>* words);

  crypto::EvpCipherCtxPtr ctx_;
  std::vector<uint64_t> words_;  // the keystream of one Fill, reused
};

}  // namespace fedcustoms::privacy
