#include "common/pki/certificate_chain.h"

#include <openssl/err.h>
#include <openssl/x509_vfy.h>

#include "absl/strings/str_cat.h"
#include "common/crypto/openssl_error.h"

namespace fedcustoms::pki {

std::string SubjectOf(X509* cert) {
  crypto::OpenSslMallocPtr<char> line(X509_NAME_oneline(X509_get_subject_name(cert), nullptr, 0));
  return line != nullptr ? std::string(line.get()) : "(no subject)";
}

absl::Status VerifyCertificateChain(const std::vector<crypto::X509Ptr>& cas,
                                    const std::vector<crypto::X509Ptr>& chain, int purpose,
                                    const std::string& cas_name) {
  if (chain.empty()) return absl::InvalidArgumentError("no certificate to verify");
  crypto::X509StorePtr store(X509_STORE_new());
  crypto::X509StackPtr intermediates(sk_X509_new_null());
  crypto::X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (store == nullptr || intermediates == nullptr || ctx == nullptr) {
    return crypto::OpenSslError(absl::StatusCode::kInternal, "certificate store");
  }
  for (const crypto::X509Ptr& ca : cas) {
    if (X509_STORE_add_cert(store.get(), ca.get()) != 1) {
      return crypto::OpenSslError(absl::StatusCode::kInvalidArgument, cas_name);
    }
  }
  for (size_t i = 1; i < chain.size(); ++i) {
    // The stack takes its own reference (freed by sk_X509_pop_free).
    if (X509_up_ref(chain[i].get()) != 1 ||
        sk_X509_push(intermediates.get(), chain[i].get()) <= 0) {
      return crypto::OpenSslError(absl::StatusCode::kInternal, "certificate chain");
    }
  }
  if (X509_STORE_CTX_init(ctx.get(), store.get(), chain.front().get(), intermediates.get()) != 1 ||
      X509_STORE_CTX_set_purpose(ctx.get(), purpose) != 1) {
    return crypto::OpenSslError(absl::StatusCode::kInternal, "certificate verification setup");
  }
  if (X509_verify_cert(ctx.get()) != 1) {
    const int error = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return absl::FailedPreconditionError(
        absl::StrCat("certificate ", SubjectOf(chain.front().get()), " does not verify against ",
                     cas_name, ": ", X509_verify_cert_error_string(error)));
  }
  return absl::OkStatus();
}

}  // namespace fedcustoms::pki
