#include "common/secagg/share_cipher.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "common/crypto/openssl_error.h"
#include "common/crypto/sha256.h"

namespace fedcustoms::secagg {
namespace {

struct CipherCtxDeleter {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};
using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter>;

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

std::string ShareAssociatedData(std::string_view task, uint64_t round_id, std::string_view sender,
                                std::string_view receiver, std::string_view u1_digest) {
  // Each name prefixed by its length, so no two different tuples give the
  // same text.
  auto field = [](std::string_view s) { return std::to_string(s.size()) + ":" + std::string(s); };
  return "fedcustoms/v1 share|" + field(task) + "|" + std::to_string(round_id) + "|" +
         field(sender) + "|" + field(receiver) + "|" + field(u1_digest);
}

std::string CommitToShareKey(const SharedKey& key) {
  crypto::Sha256 hash;
  hash.Update("fedcustoms/v1 share-key commitment|");
  hash.Update(key.data(), key.size());
  const crypto::Sha256Digest digest = hash.Final();
  return std::string(digest.begin(), digest.end());
}

absl::StatusOr<std::string> SealShare(const SharedKey& key, std::string_view plaintext,
                                      std::string_view associated_data) {
  std::string sealed(kNonceBytes + plaintext.size() + kTagBytes, '\0');
  unsigned char* nonce = reinterpret_cast<unsigned char*>(sealed.data());
  unsigned char* body = nonce + kNonceBytes;
  if (RAND_bytes(nonce, static_cast<int>(kNonceBytes)) != 1) {
    return crypto::OpenSslError(absl::StatusCode::kInternal, "share: nonce");
  }
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  int length = 0;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), nonce) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &length, Bytes(associated_data),
                        static_cast<int>(associated_data.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), body, &length, Bytes(plaintext),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), body + length, &length) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagBytes),
                          body + plaintext.size()) != 1) {
    return crypto::OpenSslError(absl::StatusCode::kInternal, "share: AES-256-GCM seal");
  }
  return sealed;
}

absl::StatusOr<std::string> OpenShare(const SharedKey& key, std::string_view sealed,
                                      std::string_view associated_data) {
  if (sealed.size() < kNonceBytes + kTagBytes) {
    return absl::InvalidArgumentError(absl::StrCat("share message has ", sealed.size(),
                                                   " bytes, fewer than nonce and tag (",
                                                   kNonceBytes + kTagBytes, ")"));
  }
  const size_t body_bytes = sealed.size() - kNonceBytes - kTagBytes;
  const unsigned char* nonce = Bytes(sealed);
  const unsigned char* body = nonce + kNonceBytes;
  std::string plaintext(body_bytes, '\0');
  unsigned char* out = reinterpret_cast<unsigned char*>(plaintext.data());
  std::string tag(sealed.substr(kNonceBytes + body_bytes));
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  int length = 0;
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), nonce) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &length, Bytes(associated_data),
                        static_cast<int>(associated_data.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), out, &length, body, static_cast<int>(body_bytes)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagBytes),
                          tag.data()) != 1) {
    return crypto::OpenSslError(absl::StatusCode::kInternal, "share: AES-256-GCM open");
  }
  if (EVP_DecryptFinal_ex(ctx.get(), out + length, &length) != 1) {
    crypto::DrainOpenSslErrors();
    return absl::DataLossError(
        "share message failed authentication: altered, sealed under another key, or meant for "
        "another round, sender or receiver");
  }
  return plaintext;
}

}  // namespace fedcustoms::secagg
