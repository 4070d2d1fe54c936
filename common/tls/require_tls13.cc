#include "common/tls/require_tls13.h"

#include <openssl/conf.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "absl/strings/str_cat.h"
#include "common/crypto/openssl_error.h"
#include "common/crypto/openssl_ptr.h"

namespace fedcustoms::tls {
namespace {

constexpr char kConfig[] = R"(openssl_conf = fedcustoms_tls13_init

[fedcustoms_tls13_init]
ssl_conf = fedcustoms_tls13_ssl

[fedcustoms_tls13_ssl]
system_default = fedcustoms_tls13_system_default

[fedcustoms_tls13_system_default]
MinProtocol = TLSv1.3
Protocol = -ALL, TLSv1.3
)";

absl::Status Failed(const std::string& what) {
  return crypto::OpenSslError(absl::StatusCode::kFailedPrecondition,
                              absl::StrCat("cannot restrict TLS to version 1.3: ", what));
}

// Checks what a freshly created context, as gRPC creates them, allows.
absl::Status Probe() {
  crypto::SslCtxPtr ctx(SSL_CTX_new(TLS_method()));
  if (ctx == nullptr) return Failed("probe SSL_CTX_new");
  // gRPC does this to every context it creates; TLS 1.2 must stay refused anyway.
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  const uint64_t options = SSL_CTX_get_options(ctx.get());
  const uint64_t old_versions =
      SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1 | SSL_OP_NO_TLSv1_2;
  if ((options & old_versions) != old_versions || (options & SSL_OP_NO_TLSv1_3) != 0) {
    return absl::FailedPreconditionError(
        "cannot restrict TLS to version 1.3: the OpenSSL system_default configuration did not "
        "take effect on a new SSL_CTX");
  }
  return absl::OkStatus();
}

absl::Status Apply() {
  // Load the system configuration first, so that it cannot be loaded later
  // over ours (OpenSSL loads it at most once per process).
  if (OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG, nullptr) != 1) {
    return Failed("OpenSSL initialization");
  }
  crypto::ConfPtr conf(NCONF_new(nullptr));
  crypto::BioPtr bio(BIO_new_mem_buf(kConfig, static_cast<int>(sizeof(kConfig) - 1)));
  if (conf == nullptr || bio == nullptr) return Failed("allocation");
  long error_line = 0;
  if (NCONF_load_bio(conf.get(), bio.get(), &error_line) != 1) {
    return Failed(absl::StrCat("built-in configuration, line ", error_line));
  }
  if (CONF_modules_load(conf.get(), nullptr, 0) <= 0) return Failed("CONF_modules_load");
  return Probe();
}

}  // namespace

absl::Status RequireTls13() {
  static const absl::Status* const status = new absl::Status(Apply());
  return *status;
}

}  // namespace fedcustoms::tls
