// Mutual TLS over real loopback connections: a gRPC server built with
// tls::MakeServerCredentials() and clients with good and bad certificates.

#include <gmock/gmock.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/openssl_ptr.h"
#include "common/crypto/pem.h"
#include "common/io/atomic_file.h"
#include "common/pki/dev_pki.h"
#include "common/pki/peer_identity.h"
#include "common/tls/credentials.h"

namespace fedcustoms::tls {
namespace {

namespace fs = std::filesystem;

constexpr char kWhoAmI[] = "/fedcustoms.test.Echo/WhoAmI";
constexpr char kHealthCheck[] = "/grpc.health.v1.Health/Check";

std::string MakeTempDir() {
  std::string pattern = testing::TempDir() + "fedcustoms-tls-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) return "";
  return pattern;
}

v1::TlsFiles Files(const std::string& ca, const std::string& stem) {
  v1::TlsFiles files;
  files.set_ca_cert(ca);
  files.set_cert(stem + ".pem");
  files.set_key(stem + ".key");
  return files;
}

pki::KeyAndCertificate LoadPair(const std::string& stem) {
  absl::StatusOr<std::string> cert = io::ReadFile(stem + ".pem");
  absl::StatusOr<std::string> key = io::ReadFile(stem + ".key");
  EXPECT_TRUE(cert.ok() && key.ok());
  auto certs = crypto::CertificatesFromPem(*cert, stem + ".pem");
  auto private_key = crypto::PrivateKeyFromPem(*key, stem + ".key");
  EXPECT_TRUE(certs.ok() && private_key.ok());
  return pki::KeyAndCertificate{*std::move(private_key), std::move(certs->front())};
}

void Issue(const pki::KeyAndCertificate& ca, const pki::IssueOptions& options,
           const std::string& stem) {
  absl::StatusOr<pki::KeyAndCertificate> pair = pki::IssueCertificate(ca, options);
  ASSERT_TRUE(pair.ok()) << pair.status();
  ASSERT_TRUE(pki::WritePemFiles(*pair, stem + ".pem", stem + ".key").ok());
}

pki::IssueOptions NodeOptions(const std::string& code) {
  pki::IssueOptions options;
  options.common_name = code;
  options.role = pki::Role::kNode;
  return options;
}

// Client credentials straight from the files, without MakeChannelCredentials'
// checks, so that the server's refusal is what gets tested.
std::shared_ptr<grpc::ChannelCredentials> RawClientCredentials(const v1::TlsFiles& files) {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = *io::ReadFile(files.ca_cert());
  options.pem_cert_chain = *io::ReadFile(files.cert());
  options.pem_private_key = *io::ReadFile(files.key());
  return grpc::SslCredentials(options);
}

// Answers any method other than the health service with "<CN>/<role>" of the
// caller, as pki::PeerIdentityFromContext reads it.
class IdentityEchoService final : public grpc::CallbackGenericService {
 public:
  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* context) override {
    calls_.fetch_add(1);
    return new Reactor(context);
  }
  int calls() const { return calls_.load(); }

 private:
  class Reactor final : public grpc::ServerGenericBidiReactor {
   public:
    explicit Reactor(grpc::GenericCallbackServerContext* context) {
      absl::StatusOr<pki::PeerIdentity> peer = pki::PeerIdentityFromContext(*context);
      if (!peer.ok()) {
        Finish(
            grpc::Status(grpc::StatusCode::UNAUTHENTICATED, std::string(peer.status().message())));
        return;
      }
      const std::string text = absl::StrCat(peer->common_name, "/", pki::RoleName(peer->role));
      grpc::Slice slice(text);
      response_ = grpc::ByteBuffer(&slice, 1);
      StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
    }
    void OnDone() override { delete this; }

   private:
    grpc::ByteBuffer response_;
  };

  std::atomic<int> calls_{0};
};

struct RunningServer {
  std::unique_ptr<IdentityEchoService> service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
};

RunningServer StartServer(std::shared_ptr<grpc::ServerCredentials> credentials) {
  RunningServer running;
  running.service = std::make_unique<IdentityEchoService>();
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", credentials, &running.port);
  builder.RegisterCallbackGenericService(running.service.get());
  running.server = builder.BuildAndStart();
  return running;
}

struct CallResult {
  grpc::Status status;
  std::string response;
};

CallResult Call(const std::string& target, std::shared_ptr<grpc::ChannelCredentials> credentials,
                const std::string& method) {
  grpc::ChannelArguments args = DefaultChannelArguments();
  // Each test's connection attempt stands alone.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  grpc::GenericStub stub(grpc::CreateCustomChannel(target, credentials, args));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::ByteBuffer request;
  grpc::ByteBuffer response;
  std::promise<grpc::Status> done;
  grpc::Slice empty("");
  request = grpc::ByteBuffer(&empty, 1);
  stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response,
                 [&done](grpc::Status status) { done.set_value(std::move(status)); });
  CallResult result;
  result.status = done.get_future().get();
  std::vector<grpc::Slice> slices;
  if (result.status.ok() && response.Dump(&slices).ok()) {
    for (const grpc::Slice& s : slices) {
      result.response.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
  }
  return result;
}

// Runs `command` through the shell; returns its exit status and combined output.
std::pair<int, std::string> RunCommand(const std::string& command) {
  std::string output;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  char buffer[4096];
  while (size_t n = std::fread(buffer, 1, sizeof(buffer), pipe)) output.append(buffer, n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

class TlsTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(RequireTls13().ok());
    root_ = new std::string(MakeTempDir());
    ASSERT_FALSE(root_->empty());
    pki::DevPkiOptions options;
    options.dir = Dir();
    options.admins = {"EE", "FI"};
    absl::Status init = pki::InitDevPki(options);
    ASSERT_TRUE(init.ok()) << init;

    const pki::KeyAndCertificate ca = LoadPair(Dir() + "/ca");
    absl::StatusOr<pki::KeyAndCertificate> other_ca =
        pki::GenerateCa("another CA", std::chrono::hours(24));
    ASSERT_TRUE(other_ca.ok());
    ASSERT_TRUE(
        pki::WritePemFiles(*other_ca, Dir() + "/other-ca.pem", Dir() + "/other-ca.key").ok());
    Issue(*other_ca, NodeOptions("EE"), Dir() + "/other-ca-EE");
    pki::IssueOptions expired = NodeOptions("EE");
    expired.not_before_offset_seconds = -2 * 86400;
    expired.not_after_offset_seconds = -86400;
    Issue(ca, expired, Dir() + "/expired-EE");
    pki::IssueOptions future = NodeOptions("EE");
    future.not_before_offset_seconds = 86400;
    future.not_after_offset_seconds = 2 * 86400;
    Issue(ca, future, Dir() + "/future-EE");
    pki::IssueOptions server_only = NodeOptions("EE");
    server_only.server_auth = true;
    server_only.client_auth = false;
    Issue(ca, server_only, Dir() + "/server-usage-EE");
    pki::IssueOptions weak = NodeOptions("EE");
    weak.key_type = pki::KeyType::kRsa1024;
    Issue(ca, weak, Dir() + "/weak-EE");
    pki::IssueOptions elsewhere;
    elsewhere.common_name = "coordinator";
    elsewhere.role = pki::Role::kCoordinator;
    elsewhere.dns_names = {"elsewhere.example"};
    elsewhere.server_auth = true;
    Issue(ca, elsewhere, Dir() + "/elsewhere");
    // A node's certificate from our own CA, with server usage and the right
    // names: all a node would need to pose as the coordinator, but the role.
    pki::IssueOptions node_server = NodeOptions("EE");
    node_server.server_auth = true;
    node_server.dns_names = {"localhost"};
    node_server.ip_addresses = {"127.0.0.1"};
    Issue(ca, node_server, Dir() + "/node-as-server");
    pki::IssueOptions rogue_server = elsewhere;
    rogue_server.dns_names = {"localhost"};
    rogue_server.ip_addresses = {"127.0.0.1"};
    Issue(*other_ca, rogue_server, Dir() + "/other-ca-coordinator");
  }

  static void TearDownTestSuite() {
    std::error_code ignored;
    if (root_ != nullptr && !root_->empty()) fs::remove_all(*root_, ignored);
    delete root_;
    root_ = nullptr;
  }

  void SetUp() override {
    absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
        MakeServerCredentials(Identity("coordinator"));
    ASSERT_TRUE(credentials.ok()) << credentials.status();
    server_ = StartServer(*credentials);
    ASSERT_NE(server_.server, nullptr);
    ASSERT_GT(server_.port, 0);
  }

  void TearDown() override {
    if (server_.server != nullptr) server_.server->Shutdown();
  }

  static std::string Dir() { return *root_; }
  static std::string Ca() { return Dir() + "/ca.pem"; }
  static v1::TlsFiles Identity(const std::string& stem) { return Files(Ca(), Dir() + "/" + stem); }
  std::string Target() const { return absl::StrCat("127.0.0.1:", server_.port); }

  std::shared_ptr<grpc::ChannelCredentials> ClientCredentials(const std::string& stem) {
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
        MakeChannelCredentials(Identity(stem));
    EXPECT_TRUE(credentials.ok()) << credentials.status();
    return credentials.ok() ? *credentials : nullptr;
  }

  // A client presenting `stem`'s certificate must not reach any handler.
  void ExpectRefused(const std::string& stem) {
    CallResult result = Call(Target(), RawClientCredentials(Identity(stem)), kWhoAmI);
    EXPECT_EQ(result.status.error_code(), grpc::StatusCode::UNAVAILABLE)
        << result.status.error_message();
    EXPECT_EQ(server_.service->calls(), 0);
  }

  static std::string* root_;
  RunningServer server_;
};

std::string* TlsTest::root_ = nullptr;

TEST_F(TlsTest, NodeCertificateIsAcceptedAndIdentityRead) {
  CallResult result = Call(Target(), ClientCredentials("EE"), kWhoAmI);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_EQ(result.response, "EE/node");
}

TEST_F(TlsTest, AnalystAndAdminRolesAreRead) {
  EXPECT_EQ(Call(Target(), ClientCredentials("analyst"), kWhoAmI).response, "analyst/analyst");
  EXPECT_EQ(Call(Target(), ClientCredentials("admin"), kWhoAmI).response, "admin/admin");
  EXPECT_EQ(Call(Target(), ClientCredentials("FI"), kWhoAmI).response, "FI/node");
}

TEST_F(TlsTest, HealthCheckAnswersServing) {
  CallResult result = Call(Target(), ClientCredentials("EE"), kHealthCheck);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  // HealthCheckResponse{status: SERVING}: field 1, varint 1.
  EXPECT_EQ(result.response, std::string("\x08\x01", 2));
}

TEST_F(TlsTest, ServerHostnameLocalhostIsAccepted) {
  CallResult result =
      Call(absl::StrCat("localhost:", server_.port), ClientCredentials("EE"), kWhoAmI);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_EQ(result.response, "EE/node");
}

// Tests of all the refusals follow.

TEST_F(TlsTest, RefusesClientCertificateFromAnotherCa) { ExpectRefused("other-ca-EE"); }

TEST_F(TlsTest, RefusesExpiredClientCertificate) { ExpectRefused("expired-EE"); }

TEST_F(TlsTest, RefusesNotYetValidClientCertificate) { ExpectRefused("future-EE"); }

TEST_F(TlsTest, RefusesClientCertificateWithoutClientAuthUsage) {
  ExpectRefused("server-usage-EE");
}

TEST_F(TlsTest, RefusesClientWithoutCertificate) {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = *io::ReadFile(Ca());
  CallResult result = Call(Target(), grpc::SslCredentials(options), kHealthCheck);
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsTest, RefusesPlaintextClient) {
  CallResult result = Call(Target(), grpc::InsecureChannelCredentials(), kHealthCheck);
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << result.status.error_message();
  EXPECT_EQ(server_.service->calls(), 0);
}

TEST_F(TlsTest, ClientRefusesServerFromAnotherCa) {
  auto credentials =
      MakeServerCredentials(Files(Dir() + "/other-ca.pem", Dir() + "/other-ca-coordinator"));
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  RunningServer rogue = StartServer(*credentials);
  CallResult result =
      Call(absl::StrCat("127.0.0.1:", rogue.port), ClientCredentials("EE"), kWhoAmI);
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(rogue.service->calls(), 0);
  rogue.server->Shutdown();
}

TEST_F(TlsTest, ClientRefusesServerWithWrongHostname) {
  auto credentials = MakeServerCredentials(Identity("elsewhere"));
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  RunningServer other = StartServer(*credentials);
  CallResult result =
      Call(absl::StrCat("127.0.0.1:", other.port), ClientCredentials("EE"), kWhoAmI);
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(other.service->calls(), 0);
  other.server->Shutdown();
}

// TLS 1.3 only, seen from outside: the openssl command-line client runs in a
// child process with an empty OpenSSL configuration (RequireTls13 loads its
// settings from memory, so they do not reach children) and offers exactly one
// version; the server must complete TLS 1.3 and turn TLS 1.2 away. (TLS 1.1
// and below are refused by OpenSSL 3's default security level anyway, on the
// client side too, so a test of them would prove nothing about the server.)
class TlsVersionTest : public TlsTest {
 protected:
  std::pair<int, std::string> SClient(const std::string& version_flag) {
    const std::string empty_conf = Dir() + "/empty-openssl.cnf";
    EXPECT_TRUE(io::WriteFileAtomically(empty_conf, "").ok());
    return RunCommand(absl::StrCat(
        "OPENSSL_CONF='", empty_conf, "' timeout 30 openssl s_client -connect 127.0.0.1:",
        server_.port, " ", version_flag, " -alpn h2 -CAfile '", Ca(), "' -cert '", Dir(),
        "/EE.pem' -key '", Dir(), "/EE.key' -verify_return_error < /dev/null"));
  }
};

TEST_F(TlsVersionTest, ServerAcceptsTls13Handshake) {
  auto [exit_code, output] = SClient("-tls1_3");
  EXPECT_EQ(exit_code, 0) << output;
  EXPECT_TRUE(absl::StrContains(output, "Protocol  : TLSv1.3") ||
              absl::StrContains(output, "New, TLSv1.3"))
      << output;
  EXPECT_TRUE(absl::StrContains(output, "Verify return code: 0 (ok)")) << output;
}

TEST_F(TlsVersionTest, ServerRefusesTls12Handshake) {
  auto [exit_code, output] = SClient("-tls1_2");
  EXPECT_NE(exit_code, 0) << output;
  // The server reads the TLS 1.2 ClientHello and hangs up without a ServerHello
  // (gRPC closes the socket rather than sending the protocol_version alert).
  // Without RequireTls13() the same command negotiates TLS 1.2 with gRPC 1.51.
  EXPECT_TRUE(absl::StrContains(output, "SSL handshake has read 0 bytes")) << output;
  EXPECT_TRUE(absl::StrContains(output, "Cipher is (NONE)")) << output;
  EXPECT_FALSE(absl::StrContains(output, "New, TLSv1.2")) << output;
}

TEST(TlsRequireTls13, NewContextsRefuseOlderVersionsEvenAfterGrpcSetsItsMinimum) {
  ASSERT_TRUE(RequireTls13().ok());
  crypto::SslCtxPtr ctx(SSL_CTX_new(TLS_method()));
  ASSERT_NE(ctx, nullptr);
  EXPECT_EQ(SSL_CTX_get_min_proto_version(ctx.get()), TLS1_3_VERSION);
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);  // what gRPC 1.51 does
  EXPECT_NE(SSL_CTX_get_options(ctx.get()) & SSL_OP_NO_TLSv1_2, 0u);
  EXPECT_EQ(SSL_CTX_get_options(ctx.get()) & SSL_OP_NO_TLSv1_3, 0u);
}

TEST(TlsRequireTls13, IsIdempotent) {
  EXPECT_TRUE(RequireTls13().ok());
  EXPECT_TRUE(RequireTls13().ok());
}

TEST_F(TlsTest, ClientRefusesServerWithoutTheCoordinatorRole) {
  auto credentials = MakeServerCredentials(Identity("node-as-server"));
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  RunningServer impostor = StartServer(*credentials);
  CallResult result =
      Call(absl::StrCat("127.0.0.1:", impostor.port), ClientCredentials("EE"), kWhoAmI);
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(impostor.service->calls(), 0);
  impostor.server->Shutdown();
}

TEST_F(TlsTest, CoordinatorCheckNamesWhatIsWrong) {
  auto pem = [](const std::string& stem) {
    absl::StatusOr<std::string> text = io::ReadFile(Dir() + "/" + stem + ".pem");
    EXPECT_TRUE(text.ok()) << text.status();
    return text.ok() ? *text : std::string();
  };
  EXPECT_TRUE(CheckCoordinatorCertificate(pem("coordinator"), "localhost:7000").ok());
  EXPECT_TRUE(CheckCoordinatorCertificate(pem("coordinator"), "127.0.0.1:7000").ok());
  EXPECT_TRUE(CheckCoordinatorCertificate(pem("coordinator"), "127.0.0.1").ok());
  absl::Status role = CheckCoordinatorCertificate(pem("node-as-server"), "localhost:7000");
  EXPECT_EQ(role.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(role.message()),
              ::testing::HasSubstr("has role 'node', not 'coordinator'"));
  absl::Status host = CheckCoordinatorCertificate(pem("elsewhere"), "127.0.0.1:7000");
  EXPECT_EQ(host.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(host.message()), ::testing::HasSubstr("does not name 127.0.0.1"));
  EXPECT_TRUE(CheckCoordinatorCertificate(pem("coordinator"), "[::1]:7000").ok());
  EXPECT_FALSE(CheckCoordinatorCertificate(pem("coordinator"), "example.org:7000").ok());
  EXPECT_FALSE(CheckCoordinatorCertificate("not a certificate", "localhost").ok());
  EXPECT_FALSE(CheckCoordinatorCertificate(pem("coordinator"), ":7000").ok());
  EXPECT_FALSE(CheckCoordinatorCertificate(pem("coordinator"), "").ok());
  // The subject CN ("coordinator") is not a name the certificate vouches for.
  EXPECT_FALSE(CheckCoordinatorCertificate(pem("coordinator"), "coordinator:7000").ok());
}

TEST_F(TlsTest, ServerCheckRefusesAClientAtTheHandshake) {
  // The coordinator's revocation check has this shape: refused here, the
  // client reaches no service, health checking included.
  auto credentials = MakeServerCredentials(
      Identity("coordinator"), [](std::string_view leaf_pem, std::string_view) -> absl::Status {
        absl::StatusOr<pki::PeerIdentity> peer = pki::PeerIdentityFromPem(leaf_pem);
        if (!peer.ok()) return peer.status();
        if (peer->common_name == "EE") return absl::UnauthenticatedError("EE is refused");
        return absl::OkStatus();
      });
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  RunningServer checked = StartServer(*credentials);
  const std::string target = absl::StrCat("127.0.0.1:", checked.port);
  EXPECT_EQ(Call(target, ClientCredentials("EE"), kHealthCheck).status.error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(Call(target, ClientCredentials("EE"), kWhoAmI).status.error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(checked.service->calls(), 0);
  CallResult fi = Call(target, ClientCredentials("FI"), kWhoAmI);
  EXPECT_TRUE(fi.status.ok()) << fi.status.error_message();
  EXPECT_TRUE(Call(target, ClientCredentials("FI"), kHealthCheck).status.ok());
  checked.server->Shutdown();
}

// Tests of the file checks follow: each names the offending path.

class TlsCredentialsTest : public TlsTest {
 protected:
  void SetUp() override {}
  void TearDown() override {}

  static void ExpectClientError(const v1::TlsFiles& files, absl::StatusCode code,
                                const std::string& needle) {
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
        MakeChannelCredentials(files);
    ASSERT_FALSE(credentials.ok());
    EXPECT_EQ(credentials.status().code(), code) << credentials.status();
    EXPECT_TRUE(absl::StrContains(credentials.status().message(), needle))
        << credentials.status() << "\nexpected to contain: " << needle;
  }
};

TEST_F(TlsCredentialsTest, AcceptsDevPkiIdentities) {
  EXPECT_TRUE(MakeServerCredentials(Identity("coordinator")).ok());
  for (const char* stem : {"EE", "FI", "analyst", "admin", "coordinator"}) {
    EXPECT_TRUE(MakeChannelCredentials(Identity(stem)).ok()) << stem;
  }
}

TEST_F(TlsCredentialsTest, RefusesUnsetPath) {
  v1::TlsFiles files = Identity("EE");
  files.clear_key();
  ExpectClientError(files, absl::StatusCode::kInvalidArgument, "tls.key is not set");
}

TEST_F(TlsCredentialsTest, RefusesMissingFileNamingIt) {
  v1::TlsFiles files = Identity("EE");
  files.set_cert(Dir() + "/missing.pem");
  ExpectClientError(files, absl::StatusCode::kNotFound, Dir() + "/missing.pem");
}

TEST_F(TlsCredentialsTest, RefusesFileThatIsNotPem) {
  const std::string path = Dir() + "/not-pem.txt";
  ASSERT_TRUE(io::WriteFileAtomically(path, "hello\n").ok());
  v1::TlsFiles files = Identity("EE");
  files.set_ca_cert(path);
  ExpectClientError(files, absl::StatusCode::kInvalidArgument, path + ": not PEM");
}

TEST_F(TlsCredentialsTest, RefusesKeyThatDoesNotMatchCertificate) {
  v1::TlsFiles files = Identity("EE");
  files.set_key(Dir() + "/FI.key");
  ExpectClientError(files, absl::StatusCode::kInvalidArgument,
                    Dir() + "/FI.key: private key does not match the certificate");
}

TEST_F(TlsCredentialsTest, RefusesCertificateAsKey) {
  v1::TlsFiles files = Identity("EE");
  files.set_key(Dir() + "/EE.pem");
  ExpectClientError(files, absl::StatusCode::kInvalidArgument, Dir() + "/EE.pem: no readable");
}

TEST_F(TlsCredentialsTest, RefusesCaFileHoldingALeafCertificate) {
  v1::TlsFiles files = Identity("EE");
  files.set_ca_cert(Dir() + "/FI.pem");
  ExpectClientError(files, absl::StatusCode::kInvalidArgument, "is not a CA");
}

TEST_F(TlsCredentialsTest, RefusesWeakRsaKey) {
  ExpectClientError(Identity("weak-EE"), absl::StatusCode::kInvalidArgument,
                    "RSA 1024 keys are not accepted");
}

TEST_F(TlsCredentialsTest, RefusesExpiredCertificateAtLoad) {
  ExpectClientError(Identity("expired-EE"), absl::StatusCode::kFailedPrecondition,
                    "certificate has expired");
}

TEST_F(TlsCredentialsTest, RefusesCertificateFromAnotherCaAtLoad) {
  ExpectClientError(Identity("other-ca-EE"), absl::StatusCode::kFailedPrecondition,
                    "does not verify against " + Ca());
}

TEST_F(TlsCredentialsTest, ServerRefusesClientOnlyCertificate) {
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      MakeServerCredentials(Identity("EE"));
  ASSERT_FALSE(credentials.ok());
  EXPECT_TRUE(absl::StrContains(credentials.status().message(), "unsuitable certificate purpose"))
      << credentials.status();
}

}  // namespace
}  // namespace fedcustoms::tls
