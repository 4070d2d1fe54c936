#include "common/pki/certificate_authority.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "absl/strings/str_cat.h"
#include "common/crypto/openssl_error.h"
#include "common/crypto/pem.h"
#include "common/io/atomic_file.h"

namespace fedcustoms::pki {
namespace {

using crypto::OpenSslError;

constexpr char kOrganization[] = "fedcustoms";
constexpr int64_t kBackdateSeconds = 300;

absl::StatusOr<crypto::EvpPkeyPtr> GenerateKey(KeyType type) {
  EVP_PKEY* key = nullptr;
  switch (type) {
    case KeyType::kEcdsaP256:
      key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
      break;
    case KeyType::kRsa2048:
      key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048});
      break;
    case KeyType::kRsa1024:
      key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{1024});
      break;
  }
  if (key == nullptr) return OpenSslError(absl::StatusCode::kInternal, "key generation");
  return crypto::EvpPkeyPtr(key);
}

absl::Status AddNameEntry(X509_NAME* name, const char* field, const std::string& value) {
  if (X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(value.data()),
                                 static_cast<int>(value.size()), -1, 0) != 1) {
    return OpenSslError(absl::StatusCode::kInvalidArgument,
                        absl::StrCat("subject ", field, "=\"", value, "\""));
  }
  return absl::OkStatus();
}

// Adds the extension `nid` written in OpenSSL config syntax (constants only).
absl::Status AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  crypto::X509ExtensionPtr ext(X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value));
  if (ext == nullptr || X509_add_ext(cert, ext.get(), -1) != 1) {
    return OpenSslError(absl::StatusCode::kInternal,
                        absl::StrCat("certificate extension ", OBJ_nid2sn(nid), "=", value));
  }
  return absl::OkStatus();
}

// subjectAltName built entry by entry, so a name cannot inject config syntax.
absl::Status AddSubjectAltNames(X509* cert, const IssueOptions& options) {
  if (options.dns_names.empty() && options.ip_addresses.empty()) return absl::OkStatus();
  crypto::GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
  if (names == nullptr) return OpenSslError(absl::StatusCode::kInternal, "subjectAltName");
  auto add = [&](int type, const std::string& value) -> absl::Status {
    GENERAL_NAME* name = a2i_GENERAL_NAME(nullptr, nullptr, nullptr, type, value.c_str(), 0);
    if (name == nullptr) {
      return OpenSslError(
          absl::StatusCode::kInvalidArgument,
          absl::StrCat("subjectAltName ", type == GEN_IPADD ? "IP" : "DNS", " \"", value, "\""));
    }
    // The stack owns `name` from here on (freed by GENERAL_NAMES_free).
    sk_GENERAL_NAME_push(names.get(), name);
    return absl::OkStatus();
  };
  for (const std::string& dns : options.dns_names) {
    if (absl::Status s = add(GEN_DNS, dns); !s.ok()) return s;
  }
  for (const std::string& ip : options.ip_addresses) {
    if (absl::Status s = add(GEN_IPADD, ip); !s.ok()) return s;
  }
  if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) != 1) {
    return OpenSslError(absl::StatusCode::kInternal, "subjectAltName");
  }
  return absl::OkStatus();
}

// A certificate with version, random serial, validity, subject, issuer and
// public key set; extensions and signature still to come.
absl::StatusOr<crypto::X509Ptr> NewCertificate(EVP_PKEY* key, X509_NAME* subject, X509_NAME* issuer,
                                               int64_t not_before_offset,
                                               int64_t not_after_offset) {
  crypto::X509Ptr cert(X509_new());
  crypto::BigNumPtr serial(BN_new());
  if (cert == nullptr || serial == nullptr || X509_set_version(cert.get(), X509_VERSION_3) != 1 ||
      BN_rand(serial.get(), 159, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) == nullptr ||
      X509_gmtime_adj(X509_getm_notBefore(cert.get()), static_cast<long>(not_before_offset)) ==
          nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(not_after_offset)) ==
          nullptr ||
      X509_set_subject_name(cert.get(), subject) != 1 ||
      X509_set_issuer_name(cert.get(), issuer) != 1 || X509_set_pubkey(cert.get(), key) != 1) {
    return OpenSslError(absl::StatusCode::kInternal, "certificate setup");
  }
  return cert;
}

absl::Status Sign(X509* cert, EVP_PKEY* key) {
  if (X509_sign(cert, key, EVP_sha256()) <= 0) {
    return OpenSslError(absl::StatusCode::kInternal, "certificate signing");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<KeyAndCertificate> GenerateCa(const std::string& common_name,
                                             std::chrono::seconds validity) {
  absl::StatusOr<crypto::EvpPkeyPtr> key = GenerateKey(KeyType::kEcdsaP256);
  if (!key.ok()) return key.status();
  crypto::X509NamePtr subject(X509_NAME_new());
  if (subject == nullptr) return OpenSslError(absl::StatusCode::kInternal, "CA subject");
  if (absl::Status s = AddNameEntry(subject.get(), "O", kOrganization); !s.ok()) return s;
  if (absl::Status s = AddNameEntry(subject.get(), "CN", common_name); !s.ok()) return s;
  absl::StatusOr<crypto::X509Ptr> cert =
      NewCertificate(key->get(), subject.get(), subject.get(), -kBackdateSeconds, validity.count());
  if (!cert.ok()) return cert.status();
  X509* c = cert->get();
  for (auto [nid, value] : {std::pair{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
                            std::pair{NID_key_usage, "critical,keyCertSign,cRLSign"},
                            std::pair{NID_subject_key_identifier, "hash"}}) {
    if (absl::Status s = AddExtension(c, c, nid, value); !s.ok()) return s;
  }
  if (absl::Status s = Sign(c, key->get()); !s.ok()) return s;
  return KeyAndCertificate{*std::move(key), *std::move(cert)};
}

absl::StatusOr<KeyAndCertificate> IssueCertificate(const KeyAndCertificate& ca,
                                                   const IssueOptions& options) {
  absl::StatusOr<crypto::EvpPkeyPtr> key = GenerateKey(options.key_type);
  if (!key.ok()) return key.status();
  crypto::X509NamePtr subject(X509_NAME_new());
  if (subject == nullptr) return OpenSslError(absl::StatusCode::kInternal, "subject");
  const std::string ou =
      options.organizational_unit_override.value_or(std::string(RoleName(options.role)));
  if (absl::Status s = AddNameEntry(subject.get(), "O", kOrganization); !s.ok()) return s;
  if (!ou.empty()) {
    if (absl::Status s = AddNameEntry(subject.get(), "OU", ou); !s.ok()) return s;
  }
  if (!options.common_name.empty()) {
    if (absl::Status s = AddNameEntry(subject.get(), "CN", options.common_name); !s.ok()) {
      return s;
    }
  }
  absl::StatusOr<crypto::X509Ptr> cert =
      NewCertificate(key->get(), subject.get(), X509_get_subject_name(ca.cert.get()),
                     options.not_before_offset_seconds, options.not_after_offset_seconds);
  if (!cert.ok()) return cert.status();
  X509* c = cert->get();
  const bool rsa = options.key_type != KeyType::kEcdsaP256;
  if (absl::Status s = AddExtension(c, ca.cert.get(), NID_basic_constraints, "critical,CA:FALSE");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = AddExtension(
          c, ca.cert.get(), NID_key_usage,
          rsa ? "critical,digitalSignature,keyEncipherment" : "critical,digitalSignature");
      !s.ok()) {
    return s;
  }
  if (options.server_auth || options.client_auth) {
    const char* usage = options.server_auth && options.client_auth ? "serverAuth,clientAuth"
                        : options.server_auth                      ? "serverAuth"
                                                                   : "clientAuth";
    if (absl::Status s = AddExtension(c, ca.cert.get(), NID_ext_key_usage, usage); !s.ok()) {
      return s;
    }
  }
  if (absl::Status s = AddExtension(c, ca.cert.get(), NID_subject_key_identifier, "hash");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = AddExtension(c, ca.cert.get(), NID_authority_key_identifier, "keyid:always");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = AddSubjectAltNames(c, options); !s.ok()) return s;
  if (absl::Status s = Sign(c, ca.key.get()); !s.ok()) return s;
  return KeyAndCertificate{*std::move(key), *std::move(cert)};
}

absl::Status WritePemFiles(const KeyAndCertificate& pair, const std::string& cert_path,
                           const std::string& key_path) {
  std::string key_pem = crypto::PrivateKeyToPem(pair.key.get());
  absl::Status written = io::WriteFileAtomically(key_path, key_pem, 0600);
  crypto::WipeString(key_pem);
  if (!written.ok()) return written;
  return io::WriteFileAtomically(cert_path, crypto::CertificateToPem(pair.cert.get()), 0644);
}

absl::StatusOr<KeyAndCertificate> ReadPemFiles(const std::string& cert_path,
                                               const std::string& key_path) {
  auto cert_pem = io::ReadFile(cert_path);
  if (!cert_pem.ok()) return cert_pem.status();
  auto certs = crypto::CertificatesFromPem(*cert_pem, cert_path);
  if (!certs.ok()) return certs.status();
  std::string key_pem;
  {
    auto read = io::ReadFile(key_path);
    if (!read.ok()) return read.status();
    key_pem = *std::move(read);
  }
  auto key = crypto::PrivateKeyFromPem(key_pem, key_path);
  crypto::WipeString(key_pem);
  if (!key.ok()) return key.status();
  if (X509_check_private_key(certs->front().get(), key->get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat(key_path, ": not the private key of the certificate in ", cert_path));
  }
  KeyAndCertificate pair;
  pair.key = *std::move(key);
  pair.cert = std::move(certs->front());
  return pair;
}

}  // namespace fedcustoms::pki
