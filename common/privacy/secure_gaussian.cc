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
  std::vector<uint64_t> words;
  NextWords(static_cast<size_t>(2 * pairs), &words);
  // 53-bit uniforms in (0, 1): never 0, so the logarithm is finite.
  std::vector<double> uniform(words.size());
  for (size_t i = 0; i < words.size(); ++i) {
    uniform[i] = (static_cast<double>(words[i] >> 11) + 0.5) * 0x1.0p-53;
  }
  const at::Tensor u =
      torch::from_blob(uniform.data(), {pairs, 2}, torch::TensorOptions().dtype(torch::kFloat64));
  const at::Tensor radius = torch::sqrt(-2.0 * torch::log(u.select(1, 0))) * stddev;
  const at::Tensor angle = u.select(1, 1) * (2.0 * M_PI);
  const at::Tensor normals =
      torch::stack({radius * torch::cos(angle), radius * torch::sin(angle)}, 1).flatten();
  out.view({-1}).copy_(normals.slice(0, 0, n));
}

}  // namespace fedcustoms::privacy
