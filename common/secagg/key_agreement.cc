#include "common/secagg/key_agreement.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "common/crypto/openssl_error.h"

namespace fedcustoms::secagg {
namespace {

absl::StatusOr<X25519PublicKey> PublicOf(EVP_PKEY* key) {
  X25519PublicKey out{};
  size_t length = out.size();
  if (EVP_PKEY_get_raw_public_key(key, out.data(), &length) != 1 || length != out.size()) {
    return crypto::OpenSslError(absl::StatusCode::kInternal, "X25519: read public key");
  }
  return out;
}

}  // namespace

absl::StatusOr<X25519KeyPair> X25519KeyPair::Generate() {
  crypto::EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 || EVP_PKEY_keygen(ctx.get(), &raw) != 1) {
    return crypto::OpenSslError(absl::StatusCode::kInternal, "X25519: generate key pair");
  }
  crypto::EvpPkeyPtr key(raw);
  absl::StatusOr<X25519PublicKey> public_key = PublicOf(key.get());
  if (!public_key.ok()) return public_key.status();
  return X25519KeyPair(std::move(key), *public_key);
}

absl::StatusOr<X25519KeyPair> X25519KeyPair::FromPrivate(std::span<const uint8_t> private_key) {
  if (private_key.size() != kX25519KeyBytes) {
    return absl::InvalidArgumentError(absl::StrCat("X25519 private key has ", private_key.size(),
                                                   " bytes, expected ", kX25519KeyBytes));
  }
  crypto::EvpPkeyPtr key(EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, private_key.data(),
                                                      private_key.size()));
  if (!key) return crypto::OpenSslError(absl::StatusCode::kInvalidArgument, "X25519: private key");
  absl::StatusOr<X25519PublicKey> public_key = PublicOf(key.get());
  if (!public_key.ok()) return public_key.status();
  return X25519KeyPair(std::move(key), *public_key);
}

absl::StatusOr<std::array<uint8_t, kX25519KeyBytes>> X25519KeyPair::PrivateBytes() const {
  std::array<uint8_t, kX25519KeyBytes> out{};
  size_t length = out.size();
  if (EVP_PKEY_get_raw_private_key(key_.get(), out.data(), &length) != 1 || length != out.size()) {
    return crypto::OpenSslError(absl::StatusCode::kInternal, "X25519: read private key");
  }
  return out;
}

absl::StatusOr<SharedKey> X25519KeyPair::Agree(const X25519PublicKey& their_public,
                                               std::string_view context) const {
  crypto::EvpPkeyPtr peer(EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, their_public.data(),
                                                      their_public.size()));
  if (!peer) {
    return crypto::OpenSslError(absl::StatusCode::kInvalidArgument, "X25519: peer public key");
  }
  crypto::EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new(key_.get(), nullptr));
  std::array<uint8_t, kX25519KeyBytes> secret{};
  size_t length = secret.size();
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 ||
      EVP_PKEY_derive_set_peer(ctx.get(), peer.get()) != 1 ||
      EVP_PKEY_derive(ctx.get(), secret.data(), &length) != 1 || length != secret.size()) {
    // OpenSSL refuses an all-zero result (a low-order peer key) here too.
    return crypto::OpenSslError(absl::StatusCode::kInvalidArgument,
                                "X25519: key agreement with the peer's public key");
  }
  absl::StatusOr<SharedKey> key = HkdfSha256(secret, context);
  OPENSSL_cleanse(secret.data(), secret.size());
  return key;
}

absl::StatusOr<SharedKey> HkdfSha256(std::span<const uint8_t> secret, std::string_view context) {
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  EVP_KDF_CTX* ctx = kdf ? EVP_KDF_CTX_new(kdf) : nullptr;
  EVP_KDF_free(kdf);
  if (!ctx) return crypto::OpenSslError(absl::StatusCode::kInternal, "HKDF: fetch");
  char digest[] = "SHA256";
  std::vector<unsigned char> key(secret.begin(), secret.end());
  std::vector<unsigned char> info(context.begin(), context.end());
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, key.data(), key.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info.data(), info.size()),
      OSSL_PARAM_construct_end()};
  SharedKey out{};
  const int ok = EVP_KDF_derive(ctx, out.data(), out.size(), params);
  EVP_KDF_CTX_free(ctx);
  OPENSSL_cleanse(key.data(), key.size());
  if (ok != 1) return crypto::OpenSslError(absl::StatusCode::kInternal, "HKDF-SHA-256");
  return out;
}

}  // namespace fedcustoms::secagg
