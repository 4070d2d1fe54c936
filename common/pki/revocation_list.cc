#include "common/pki/revocation_list.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <ctime>

#include "absl/strings/str_cat.h"
#include "common/crypto/openssl_ptr.h"
#include "common/crypto/pem.h"
#include "common/io/atomic_file.h"
#include "common/pki/certificate_chain.h"

namespace fedcustoms::pki {
namespace {

using CrlPtr = std::unique_ptr<X509_CRL, crypto::OpenSslDeleter<X509_CRL_free>>;
using RevokedPtr = std::unique_ptr<X509_REVOKED, crypto::OpenSslDeleter<X509_REVOKED_free>>;
using Asn1TimePtr = std::unique_ptr<ASN1_TIME, crypto::OpenSslDeleter<ASN1_TIME_free>>;

// "2026-11-30 23:50:00 UTC", or "an unreadable time".
std::string TimeText(const ASN1_TIME* t) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return "an unreadable time";
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S UTC", &tm);
  return text;
}

std::string SerialHex(const ASN1_INTEGER* serial) {
  crypto::BigNumPtr bn(ASN1_INTEGER_to_BN(serial, nullptr));
  if (bn == nullptr) return "?";
  char* hex = BN_bn2hex(bn.get());
  std::string out = hex != nullptr ? hex : "?";
  OPENSSL_free(hex);
  return out;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const RevocationList>> RevocationList::Load(
    const std::string& crl_path, const std::string& ca_cert_path) {
  auto pem = io::ReadFile(crl_path);
  if (!pem.ok()) return pem.status();
  auto ca_pem = io::ReadFile(ca_cert_path);
  if (!ca_pem.ok()) return ca_pem.status();
  auto cas = crypto::CertificatesFromPem(*ca_pem, ca_cert_path);
  if (!cas.ok()) return cas.status();
  return Parse(*pem, crl_path, *cas, ca_cert_path);
}

absl::StatusOr<std::shared_ptr<const RevocationList>> RevocationList::Parse(
    std::string_view pem, const std::string& crl_path, const std::vector<crypto::X509Ptr>& cas,
    const std::string& ca_cert_path) {
  auto bad = [&](auto&&... parts) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(crl_path, ": ", parts...));
  };
  if (pem.size() > (1 << 24)) return bad("larger than 16 MiB");
  crypto::BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  CrlPtr crl(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
  if (crl == nullptr) return bad("not a PEM X.509 CRL (-----BEGIN X509 CRL-----)");
  const X509* issuer = nullptr;
  for (const crypto::X509Ptr& ca : cas) {
    if (X509_NAME_cmp(X509_CRL_get_issuer(crl.get()), X509_get_subject_name(ca.get())) == 0) {
      issuer = ca.get();
      break;
    }
  }
  if (issuer == nullptr) {
    return bad("issued by a CA that is not in ", ca_cert_path);
  }
  EVP_PKEY* issuer_key = X509_get0_pubkey(issuer);
  if (issuer_key == nullptr || X509_CRL_verify(crl.get(), issuer_key) != 1) {
    return bad("signature does not verify with the CA in ", ca_cert_path);
  }
  if (const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl.get());
      next != nullptr && X509_cmp_current_time(next) <= 0) {
    return bad("stale: its next update was due ", TimeText(next),
               " (ask the CA for a current list)");
  }
  // OpenSSL sorts the entries on the first lookup; do it now, before the
  // list is shared between the server's threads.
  X509_REVOKED* ignored = nullptr;
  crypto::Asn1IntegerPtr zero(ASN1_INTEGER_new());
  if (zero != nullptr) X509_CRL_get0_by_serial(crl.get(), &ignored, zero.get());
  ERR_clear_error();
  return std::shared_ptr<const RevocationList>(new RevocationList(crl.release(), crl_path));
}

RevocationList::~RevocationList() { X509_CRL_free(crl_); }

absl::Status RevocationList::Check(std::string_view cert_pem) const {
  auto certs = crypto::CertificatesFromPem(cert_pem, "peer certificate");
  if (!certs.ok()) return certs.status();
  X509* cert = certs->front().get();
  X509_REVOKED* revoked = nullptr;
  if (X509_CRL_get0_by_cert(crl_, &revoked, cert) != 1) {
    ERR_clear_error();
    return absl::OkStatus();
  }
  return absl::UnauthenticatedError(absl::StrCat(
      "certificate serial ", SerialHex(X509_get0_serialNumber(cert)), " (", SubjectOf(cert),
      ") was revoked on ", TimeText(X509_REVOKED_get0_revocationDate(revoked)), " (", path_, ")"));
}

bool RevocationList::IssuedAfter(const RevocationList& other) const {
  const ASN1_TIME* mine = X509_CRL_get0_lastUpdate(crl_);
  const ASN1_TIME* theirs = X509_CRL_get0_lastUpdate(other.crl_);
  int day = 0, sec = 0;
  if (mine == nullptr || theirs == nullptr || ASN1_TIME_diff(&day, &sec, theirs, mine) != 1) {
    return false;
  }
  return day > 0 || sec > 0;
}

size_t RevocationList::size() const {
  const STACK_OF(X509_REVOKED)* list = X509_CRL_get_REVOKED(crl_);
  return list == nullptr ? 0 : static_cast<size_t>(sk_X509_REVOKED_num(list));
}

std::string RevocationList::StaleSince() const {
  const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl_);
  if (next == nullptr || X509_cmp_current_time(next) > 0) return "";
  return TimeText(next);
}

absl::StatusOr<std::string> MakeRevocationListPem(const KeyAndCertificate& ca,
                                                  const std::vector<X509*>& revoked,
                                                  std::chrono::seconds next_update) {
  auto failed = [](const char* what) {
    ERR_clear_error();
    return absl::InternalError(absl::StrCat("making the CRL: ", what, " failed"));
  };
  CrlPtr crl(X509_CRL_new());
  Asn1TimePtr now(ASN1_TIME_set(nullptr, std::time(nullptr)));
  Asn1TimePtr next(X509_time_adj_ex(nullptr, 0, static_cast<long>(next_update.count()), nullptr));
  if (crl == nullptr || now == nullptr || next == nullptr) return failed("allocation");
  if (X509_CRL_set_version(crl.get(), 1) != 1 ||  // v2
      X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca.cert.get())) != 1 ||
      X509_CRL_set1_lastUpdate(crl.get(), now.get()) != 1 ||
      X509_CRL_set1_nextUpdate(crl.get(), next.get()) != 1) {
    return failed("setting issuer and dates");
  }
  for (X509* cert : revoked) {
    RevokedPtr entry(X509_REVOKED_new());
    if (entry == nullptr ||
        // Copied, not kept (OpenSSL's API only lacks the const).
        X509_REVOKED_set_serialNumber(
            entry.get(), const_cast<ASN1_INTEGER*>(X509_get0_serialNumber(cert))) != 1 ||
        X509_REVOKED_set_revocationDate(entry.get(), now.get()) != 1 ||
        X509_CRL_add0_revoked(crl.get(), entry.get()) != 1) {
      return failed("adding a revoked certificate");
    }
    entry.release();  // owned by the CRL now
  }
  if (X509_CRL_sort(crl.get()) != 1 || X509_CRL_sign(crl.get(), ca.key.get(), EVP_sha256()) <= 0) {
    return failed("signing");
  }
  crypto::BioPtr out(BIO_new(BIO_s_mem()));
  if (out == nullptr || PEM_write_bio_X509_CRL(out.get(), crl.get()) != 1) {
    return failed("writing PEM");
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(out.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

}  // namespace fedcustoms::pki
