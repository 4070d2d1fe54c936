#include <gtest/gtest.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "common/crypto/ed25519.h"
#include "common/crypto/openssl_ptr.h"
#include "common/crypto/pem.h"
#include "common/io/atomic_file.h"
#include "common/pki/certificate_authority.h"
#include "common/pki/dev_pki.h"
#include "common/pki/peer_identity.h"
#include "common/pki/revocation_list.h"
#include "tests/support/temp_dir.h"

namespace fedcustoms::pki {
namespace {

namespace fs = std::filesystem;

using testing_support::ModeOf;
using testing_support::TempDir;

crypto::X509Ptr LoadCert(const std::string& path) {
  absl::StatusOr<std::string> pem = io::ReadFile(path);
  if (!pem.ok()) return nullptr;
  auto certs = crypto::CertificatesFromPem(*pem, path);
  if (!certs.ok()) return nullptr;
  return std::move(certs->front());
}

// X509_V_OK if `cert` chains to `ca` for `purpose` now, else the OpenSSL error code.
int Verify(X509* ca, X509* cert, int purpose) {
  crypto::X509StorePtr store(X509_STORE_new());
  crypto::X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  X509_STORE_add_cert(store.get(), ca);
  X509_STORE_CTX_init(ctx.get(), store.get(), cert, nullptr);
  X509_STORE_CTX_set_purpose(ctx.get(), purpose);
  if (X509_verify_cert(ctx.get()) == 1) return X509_V_OK;
  return X509_STORE_CTX_get_error(ctx.get());
}

void ExpectErrorContains(const absl::Status& status, absl::StatusCode code,
                         const std::string& needle) {
  EXPECT_EQ(status.code(), code) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), needle))
      << status << "\nexpected to contain: " << needle;
}

DevPkiOptions Options(const std::string& dir) {
  DevPkiOptions options;
  options.dir = dir;
  options.admins = {"EE", "FI", "LV"};
  return options;
}

class PkiDevPkiTest : public testing::Test {
 protected:
  void SetUp() override {
    absl::Status init = InitDevPki(Options(Dir()));
    ASSERT_TRUE(init.ok()) << init;
  }
  std::string Dir() const { return tmp_.File("pki"); }
  std::string File(const std::string& name) const { return Dir() + "/" + name; }

  TempDir tmp_;
};

TEST_F(PkiDevPkiTest, WritesEveryFileWithPrivateKeysMode0600) {
  for (const char* stem : {"ca", "coordinator", "EE", "FI", "LV", "analyst", "admin"}) {
    EXPECT_EQ(ModeOf(File(std::string(stem) + ".pem")), 0644) << stem;
    EXPECT_EQ(ModeOf(File(std::string(stem) + ".key")), 0600) << stem;
  }
  EXPECT_EQ(ModeOf(File("coordinator-signing.key")), 0600);
  EXPECT_EQ(ModeOf(File("coordinator-signing.pub")), 0644);
  EXPECT_EQ(ModeOf(Dir()), 0700);
  size_t files = 0;
  for (const auto& entry : fs::directory_iterator(Dir())) {
    EXPECT_FALSE(absl::StrContains(entry.path().filename().string(), ".tmp."));
    ++files;
  }
  EXPECT_EQ(files, 16u);
}

TEST_F(PkiDevPkiTest, CertificatesCarryCommonNameAndRoleInOu) {
  struct Expected {
    const char* file;
    const char* common_name;
    Role role;
  };
  for (const Expected& e :
       {Expected{"coordinator.pem", "coordinator", Role::kCoordinator},
        Expected{"EE.pem", "EE", Role::kNode}, Expected{"LV.pem", "LV", Role::kNode},
        Expected{"analyst.pem", "analyst", Role::kAnalyst},
        Expected{"admin.pem", "admin", Role::kAdmin}}) {
    absl::StatusOr<PeerIdentity> identity =
        PeerIdentityFromPem(*io::ReadFile(File(e.file)), e.file);
    ASSERT_TRUE(identity.ok()) << identity.status();
    EXPECT_EQ(identity->common_name, e.common_name);
    EXPECT_EQ(identity->role, e.role) << e.file;
  }
}

TEST_F(PkiDevPkiTest, LeavesVerifyAgainstCaForTheirUsage) {
  crypto::X509Ptr ca = LoadCert(File("ca.pem"));
  ASSERT_NE(ca, nullptr);
  EXPECT_EQ(X509_check_ca(ca.get()), 1);
  crypto::X509Ptr coordinator = LoadCert(File("coordinator.pem"));
  EXPECT_EQ(Verify(ca.get(), coordinator.get(), X509_PURPOSE_SSL_SERVER), X509_V_OK);
  EXPECT_EQ(Verify(ca.get(), coordinator.get(), X509_PURPOSE_SSL_CLIENT), X509_V_OK);
  for (const char* stem : {"EE", "FI", "LV", "analyst", "admin"}) {
    crypto::X509Ptr leaf = LoadCert(File(std::string(stem) + ".pem"));
    EXPECT_EQ(Verify(ca.get(), leaf.get(), X509_PURPOSE_SSL_CLIENT), X509_V_OK) << stem;
    EXPECT_NE(Verify(ca.get(), leaf.get(), X509_PURPOSE_SSL_SERVER), X509_V_OK) << stem;
    EXPECT_EQ(X509_check_ca(leaf.get()), 0) << stem;
  }
}

TEST_F(PkiDevPkiTest, CoordinatorCertificateNamesLoopback) {
  crypto::X509Ptr coordinator = LoadCert(File("coordinator.pem"));
  EXPECT_EQ(X509_check_host(coordinator.get(), "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(coordinator.get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(coordinator.get(), "::1", 0), 1);
  EXPECT_NE(X509_check_host(coordinator.get(), "example.com", 0, 0, nullptr), 1);
}

TEST_F(PkiDevPkiTest, TlsKeysAreP256AndMatchTheirCertificates) {
  for (const char* stem : {"ca", "coordinator", "EE", "analyst", "admin"}) {
    const std::string key_path = File(std::string(stem) + ".key");
    absl::StatusOr<std::string> pem = io::ReadFile(key_path);
    auto key = crypto::PrivateKeyFromPem(*pem, key_path);
    ASSERT_TRUE(key.ok()) << key.status();
    EXPECT_EQ(crypto::KeyTypeName(key->get()), "EC P-256");
    crypto::X509Ptr cert = LoadCert(File(std::string(stem) + ".pem"));
    EXPECT_EQ(X509_check_private_key(cert.get(), key->get()), 1) << stem;
  }
}

TEST_F(PkiDevPkiTest, SigningKeyPairSignsAndVerifies) {
  auto signer = crypto::Ed25519Signer::Create(File("coordinator-signing.key"));
  auto verifier = crypto::Ed25519Verifier::Create(File("coordinator-signing.pub"));
  ASSERT_TRUE(signer.ok() && verifier.ok());
  EXPECT_TRUE((*verifier)->Verify("manifest", (*signer)->Sign("manifest")).ok());
}

TEST_F(PkiDevPkiTest, RefusesToReplaceCaWithoutForce) {
  const std::string ca_before = *io::ReadFile(File("ca.pem"));
  ExpectErrorContains(InitDevPki(Options(Dir())), absl::StatusCode::kAlreadyExists,
                      File("ca.pem") + " exists");
  EXPECT_EQ(*io::ReadFile(File("ca.pem")), ca_before);
}

TEST_F(PkiDevPkiTest, ForceReplacesCa) {
  const std::string ca_before = *io::ReadFile(File("ca.pem"));
  DevPkiOptions options = Options(Dir());
  options.force = true;
  ASSERT_TRUE(InitDevPki(options).ok());
  EXPECT_NE(*io::ReadFile(File("ca.pem")), ca_before);
}

// Revocation: `fedcustoms certs revoke` writes a CRL the coordinator loads.
TEST_F(PkiDevPkiTest, RevokedCertificatesAreListedAndOthersPass) {
  RevokeOptions revoke;
  revoke.dir = Dir();
  revoke.names = {"EE"};
  ASSERT_TRUE(RevokeDevCertificates(revoke).ok());
  auto list = RevocationList::Load(File("crl.pem"), File("ca.pem"));
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ((*list)->size(), 1u);
  const absl::Status ee = (*list)->Check(*io::ReadFile(File("EE.pem")));
  ExpectErrorContains(ee, absl::StatusCode::kUnauthenticated, "CN=EE");
  EXPECT_TRUE(absl::StartsWith(ee.message(), "certificate serial ")) << ee;
  EXPECT_TRUE(absl::StrContains(ee.message(), ") was revoked on ")) << ee;
  EXPECT_TRUE(absl::EndsWith(ee.message(), "(" + File("crl.pem") + ")")) << ee;
  EXPECT_TRUE((*list)->Check(*io::ReadFile(File("FI.pem"))).ok());
  EXPECT_TRUE((*list)->Check(*io::ReadFile(File("analyst.pem"))).ok());
  ExpectErrorContains((*list)->Check("no certificate"), absl::StatusCode::kInvalidArgument,
                      "peer certificate");

  // A new list replaces the old one.
  revoke.names = {"FI", "analyst"};
  revoke.out = File("crl2.pem");
  ASSERT_TRUE(RevokeDevCertificates(revoke).ok());
  auto second = RevocationList::Load(File("crl2.pem"), File("ca.pem"));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ((*second)->size(), 2u);
  EXPECT_TRUE((*second)->Check(*io::ReadFile(File("EE.pem"))).ok());
  EXPECT_FALSE((*second)->Check(*io::ReadFile(File("analyst.pem"))).ok());
}

TEST_F(PkiDevPkiTest, RevocationListErrorsNameTheFile) {
  auto write_crl = [&](const KeyAndCertificate& ca, std::chrono::seconds next_update) {
    auto pem = MakeRevocationListPem(ca, {}, next_update);
    EXPECT_TRUE(pem.ok()) << pem.status();
    EXPECT_TRUE(io::WriteFileAtomically(File("bad-crl.pem"), *pem).ok());
    return RevocationList::Load(File("bad-crl.pem"), File("ca.pem")).status();
  };
  auto other_ca = GenerateCa("another CA", std::chrono::hours(24));
  ASSERT_TRUE(other_ca.ok());
  ExpectErrorContains(write_crl(*other_ca, std::chrono::hours(1)),
                      absl::StatusCode::kInvalidArgument,
                      File("bad-crl.pem") + ": issued by a CA that is not in " + File("ca.pem"));
  // Same name as the federation's CA, another key: the signature gives it away.
  auto impostor = GenerateCa("fedcustoms development CA", std::chrono::hours(24));
  ASSERT_TRUE(impostor.ok());
  ExpectErrorContains(write_crl(*impostor, std::chrono::hours(1)),
                      absl::StatusCode::kInvalidArgument,
                      ": signature does not verify with the CA in " + File("ca.pem"));
  auto ca = ReadPemFiles(File("ca.pem"), File("ca.key"));
  ASSERT_TRUE(ca.ok()) << ca.status();
  ExpectErrorContains(write_crl(*ca, std::chrono::seconds(-60)), absl::StatusCode::kInvalidArgument,
                      ": stale: its next update was due ");
  EXPECT_TRUE(write_crl(*ca, std::chrono::hours(1)).ok());
  ExpectErrorContains(RevocationList::Load(File("ca.pem"), File("ca.pem")).status(),
                      absl::StatusCode::kInvalidArgument, File("ca.pem") + ": not a PEM X.509 CRL");
  EXPECT_EQ(RevocationList::Load(File("none.pem"), File("ca.pem")).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(PkiDevPkiTest, RevokeRefusesWhatItCannotList) {
  RevokeOptions revoke;
  revoke.dir = Dir();
  ExpectErrorContains(RevokeDevCertificates(revoke), absl::StatusCode::kInvalidArgument,
                      "name at least one certificate");
  revoke.names = {"XX"};
  ExpectErrorContains(RevokeDevCertificates(revoke), absl::StatusCode::kNotFound, File("XX.pem"));
  auto other_ca = GenerateCa("another CA", std::chrono::hours(24));
  ASSERT_TRUE(other_ca.ok());
  IssueOptions leaf;
  leaf.common_name = "EE";
  auto foreign = IssueCertificate(*other_ca, leaf);
  ASSERT_TRUE(foreign.ok());
  ASSERT_TRUE(WritePemFiles(*foreign, File("foreign.pem"), File("foreign.key")).ok());
  revoke.names = {"foreign"};
  ExpectErrorContains(RevokeDevCertificates(revoke), absl::StatusCode::kInvalidArgument,
                      File("foreign.pem") + ": not issued by the CA in " + Dir() + "/ca.pem");
  revoke.names = {"EE"};
  revoke.valid_days = 0;
  ExpectErrorContains(RevokeDevCertificates(revoke), absl::StatusCode::kInvalidArgument,
                      "valid days must be 1..3650, found 0");
  EXPECT_FALSE(fs::exists(File("crl.pem")));
  ExpectErrorContains(
      ReadPemFiles(File("ca.pem"), File("EE.key")).status(), absl::StatusCode::kInvalidArgument,
      File("EE.key") + ": not the private key of the certificate in " + File("ca.pem"));
}

TEST(PkiDevPki, RefusesWhenOnlyCaKeyExists) {
  TempDir tmp;
  ASSERT_TRUE(io::WriteFileAtomically(tmp.File("ca.key"), "x", 0600).ok());
  DevPkiOptions options = Options(tmp.path());
  ExpectErrorContains(InitDevPki(options), absl::StatusCode::kAlreadyExists, "ca.key exists");
}

// ---- Administration codes ----

TEST(PkiAdministrationCodes, AcceptsUpperCaseLettersAndDigits) {
  EXPECT_TRUE(ValidateAdministrationCodes({"EE", "FI", "LV", "DE1", "ABCDEFGH"}).ok());
}

TEST(PkiAdministrationCodes, RefusesBadCodesNamingThem) {
  struct Case {
    std::vector<std::string> codes;
    const char* message;
  };
  const Case cases[] = {
      {{}, "no administration codes"},
      {{"ee"}, "\"ee\" may only contain upper-case letters A-Z and digits 0-9"},
      {{"E"}, "\"E\" must have 2 to 8 characters, has 1"},
      {{"ABCDEFGHI"}, "\"ABCDEFGHI\" must have 2 to 8 characters, has 9"},
      {{"E-E"}, "\"E-E\" may only contain"},
      {{"../X"}, "\"../X\" may only contain"},
      {{"EE", "FI", "EE"}, "\"EE\" is given twice"},
      {{"ADMIN"}, "\"ADMIN\" is reserved"},
      {{"ANALYST"}, "\"ANALYST\" is reserved"},
      {{"CA"}, "\"CA\" is reserved"},
      {{"coordinator"}, "\"coordinator\" must have 2 to 8 characters"},
  };
  for (const Case& c : cases) {
    ExpectErrorContains(ValidateAdministrationCodes(c.codes), absl::StatusCode::kInvalidArgument,
                        c.message);
  }
}

TEST(PkiDevPki, BadCodeWritesNothing) {
  TempDir tmp;
  DevPkiOptions options = Options(tmp.File("pki"));
  options.admins = {"EE", "admin"};
  ExpectErrorContains(InitDevPki(options), absl::StatusCode::kInvalidArgument, "\"admin\"");
  EXPECT_FALSE(fs::exists(tmp.File("pki")));
}

// ---- Roles and identities ----

TEST(PkiRole, NamesRoundTrip) {
  for (Role role : {Role::kNode, Role::kAnalyst, Role::kAdmin, Role::kCoordinator}) {
    absl::StatusOr<Role> parsed = ParseRole(RoleName(role));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, role);
  }
  EXPECT_STREQ(RoleName(Role::kNode), "node");
  EXPECT_STREQ(RoleName(Role::kAnalyst), "analyst");
}

TEST(PkiRole, ParseRefusesUnknownAndWrongCase) {
  ExpectErrorContains(ParseRole("superuser").status(), absl::StatusCode::kInvalidArgument,
                      "unknown role \"superuser\"");
  EXPECT_FALSE(ParseRole("Node").ok());
  EXPECT_FALSE(ParseRole("").ok());
}

class PkiIdentityTest : public testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<KeyAndCertificate> ca = GenerateCa("test CA", std::chrono::hours(1));
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_ = *std::move(ca);
  }
  absl::StatusOr<PeerIdentity> IdentityOf(const IssueOptions& options) {
    absl::StatusOr<KeyAndCertificate> issued = IssueCertificate(ca_, options);
    EXPECT_TRUE(issued.ok()) << issued.status();
    return PeerIdentityFromPem(crypto::CertificateToPem(issued->cert.get()), "test.pem");
  }

  KeyAndCertificate ca_;
};

TEST_F(PkiIdentityTest, ReadsCommonNameAndRole) {
  IssueOptions options;
  options.common_name = "LV";
  options.role = Role::kNode;
  absl::StatusOr<PeerIdentity> identity = IdentityOf(options);
  ASSERT_TRUE(identity.ok()) << identity.status();
  EXPECT_EQ(identity->common_name, "LV");
  EXPECT_EQ(identity->role, Role::kNode);
}

TEST_F(PkiIdentityTest, RefusesCertificateWithoutCommonName) {
  IssueOptions options;
  options.role = Role::kAdmin;
  ExpectErrorContains(IdentityOf(options).status(), absl::StatusCode::kInvalidArgument,
                      "test.pem: subject has no CN");
}

TEST_F(PkiIdentityTest, RefusesCertificateWithoutOu) {
  IssueOptions options;
  options.common_name = "EE";
  options.organizational_unit_override = "";
  ExpectErrorContains(IdentityOf(options).status(), absl::StatusCode::kInvalidArgument,
                      "test.pem: subject has no OU (the role)");
}

TEST_F(PkiIdentityTest, RefusesUnknownRole) {
  IssueOptions options;
  options.common_name = "EE";
  options.organizational_unit_override = "superuser";
  ExpectErrorContains(IdentityOf(options).status(), absl::StatusCode::kInvalidArgument,
                      "unknown role \"superuser\"");
}

TEST_F(PkiIdentityTest, RefusesNonPem) {
  ExpectErrorContains(PeerIdentityFromPem("garbage", "peer 1.2.3.4").status(),
                      absl::StatusCode::kInvalidArgument, "peer 1.2.3.4: not PEM");
}

// ---- Certificates for the refusal tests ----

TEST_F(PkiIdentityTest, IssuesExpiredAndNotYetValidCertificates) {
  IssueOptions expired;
  expired.common_name = "EE";
  expired.not_before_offset_seconds = -7200;
  expired.not_after_offset_seconds = -3600;
  auto old_cert = IssueCertificate(ca_, expired);
  ASSERT_TRUE(old_cert.ok());
  EXPECT_LT(X509_cmp_current_time(X509_get0_notAfter(old_cert->cert.get())), 0);
  EXPECT_EQ(Verify(ca_.cert.get(), old_cert->cert.get(), X509_PURPOSE_SSL_CLIENT),
            X509_V_ERR_CERT_HAS_EXPIRED);

  IssueOptions future = expired;
  future.not_before_offset_seconds = 3600;
  future.not_after_offset_seconds = 7200;
  auto new_cert = IssueCertificate(ca_, future);
  ASSERT_TRUE(new_cert.ok());
  EXPECT_EQ(Verify(ca_.cert.get(), new_cert->cert.get(), X509_PURPOSE_SSL_CLIENT),
            X509_V_ERR_CERT_NOT_YET_VALID);
}

TEST_F(PkiIdentityTest, CertificateFromAnotherCaDoesNotVerify) {
  auto other = GenerateCa("other", std::chrono::hours(1));
  ASSERT_TRUE(other.ok());
  IssueOptions options;
  options.common_name = "EE";
  auto cert = IssueCertificate(*other, options);
  ASSERT_TRUE(cert.ok());
  EXPECT_NE(Verify(ca_.cert.get(), cert->cert.get(), X509_PURPOSE_SSL_CLIENT), X509_V_OK);
}

TEST_F(PkiIdentityTest, RefusesMalformedIpAddress) {
  IssueOptions options;
  options.common_name = "coordinator";
  options.ip_addresses = {"300.1.1.1"};
  ExpectErrorContains(IssueCertificate(ca_, options).status(), absl::StatusCode::kInvalidArgument,
                      "subjectAltName IP \"300.1.1.1\"");
}

TEST_F(PkiIdentityTest, WritePemFilesUsesPrivateModeForKey) {
  TempDir tmp;
  IssueOptions options;
  options.common_name = "EE";
  auto cert = IssueCertificate(ca_, options);
  ASSERT_TRUE(cert.ok());
  ASSERT_TRUE(WritePemFiles(*cert, tmp.File("EE.pem"), tmp.File("EE.key")).ok());
  EXPECT_EQ(ModeOf(tmp.File("EE.key")), 0600);
  EXPECT_EQ(ModeOf(tmp.File("EE.pem")), 0644);
  crypto::X509Ptr back = LoadCert(tmp.File("EE.pem"));
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(X509_cmp(back.get(), cert->cert.get()), 0);
}

}  // namespace
}  // namespace fedcustoms::pki
