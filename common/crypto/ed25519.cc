#include "common/crypto/ed25519.h"

#include <openssl/err.h>

#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "common/crypto/openssl_error.h"
#include "common/crypto/pem.h"
#include "common/io/atomic_file.h"

namespace fedcustoms::crypto {
namespace {

absl::Status RequireEd25519(const EVP_PKEY* key, const std::string& source) {
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_ED25519) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": expected an Ed25519 key, found ", KeyTypeName(key)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Ed25519Signer>> Ed25519Signer::Create(
    const std::string& private_key_path) {
  absl::StatusOr<std::string> pem = io::ReadFile(private_key_path);
  if (!pem.ok()) return pem.status();
  absl::StatusOr<std::unique_ptr<Ed25519Signer>> signer = FromPem(*pem, private_key_path);
  WipeString(*pem);
  return signer;
}

absl::StatusOr<std::unique_ptr<Ed25519Signer>> Ed25519Signer::FromPem(std::string_view pem,
                                                                      const std::string& source) {
  absl::StatusOr<EvpPkeyPtr> key = PrivateKeyFromPem(pem, source);
  if (!key.ok()) return key.status();
  if (absl::Status s = RequireEd25519(key->get(), source); !s.ok()) return s;
  std::string public_pem = PublicKeyToPem(key->get());
  return std::unique_ptr<Ed25519Signer>(new Ed25519Signer(*std::move(key), std::move(public_pem)));
}

std::string Ed25519Signer::Sign(std::string_view message) const {
  std::string signature(kEd25519SignatureBytes, '\0');
  size_t length = signature.size();
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  // Ed25519 hashes internally: no digest is given, and the one-shot call is required.
  if (ctx == nullptr || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1 ||
      EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &length,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1 ||
      length != kEd25519SignatureBytes) {
    std::fprintf(stderr, "fatal: Ed25519 signing failed: %s\n", DrainOpenSslErrors().c_str());
    std::abort();
  }
  return signature;
}

absl::StatusOr<std::unique_ptr<Ed25519Verifier>> Ed25519Verifier::Create(
    const std::string& public_key_path) {
  absl::StatusOr<std::string> pem = io::ReadFile(public_key_path);
  if (!pem.ok()) return pem.status();
  return FromPem(*pem, public_key_path);
}

absl::StatusOr<std::unique_ptr<Ed25519Verifier>> Ed25519Verifier::FromPem(
    std::string_view pem, const std::string& source) {
  absl::StatusOr<EvpPkeyPtr> key = PublicKeyFromPem(pem, source);
  if (!key.ok()) return key.status();
  if (absl::Status s = RequireEd25519(key->get(), source); !s.ok()) return s;
  return std::unique_ptr<Ed25519Verifier>(
      new Ed25519Verifier(*std::move(key), std::string(source)));
}

absl::Status Ed25519Verifier::Verify(std::string_view message, std::string_view signature) const {
  if (signature.size() != kEd25519SignatureBytes) {
    return absl::UnauthenticatedError(absl::StrCat("Ed25519 signature has ", signature.size(),
                                                   " bytes, expected ", kEd25519SignatureBytes));
  }
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (ctx == nullptr ||
      EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1) {
    return OpenSslError(absl::StatusCode::kInternal,
                        absl::StrCat("Ed25519 verification setup for ", source_));
  }
  const int rc = EVP_DigestVerify(
      ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
      reinterpret_cast<const unsigned char*>(message.data()), message.size());
  if (rc != 1) {
    // A mismatch leaves a "bad signature" entry; it explains nothing more.
    ERR_clear_error();
    return absl::UnauthenticatedError(
        absl::StrCat("Ed25519 signature does not match the message under the key from ", source_));
  }
  return absl::OkStatus();
}

absl::Status GenerateEd25519KeyPair(const std::string& private_key_path,
                                    const std::string& public_key_path) {
  EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (key == nullptr) {
    return OpenSslError(absl::StatusCode::kInternal,
                        absl::StrCat(private_key_path, ": Ed25519 key generation"));
  }
  std::string private_pem = PrivateKeyToPem(key.get());
  absl::Status written = io::WriteFileAtomically(private_key_path, private_pem, 0600);
  WipeString(private_pem);
  if (!written.ok()) return written;
  return io::WriteFileAtomically(public_key_path, PublicKeyToPem(key.get()), 0644);
}

}  // namespace fedcustoms::crypto
