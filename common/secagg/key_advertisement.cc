#include "common/secagg/key_advertisement.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "absl/strings/str_cat.h"
#include "common/crypto/openssl_error.h"
#include "common/crypto/pem.h"
#include "common/io/atomic_file.h"
#include "common/pki/certificate_chain.h"
#include "common/pki/peer_identity.h"

namespace fedcustoms::secagg {
namespace {

std::string Field(std::string_view value) {
  return std::to_string(value.size()) + ":" + std::string(value);
}

std::string_view KeyBytes(const X25519PublicKey& key) {
  return std::string_view(reinterpret_cast<const char*>(key.data()), key.size());
}

// Digest and padding for `key`'s type, set on a DigestSign/DigestVerify
// context; Ed25519 signs the message itself (no digest).
bool InitForKey(EVP_MD_CTX* ctx, EVP_PKEY* key, bool sign) {
  const bool ed25519 = EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519;
  const EVP_MD* md = ed25519 ? nullptr : EVP_sha256();
  EVP_PKEY_CTX* pctx = nullptr;
  const int ok = sign ? EVP_DigestSignInit(ctx, &pctx, md, nullptr, key)
                      : EVP_DigestVerifyInit(ctx, &pctx, md, nullptr, key);
  if (ok != 1) return false;
  if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA) {
    return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
           EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1;
  }
  return true;
}

}  // namespace

std::string AdvertisementPayload(const AdvertisedKeys& keys) {
  return "fedcustoms/v1 secagg keys|" + Field(keys.task) + "|" + std::to_string(keys.round_id) +
         "|" + Field(keys.node) + "|" + Field(KeyBytes(keys.mask_key)) + "|" +
         Field(KeyBytes(keys.cipher_key));
}

absl::StatusOr<std::unique_ptr<KeyAdvertisementSigner>> KeyAdvertisementSigner::Create(
    const std::string& private_key_path) {
  absl::StatusOr<std::string> pem = io::ReadFile(private_key_path);
  if (!pem.ok()) return pem.status();
  absl::StatusOr<crypto::EvpPkeyPtr> key = crypto::PrivateKeyFromPem(*pem, private_key_path);
  crypto::WipeString(*pem);
  if (!key.ok()) return key.status();
  return std::unique_ptr<KeyAdvertisementSigner>(new KeyAdvertisementSigner(*std::move(key)));
}

absl::StatusOr<std::string> KeyAdvertisementSigner::Sign(const AdvertisedKeys& keys) const {
  const std::string payload = AdvertisementPayload(keys);
  crypto::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  size_t length = 0;
  if (!ctx || !InitForKey(ctx.get(), key_.get(), /*sign=*/true) ||
      EVP_DigestSign(ctx.get(), nullptr, &length,
                     reinterpret_cast<const unsigned char*>(payload.data()), payload.size()) != 1) {
    return crypto::OpenSslError(absl::StatusCode::kInternal, "sign advertised keys");
  }
  std::string signature(length, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &length,
                     reinterpret_cast<const unsigned char*>(payload.data()), payload.size()) != 1) {
    return crypto::OpenSslError(absl::StatusCode::kInternal, "sign advertised keys");
  }
  signature.resize(length);
  return signature;
}

absl::StatusOr<std::unique_ptr<KeyAdvertisementVerifier>> KeyAdvertisementVerifier::Create(
    const std::string& ca_cert_path) {
  absl::StatusOr<std::string> pem = io::ReadFile(ca_cert_path);
  if (!pem.ok()) return pem.status();
  absl::StatusOr<std::vector<crypto::X509Ptr>> cas =
      crypto::CertificatesFromPem(*pem, ca_cert_path);
  if (!cas.ok()) return cas.status();
  return std::unique_ptr<KeyAdvertisementVerifier>(new KeyAdvertisementVerifier(*std::move(cas)));
}

absl::Status KeyAdvertisementVerifier::Verify(const AdvertisedKeys& keys, std::string_view cert_pem,
                                              std::string_view signature) const {
  const std::string who = absl::StrCat("keys advertised for ", keys.node, ": ");
  auto refuse = [&](absl::string_view why) {
    return absl::PermissionDeniedError(who + std::string(why));
  };
  absl::StatusOr<std::vector<crypto::X509Ptr>> chain =
      crypto::CertificatesFromPem(cert_pem, "advertised certificate");
  if (!chain.ok() || chain->empty()) return refuse("the certificate is not readable PEM");
  if (absl::Status s =
          pki::VerifyCertificateChain(cas_, *chain, X509_PURPOSE_SSL_CLIENT, "the federation CA");
      !s.ok()) {
    return refuse(s.message());
  }
  absl::StatusOr<pki::PeerIdentity> identity =
      pki::PeerIdentityFromCertificate(chain->front().get(), "advertised certificate");
  if (!identity.ok()) return refuse(identity.status().message());
  if (identity->role != pki::Role::kNode) {
    return refuse(
        absl::StrCat("the certificate's role is ", pki::RoleName(identity->role), ", not node"));
  }
  if (identity->common_name != keys.node) {
    return refuse(absl::StrCat("the certificate is ", identity->common_name, "'s"));
  }
  EVP_PKEY* key = X509_get0_pubkey(chain->front().get());
  const std::string payload = AdvertisementPayload(keys);
  crypto::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || key == nullptr || !InitForKey(ctx.get(), key, /*sign=*/false)) {
    ERR_clear_error();
    return refuse("the certificate's key cannot verify signatures");
  }
  if (EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                       signature.size(), reinterpret_cast<const unsigned char*>(payload.data()),
                       payload.size()) != 1) {
    ERR_clear_error();
    return refuse(absl::StrCat("the signature does not cover these keys for task ", keys.task,
                               " round ", keys.round_id,
                               " (substituted key, replay from another round, or forgery)"));
  }
  return absl::OkStatus();
}

}  // namespace fedcustoms::secagg
