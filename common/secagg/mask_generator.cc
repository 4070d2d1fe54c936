#include "common/secagg/mask_generator.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <vector>

#include "common/crypto/openssl_error.h"

namespace fedcustoms::secagg {
namespace {

// 64 KiB of keystream at a time: large enough that the EVP call overhead
// vanishes, small enough to stay in L2 between making and adding it.
constexpr size_t kBlockWords = 16384;

struct CipherCtxDeleter {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};

}  // namespace

absl::Status ApplyMask(const MaskSeed& seed, MaskSign sign, std::span<uint32_t> data) {
  std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter> ctx(EVP_CIPHER_CTX_new());
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_128_ctr(), nullptr, seed.data(),
                                 seed.data() + 16) != 1) {
    return crypto::OpenSslError(absl::StatusCode::kInternal, "mask: AES-128-CTR init");
  }
  // CTR mode encrypts zeros into the bare keystream; the zeros are never
  // written, so they stay in cache next to the keystream block.
  const size_t block = std::min(kBlockWords, std::max<size_t>(data.size(), 1));
  const std::vector<uint32_t> zeros(block, 0);
  std::vector<uint32_t> stream(block);
  for (size_t done = 0; done < data.size();) {
    const size_t n = std::min(stream.size(), data.size() - done);
    const int bytes = static_cast<int>(n * sizeof(uint32_t));
    int written = 0;
    if (EVP_EncryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(stream.data()), &written,
                          reinterpret_cast<const unsigned char*>(zeros.data()), bytes) != 1 ||
        written != bytes) {
      return crypto::OpenSslError(absl::StatusCode::kInternal, "mask: AES-128-CTR");
    }
    // Unsigned arithmetic wraps modulo 2^32, which is the ring. The restrict
    // pointers let the compiler vectorize the loops at -O2.
    uint32_t* __restrict out = data.data() + done;
    const uint32_t* __restrict mask = stream.data();
    if (sign == MaskSign::kAdd) {
      for (size_t i = 0; i < n; ++i) out[i] += mask[i];
    } else {
      for (size_t i = 0; i < n; ++i) out[i] -= mask[i];
    }
    done += n;
  }
  // The keystream is the mask itself (e.g. a node's self mask): not left behind.
  OPENSSL_cleanse(stream.data(), stream.size() * sizeof(uint32_t));
  return absl::OkStatus();
}

}  // namespace fedcustoms::secagg
