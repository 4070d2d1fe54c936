#include "common/crypto/pem.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <climits>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/openssl_error.h"

namespace fedcustoms::crypto {
namespace {

// Passphrase callback that refuses, so OpenSSL never prompts on a terminal.
int NoPassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*userdata*/) { return -1; }

absl::StatusOr<BioPtr> ReadOnlyBio(std::string_view pem, const std::string& source) {
  if (pem.size() > static_cast<size_t>(INT_MAX)) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": PEM data too large"));
  }
  if (pem.find("-----BEGIN ") == std::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": not PEM (no \"-----BEGIN\" line)"));
  }
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (bio == nullptr) return OpenSslError(absl::StatusCode::kInternal, source);
  return bio;
}

[[noreturn]] void DieOnEncodeFailure(const char* what) {
  std::fprintf(stderr, "fatal: PEM encoding of %s failed: %s\n", what,
               DrainOpenSslErrors().c_str());
  std::abort();
}

std::string BioContents(BIO* bio) {
  char* data = nullptr;
  long length = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(length));
}

}  // namespace

absl::StatusOr<EvpPkeyPtr> PrivateKeyFromPem(std::string_view pem, const std::string& source) {
  absl::StatusOr<BioPtr> bio = ReadOnlyBio(pem, source);
  if (!bio.ok()) return bio.status();
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio->get(), nullptr, NoPassphrase, nullptr));
  if (key == nullptr) {
    return OpenSslError(absl::StatusCode::kInvalidArgument,
                        absl::StrCat(source, ": no readable unencrypted private key"));
  }
  return key;
}

absl::StatusOr<EvpPkeyPtr> PublicKeyFromPem(std::string_view pem, const std::string& source) {
  absl::StatusOr<BioPtr> bio = ReadOnlyBio(pem, source);
  if (!bio.ok()) return bio.status();
  EvpPkeyPtr key(PEM_read_bio_PUBKEY(bio->get(), nullptr, NoPassphrase, nullptr));
  if (key == nullptr) {
    return OpenSslError(absl::StatusCode::kInvalidArgument,
                        absl::StrCat(source, ": no readable public key (\"BEGIN PUBLIC KEY\")"));
  }
  return key;
}

absl::StatusOr<std::vector<X509Ptr>> CertificatesFromPem(std::string_view pem,
                                                         const std::string& source) {
  absl::StatusOr<BioPtr> bio = ReadOnlyBio(pem, source);
  if (!bio.ok()) return bio.status();
  std::vector<X509Ptr> certs;
  while (true) {
    X509Ptr cert(PEM_read_bio_X509(bio->get(), nullptr, NoPassphrase, nullptr));
    if (cert == nullptr) break;
    certs.push_back(std::move(cert));
  }
  // Running off the end shows up as "no start line"; anything else is a bad certificate.
  const unsigned long last = ERR_peek_last_error();
  if (!certs.empty() && ERR_GET_LIB(last) == ERR_LIB_PEM &&
      ERR_GET_REASON(last) == PEM_R_NO_START_LINE) {
    ERR_clear_error();
    return certs;
  }
  const std::string what =
      certs.empty() ? ": no certificate found"
                    : absl::StrCat(": malformed certificate after certificate #", certs.size());
  return OpenSslError(absl::StatusCode::kInvalidArgument, absl::StrCat(source, what));
}

std::string PrivateKeyToPem(EVP_PKEY* key) {
  // Memory BIOs clear their buffers when freed (OPENSSL_clear_free).
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    DieOnEncodeFailure("a private key");
  }
  return BioContents(bio.get());
}

std::string PublicKeyToPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_PUBKEY(bio.get(), key) != 1) {
    DieOnEncodeFailure("a public key");
  }
  return BioContents(bio.get());
}

std::string CertificateToPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_X509(bio.get(), cert) != 1) {
    DieOnEncodeFailure("a certificate");
  }
  return BioContents(bio.get());
}

std::string KeyTypeName(const EVP_PKEY* key) {
  if (key == nullptr) return "no key";
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_ED25519:
      return "ED25519";
    case EVP_PKEY_ED448:
      return "ED448";
    case EVP_PKEY_X25519:
      return "X25519";
    case EVP_PKEY_RSA:
    case EVP_PKEY_RSA_PSS:
      return absl::StrCat("RSA ", EVP_PKEY_get_bits(key));
    case EVP_PKEY_EC: {
      char group[64] = {};
      size_t length = 0;
      if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                         &length) == 1) {
        const int nid = OBJ_txt2nid(group);
        const char* nist = nid == NID_undef ? nullptr : EC_curve_nid2nist(nid);
        return absl::StrCat("EC ", nist != nullptr ? nist : group);
      }
      ERR_clear_error();
      return "EC";
    }
    default: {
      const char* name = EVP_PKEY_get0_type_name(key);
      return name != nullptr ? name : "unknown key type";
    }
  }
}

void WipeString(std::string& secret) {
  if (!secret.empty()) OPENSSL_cleanse(secret.data(), secret.size());
  secret.clear();
}

}  // namespace fedcustoms::crypto
