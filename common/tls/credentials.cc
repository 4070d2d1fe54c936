#include "common/tls/credentials.h"

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/support/channel_arguments.h>
#include <openssl/err.h>
#include <openssl/x509_vfy.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/crypto/openssl_error.h"
#include "common/crypto/openssl_ptr.h"
#include "common/crypto/pem.h"
#include "common/io/atomic_file.h"
#include "common/pki/certificate_chain.h"

namespace fedcustoms::tls {
namespace {

// The PEM texts of one identity, checked. Wipes the private key on destruction.
struct TlsPem {
  std::string ca;
  std::string cert;
  std::string key;
  TlsPem() = default;
  TlsPem(const TlsPem&) = delete;
  TlsPem& operator=(const TlsPem&) = delete;
  ~TlsPem() { crypto::WipeString(key); }
};

absl::StatusOr<std::string> ReadField(const std::string& path, const char* field) {
  if (path.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("tls.", field, " is not set"));
  }
  return io::ReadFile(path);
}

absl::Status CheckKeyStrength(const EVP_PKEY* key, const std::string& path) {
  const std::string type = crypto::KeyTypeName(key);
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_ED25519:
      return absl::OkStatus();
    case EVP_PKEY_RSA:
      if (EVP_PKEY_get_bits(key) >= 2048) return absl::OkStatus();
      break;
    case EVP_PKEY_EC:
      if (type == "EC P-256" || type == "EC P-384" || type == "EC P-521") return absl::OkStatus();
      break;
    default:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      path, ": ", type,
      " keys are not accepted (use ECDSA P-256/P-384/P-521, Ed25519 or RSA of 2048+ bits)"));
}

void WarnIfKeyExposed(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    spdlog::warn("{}: private key is readable by group or others (mode {:o}); chmod 600 it", path,
                 st.st_mode & 0777);
  }
}

// Reads and checks the files for a server (`purpose` X509_PURPOSE_SSL_SERVER)
// or a client (X509_PURPOSE_SSL_CLIENT).
absl::Status LoadAndCheck(const v1::TlsFiles& files, int purpose, TlsPem& out) {
  absl::StatusOr<std::string> ca = ReadField(files.ca_cert(), "ca_cert");
  if (!ca.ok()) return ca.status();
  absl::StatusOr<std::string> cert = ReadField(files.cert(), "cert");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadField(files.key(), "key");
  if (!key.ok()) return key.status();
  out.ca = *std::move(ca);
  out.cert = *std::move(cert);
  out.key = *std::move(key);

  absl::StatusOr<std::vector<crypto::X509Ptr>> cas =
      crypto::CertificatesFromPem(out.ca, files.ca_cert());
  if (!cas.ok()) return cas.status();
  for (const crypto::X509Ptr& c : *cas) {
    if (X509_check_ca(c.get()) < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(files.ca_cert(), ": certificate ", pki::SubjectOf(c.get()), " is not a CA"));
    }
  }
  absl::StatusOr<std::vector<crypto::X509Ptr>> chain =
      crypto::CertificatesFromPem(out.cert, files.cert());
  if (!chain.ok()) return chain.status();
  absl::StatusOr<crypto::EvpPkeyPtr> private_key = crypto::PrivateKeyFromPem(out.key, files.key());
  if (!private_key.ok()) return private_key.status();
  if (absl::Status s = CheckKeyStrength(private_key->get(), files.key()); !s.ok()) return s;
  if (X509_check_private_key(chain->front().get(), private_key->get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat(files.key(), ": private key does not match the certificate ",
                     pki::SubjectOf(chain->front().get()), " in ", files.cert()));
  }
  WarnIfKeyExposed(files.key());
  if (absl::Status s = pki::VerifyCertificateChain(*cas, *chain, purpose, files.ca_cert());
      !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(files.cert(), ": ", s.message()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const v1::TlsFiles& files) {
  TlsPem pem;
  if (absl::Status s = LoadAndCheck(files, X509_PURPOSE_SSL_SERVER, pem); !s.ok()) return s;
  grpc::SslServerCredentialsOptions options(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = pem.ca;
  options.pem_key_cert_pairs.push_back({pem.key, pem.cert});
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::SslServerCredentials(options);
  crypto::WipeString(options.pem_key_cert_pairs.front().private_key);
  if (credentials == nullptr) {
    return absl::InternalError(absl::StrCat(files.cert(), ": gRPC refused the server credentials"));
  }
  return credentials;
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const v1::TlsFiles& files) {
  TlsPem pem;
  if (absl::Status s = LoadAndCheck(files, X509_PURPOSE_SSL_CLIENT, pem); !s.ok()) return s;
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = pem.ca;
  options.pem_private_key = pem.key;
  options.pem_cert_chain = pem.cert;
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::SslCredentials(options);
  crypto::WipeString(options.pem_private_key);
  if (credentials == nullptr) {
    return absl::InternalError(
        absl::StrCat(files.cert(), ": gRPC refused the channel credentials"));
  }
  return credentials;
}

grpc::ChannelArguments DefaultChannelArguments() {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  args.SetInt(GRPC_ARG_HTTP2_MAX_FRAME_SIZE, kHttp2MaxFrameBytes);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, kHttp2StreamLookaheadBytes);
  return args;
}

void ApplyServerArguments(grpc::ServerBuilder& builder) {
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_FRAME_SIZE, kHttp2MaxFrameBytes);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, kHttp2StreamLookaheadBytes);
}

}  // namespace fedcustoms::tls
