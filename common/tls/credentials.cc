#include "common/tls/credentials.h"

#include <arpa/inet.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/support/channel_arguments.h>
#include <openssl/err.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
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
#include "common/pki/peer_identity.h"
#include "common/tls/peer_certificate_verifier.h"

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

// The host part of a channel target: "host:port", "[v6]:port", "host" or a
// bare IPv6 address.
std::string HostOf(std::string_view target) {
  if (!target.empty() && target.front() == '[') {
    const size_t close = target.find(']');
    return std::string(target.substr(1, close == std::string_view::npos ? target.npos : close - 1));
  }
  const size_t colon = target.find(':');
  if (colon != std::string_view::npos && target.find(':', colon + 1) == std::string_view::npos) {
    return std::string(target.substr(0, colon));
  }
  return std::string(target);
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
    const v1::TlsFiles& files, PeerCertificateCheck check_client) {
  if (absl::Status s = RequireTls13(); !s.ok()) return s;
  TlsPem pem;
  if (absl::Status s = LoadAndCheck(files, X509_PURPOSE_SSL_SERVER, pem); !s.ok()) return s;
  auto provider = std::make_shared<grpc::experimental::StaticDataCertificateProvider>(
      pem.ca, std::vector<grpc::experimental::IdentityKeyCertPair>{{pem.key, pem.cert}});
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  if (check_client) {
    options.set_certificate_verifier(
        grpc::experimental::ExternalCertificateVerifier::Create<PeerCertificateVerifier>(
            "server", std::move(check_client)));
  }
  std::shared_ptr<grpc::ServerCredentials> credentials =
      grpc::experimental::TlsServerCredentials(options);
  if (credentials == nullptr) {
    return absl::InternalError(absl::StrCat(files.cert(), ": gRPC refused the server credentials"));
  }
  return credentials;
}

absl::Status CheckCoordinatorCertificate(std::string_view leaf_pem, std::string_view target_name) {
  absl::StatusOr<std::vector<crypto::X509Ptr>> certs =
      crypto::CertificatesFromPem(leaf_pem, "the server's certificate");
  if (!certs.ok()) return certs.status();
  X509* leaf = certs->front().get();
  absl::StatusOr<pki::PeerIdentity> identity =
      pki::PeerIdentityFromCertificate(leaf, "the server's certificate");
  if (!identity.ok()) return absl::UnauthenticatedError(identity.status().message());
  if (identity->role != pki::Role::kCoordinator) {
    return absl::UnauthenticatedError(
        absl::StrCat("the server's certificate ", pki::SubjectOf(leaf), " has role '",
                     pki::RoleName(identity->role),
                     "', not 'coordinator': it is not the federation's coordinator"));
  }
  const std::string host = HostOf(target_name);
  if (host.empty()) {
    return absl::UnauthenticatedError(absl::StrCat("no host name in the target \"",
                                                   std::string(target_name),
                                                   "\" to check the server's certificate against"));
  }
  // An IP literal matches only an IP subjectAltName; a name only a DNS one,
  // never the subject CN, and no partial wildcards.
  in6_addr ignored{};
  const bool is_ip = ::inet_pton(AF_INET, host.c_str(), &ignored) == 1 ||
                     ::inet_pton(AF_INET6, host.c_str(), &ignored) == 1;
  const bool matches = is_ip ? X509_check_ip_asc(leaf, host.c_str(), 0) == 1
                             : X509_check_host(leaf, host.data(), host.size(),
                                               X509_CHECK_FLAG_NEVER_CHECK_SUBJECT |
                                                   X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS,
                                               nullptr) == 1;
  ERR_clear_error();
  if (!matches) {
    return absl::UnauthenticatedError(absl::StrCat("the server's certificate ",
                                                   pki::SubjectOf(leaf), " does not name ", host,
                                                   " (the address dialled)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const v1::TlsFiles& files) {
  if (absl::Status s = RequireTls13(); !s.ok()) return s;
  TlsPem pem;
  if (absl::Status s = LoadAndCheck(files, X509_PURPOSE_SSL_CLIENT, pem); !s.ok()) return s;
  auto provider = std::make_shared<grpc::experimental::StaticDataCertificateProvider>(
      pem.ca, std::vector<grpc::experimental::IdentityKeyCertPair>{{pem.key, pem.cert}});
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_verify_server_certs(true);
  // Replaces gRPC's hostname verifier, so the hostname is checked in ours.
  options.set_certificate_verifier(
      grpc::experimental::ExternalCertificateVerifier::Create<PeerCertificateVerifier>(
          "client", CheckCoordinatorCertificate));
  std::shared_ptr<grpc::ChannelCredentials> credentials =
      grpc::experimental::TlsCredentials(options);
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
