#include "common/privacy/secure_gaussian.h"

#include <openssl/crypto.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/crypto/sha256.h"

namespace fedcustoms::privacy {
namespace {

[[noreturn]] void Abort(const char* what) {
  std::fprintf(stderr, "fedcustoms: OpenSSL failed: %s\n", what);
  std::abort();
}

}  // namespace

SecureGaussian::SecureGaussian(std::string_view secret) : ctx_(EVP_CIPHER_CTX_new()) {
  crypto::Sha256 hash;
  hash.Update(std::string_view("fedcustoms dp noise v1"));
  hash.Update(secret);
  crypto::Sha256Digest key = hash.Final();
  const unsigned char iv[16] = {};
  if (!ctx_ || EVP_EncryptInit_ex(ctx_.get(), EVP_aes_256_ctr(), nullptr, key.data(), iv) != 1) {
    Abort("AES-256-CTR init");
  }
  OPENSSL_cleanse(key.data(), key.size());
}

void SecureGaussian::NextWords(size_t count, std::vector<uint64_t>* words) {
  words->assign(count, 0);  // CTR encrypts zeros into the bare keystream
  auto* bytes = reinterpret_cast<unsigned char*>(words->data());
  constexpr size_t kChunk = 1 << 20;  // EVP takes an int length
  for (size_t done = 0; done < count * sizeof(uint64_t);) {
    const int n = static_cast<int>(std::min(kChunk, count * sizeof(uint64_t) - done));
    int written = 0;
    if (EVP_EncryptUpdate(ctx_.get(), bytes + done, &written, bytes + done, n) != 1 ||
        written != n) {
      Abort("AES-256-CTR");
    }
    done += static_cast<size_t>(n);
  }
}

void SecureGaussian::Fill(at::Tensor& out, double stddev) {
  TORCH_CHECK(out.scalar_type() == torch::kFloat32 && out.is_contiguous(),
              "SecureGaussian::Fill: float32 contiguous tensor expected");
  const int64_t n = out.numel();
  if (n == 0) return;
  const int64_t pairs = (n + 1) / 2;
  // One 64-bit word per pair: its top 53 bits give the radius's uniform
  // (never 0, so the logarithm is finite; tails to about 8.6 σ), its low 11
  // bits and the next word's top 21 the angle's (32 bits; the angle needs no
  // more). Two words per pair in all.
  NextWords(static_cast<size_t>(2 * pairs), &words_);
  const at::Tensor w = torch::from_blob(words_.data(), {pairs, 2}, torch::kInt64);
  const at::Tensor radius_bits =
      torch::bitwise_and(torch::bitwise_right_shift(w.select(1, 0), 11), (int64_t{1} << 53) - 1);
  const at::Tensor angle_bits =
      torch::bitwise_and(torch::bitwise_right_shift(w.select(1, 1), 32), (int64_t{1} << 32) - 1);
  const at::Tensor u1 = (radius_bits.to(torch::kFloat64) + 0.5) * 0x1.0p-53;
  const at::Tensor radius = (torch::sqrt(-2.0 * torch::log(u1)) * stddev).to(torch::kFloat32);
  const at::Tensor angle =
      (angle_bits.to(torch::kFloat32) + 0.5f) * static_cast<float>(2 * M_PI * 0x1.0p-32);
  at::Tensor flat = out.view({-1});
  const int64_t even = n / 2;
  flat.slice(0, 0, 2 * even, 2).copy_((radius * torch::cos(angle)).slice(0, 0, even));
  flat.slice(0, 1, 2 * even, 2).copy_((radius * torch::sin(angle)).slice(0, 0, even));
  if (n % 2 == 1) flat[n - 1] = (radius[pairs - 1] * torch::cos(angle[pairs - 1])).item<float>();
}

}  // namespace fedcustoms::privacy
