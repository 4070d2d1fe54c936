#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "common/crypto/ed25519.h"
#include "common/crypto/openssl_error.h"
#include "common/crypto/openssl_ptr.h"
#include "common/crypto/pem.h"
#include "common/crypto/sha256.h"
#include "common/io/atomic_file.h"
#include "tests/support/temp_dir.h"

namespace fedcustoms::crypto {
namespace {

namespace fs = std::filesystem;

using io::AtomicFileWriter;
using io::PublishFile;
using io::ReadFile;
using io::WriteFileAtomically;
using testing_support::ModeOf;
using testing_support::TempDir;

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

std::string Bytes(const std::string& hex) { return *FromHex(hex); }

void ExpectErrorContains(const absl::Status& status, absl::StatusCode code,
                         const std::string& needle) {
  EXPECT_EQ(status.code(), code) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), needle))
      << status << "\nexpected to contain: " << needle;
}

// ---- SHA-256 (FIPS 180-4 / NIST example vectors) ----

TEST(Sha256, EmptyInput) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha256, Abc) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256, TwoBlockMessage) {
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256, IncrementalMillionAsInOddChunks) {
  const std::string chunk(997, 'a');
  Sha256 hasher;
  size_t total = 0;
  while (total + chunk.size() <= 1000000) {
    hasher.Update(chunk.data(), chunk.size());
    total += chunk.size();
  }
  hasher.Update(std::string(1000000 - total, 'a'));
  EXPECT_EQ(ToHex(hasher.Final()),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, FinalStartsOver) {
  Sha256 hasher;
  hasher.Update("abc");
  (void)hasher.Final();
  hasher.Update(nullptr, 0);
  EXPECT_EQ(ToHex(hasher.Final()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha256, FileMatchesInMemoryDigest) {
  TempDir dir;
  std::string content(3 << 20, '\0');
  for (size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>(i * 31 + 7);
  ASSERT_TRUE(WriteFileAtomically(dir.File("blob"), content).ok());
  absl::StatusOr<std::string> hex = Sha256File(dir.File("blob"));
  ASSERT_TRUE(hex.ok()) << hex.status();
  EXPECT_EQ(*hex, Sha256Hex(content));
}

TEST(Sha256, MissingFileErrorNamesPath) {
  TempDir dir;
  ExpectErrorContains(Sha256File(dir.File("nope")).status(), absl::StatusCode::kNotFound,
                      dir.File("nope"));
}

TEST(CryptoHex, RoundTripsAllByteValues) {
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
  const std::string hex = ToHex(bytes);
  EXPECT_EQ(hex.substr(0, 8), "00010203");
  EXPECT_EQ(hex.substr(hex.size() - 4), "feff");
  EXPECT_EQ(*FromHex(hex), bytes);
  EXPECT_EQ(*FromHex("ABcd"), "\xab\xcd");
}

TEST(CryptoHex, RejectsOddLengthAndNonHex) {
  ExpectErrorContains(FromHex("abc").status(), absl::StatusCode::kInvalidArgument, "odd length");
  ExpectErrorContains(FromHex("zz").status(), absl::StatusCode::kInvalidArgument, "position 0");
  ExpectErrorContains(FromHex("00g0").status(), absl::StatusCode::kInvalidArgument, "position 2");
}

// ---- Ed25519 ----

class Ed25519Test : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(GenerateEd25519KeyPair(dir_.File("sign.key"), dir_.File("sign.pub")).ok());
    auto signer = Ed25519Signer::Create(dir_.File("sign.key"));
    ASSERT_TRUE(signer.ok()) << signer.status();
    signer_ = *std::move(signer);
    auto verifier = Ed25519Verifier::Create(dir_.File("sign.pub"));
    ASSERT_TRUE(verifier.ok()) << verifier.status();
    verifier_ = *std::move(verifier);
  }

  TempDir dir_;
  std::unique_ptr<Ed25519Signer> signer_;
  std::unique_ptr<Ed25519Verifier> verifier_;
};

TEST_F(Ed25519Test, SignatureVerifies) {
  const std::string signature = signer_->Sign("manifest bytes");
  EXPECT_EQ(signature.size(), kEd25519SignatureBytes);
  EXPECT_TRUE(verifier_->Verify("manifest bytes", signature).ok());
}

TEST_F(Ed25519Test, KeyFilesHaveModes0600And0644) {
  EXPECT_EQ(ModeOf(dir_.File("sign.key")), 0600);
  EXPECT_EQ(ModeOf(dir_.File("sign.pub")), 0644);
}

TEST_F(Ed25519Test, PublicKeyPemMatchesPublicKeyFile) {
  EXPECT_EQ(signer_->PublicKeyPem(), *ReadFile(dir_.File("sign.pub")));
  auto verifier = Ed25519Verifier::FromPem(signer_->PublicKeyPem(), "signer");
  ASSERT_TRUE(verifier.ok());
  EXPECT_TRUE((*verifier)->Verify("x", signer_->Sign("x")).ok());
}

// RFC 8032 section 7.1, tests 1 and 2.
TEST(Ed25519, MatchesRfc8032Vectors) {
  struct Vector {
    const char* secret;
    const char* message;
    const char* signature;
  };
  const Vector vectors[] = {
      {"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", "",
       "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701c"
       "f9b46bd25bf5f0595bbe24655141438e7a100b"},
      {"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb", "72",
       "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0"
       "f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
  };
  for (const Vector& v : vectors) {
    const std::string secret = Bytes(v.secret);
    EvpPkeyPtr key(EVP_PKEY_new_raw_private_key(
        EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(secret.data()),
        secret.size()));
    ASSERT_NE(key, nullptr);
    std::string pem = PrivateKeyToPem(key.get());
    auto signer = Ed25519Signer::FromPem(pem, "rfc8032");
    WipeString(pem);
    ASSERT_TRUE(signer.ok()) << signer.status();
    const std::string message = Bytes(v.message);
    EXPECT_EQ(ToHex((*signer)->Sign(message)), v.signature);
    auto verifier = Ed25519Verifier::FromPem((*signer)->PublicKeyPem(), "rfc8032");
    ASSERT_TRUE(verifier.ok());
    EXPECT_TRUE((*verifier)->Verify(message, Bytes(v.signature)).ok());
  }
}

// Tests of all the error paths follow.

TEST_F(Ed25519Test, RejectsFlippedSignatureByte) {
  const std::string message = "model v3";
  const std::string signature = signer_->Sign(message);
  for (size_t i : {size_t{0}, size_t{31}, size_t{63}}) {
    std::string tampered = signature;
    tampered[i] ^= 0x01;
    ExpectErrorContains(
        verifier_->Verify(message, tampered), absl::StatusCode::kUnauthenticated,
        "signature does not match the message under the key from " + dir_.File("sign.pub"));
  }
}

TEST_F(Ed25519Test, RejectsFlippedMessageByte) {
  const std::string signature = signer_->Sign("model v3");
  EXPECT_EQ(verifier_->Verify("model v4", signature).code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(Ed25519Test, RejectsTruncatedAndEmptySignature) {
  const std::string signature = signer_->Sign("m");
  ExpectErrorContains(verifier_->Verify("m", signature.substr(0, 63)),
                      absl::StatusCode::kUnauthenticated, "has 63 bytes, expected 64");
  ExpectErrorContains(verifier_->Verify("m", ""), absl::StatusCode::kUnauthenticated,
                      "has 0 bytes");
}

TEST_F(Ed25519Test, RejectsSignatureByAnotherKey) {
  ASSERT_TRUE(GenerateEd25519KeyPair(dir_.File("other.key"), dir_.File("other.pub")).ok());
  auto other = Ed25519Signer::Create(dir_.File("other.key"));
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(verifier_->Verify("m", (*other)->Sign("m")).code(), absl::StatusCode::kUnauthenticated);
}

TEST(Ed25519, SignerRefusesEcKeyNamingFile) {
  TempDir dir;
  EvpPkeyPtr ec(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  ASSERT_NE(ec, nullptr);
  ASSERT_TRUE(WriteFileAtomically(dir.File("ec.key"), PrivateKeyToPem(ec.get()), 0600).ok());
  ASSERT_TRUE(WriteFileAtomically(dir.File("ec.pub"), PublicKeyToPem(ec.get())).ok());
  ExpectErrorContains(Ed25519Signer::Create(dir.File("ec.key")).status(),
                      absl::StatusCode::kInvalidArgument,
                      dir.File("ec.key") + ": expected an Ed25519 key, found EC P-256");
  ExpectErrorContains(Ed25519Verifier::Create(dir.File("ec.pub")).status(),
                      absl::StatusCode::kInvalidArgument,
                      dir.File("ec.pub") + ": expected an Ed25519 key, found EC P-256");
}

TEST(Ed25519, SignerRefusesMissingFileNamingIt) {
  TempDir dir;
  ExpectErrorContains(Ed25519Signer::Create(dir.File("absent.key")).status(),
                      absl::StatusCode::kNotFound, dir.File("absent.key"));
}

TEST(Ed25519, SignerRefusesNonPemFile) {
  TempDir dir;
  ASSERT_TRUE(WriteFileAtomically(dir.File("junk.key"), "not a key").ok());
  ExpectErrorContains(Ed25519Signer::Create(dir.File("junk.key")).status(),
                      absl::StatusCode::kInvalidArgument, dir.File("junk.key") + ": not PEM");
}

TEST(Ed25519, SignerRefusesEncryptedKeyWithoutPrompting) {
  TempDir dir;
  EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  BioPtr bio(BIO_new(BIO_s_mem()));
  static const char kPassphrase[] = "secret";
  ASSERT_EQ(PEM_write_bio_PKCS8PrivateKey(bio.get(), key.get(), EVP_aes_256_cbc(), kPassphrase,
                                          sizeof(kPassphrase) - 1, nullptr, nullptr),
            1);
  char* data = nullptr;
  const long length = BIO_get_mem_data(bio.get(), &data);
  ASSERT_TRUE(WriteFileAtomically(dir.File("enc.key"), std::string(data, length), 0600).ok());
  ExpectErrorContains(Ed25519Signer::Create(dir.File("enc.key")).status(),
                      absl::StatusCode::kInvalidArgument,
                      dir.File("enc.key") + ": no readable unencrypted private key");
}

TEST(Ed25519, VerifierRefusesPrivateKeyFile) {
  TempDir dir;
  ASSERT_TRUE(GenerateEd25519KeyPair(dir.File("k.key"), dir.File("k.pub")).ok());
  EXPECT_EQ(Ed25519Verifier::Create(dir.File("k.key")).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// ---- Atomic files ----

TEST(AtomicFile, WritesContentAndLeavesNoTemporaryFile) {
  TempDir dir;
  ASSERT_TRUE(WriteFileAtomically(dir.File("a.json"), "{\"v\":1}").ok());
  EXPECT_EQ(*ReadFile(dir.File("a.json")), "{\"v\":1}");
  EXPECT_EQ(ListDir(dir.path()), std::vector<std::string>{"a.json"});
}

TEST(AtomicFile, ReplacesExistingFile) {
  TempDir dir;
  ASSERT_TRUE(WriteFileAtomically(dir.File("a"), "old old old").ok());
  ASSERT_TRUE(WriteFileAtomically(dir.File("a"), "new").ok());
  EXPECT_EQ(*ReadFile(dir.File("a")), "new");
  EXPECT_EQ(ListDir(dir.path()), std::vector<std::string>{"a"});
}

TEST(AtomicFile, SetsExactModeWhateverTheUmask) {
  TempDir dir;
  const mode_t old_umask = ::umask(077);
  absl::Status wide = WriteFileAtomically(dir.File("public"), "p", 0644);
  ::umask(022);
  absl::Status narrow = WriteFileAtomically(dir.File("private"), "k", 0600);
  ::umask(old_umask);
  ASSERT_TRUE(wide.ok() && narrow.ok());
  EXPECT_EQ(ModeOf(dir.File("public")), 0644);
  EXPECT_EQ(ModeOf(dir.File("private")), 0600);
}

TEST(AtomicFile, ReplacingKeepsTheNewMode) {
  TempDir dir;
  ASSERT_TRUE(WriteFileAtomically(dir.File("k"), "a", 0644).ok());
  ASSERT_TRUE(WriteFileAtomically(dir.File("k"), "b", 0600).ok());
  EXPECT_EQ(ModeOf(dir.File("k")), 0600);
}

// Each test replaces an existing file "f" holding "old".
class AtomicFileWriterTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(WriteFileAtomically(dir.File("f"), "old").ok()); }
  TempDir dir;
};

TEST_F(AtomicFileWriterTest, StreamsPiecesAndShowsNothingBeforeCommit) {
  AtomicFileWriter writer;
  ASSERT_TRUE(writer.Open(dir.File("f")).ok());
  ASSERT_TRUE(writer.Write("new ").ok());
  ASSERT_TRUE(writer.Write("content").ok());
  EXPECT_EQ(*ReadFile(dir.File("f")), "old");  // not visible yet
  ASSERT_TRUE(writer.Commit().ok());
  EXPECT_EQ(*ReadFile(dir.File("f")), "new content");
  EXPECT_EQ(ListDir(dir.path()), std::vector<std::string>{"f"});
}

TEST_F(AtomicFileWriterTest, AbandonedWriteLeavesTheOldFileAndNoTemporary) {
  {
    AtomicFileWriter writer;
    ASSERT_TRUE(writer.Open(dir.File("f")).ok());
    ASSERT_TRUE(writer.Write("half a fi").ok());
  }  // destroyed without Commit(), as on an error path
  EXPECT_EQ(*ReadFile(dir.File("f")), "old");
  EXPECT_EQ(ListDir(dir.path()), std::vector<std::string>{"f"});
}

TEST_F(AtomicFileWriterTest, PublishFileReplacesTheFileWithACompleteOne) {
  {
    std::ofstream received(dir.File("f.part"), std::ios::binary);
    received << "received";
  }
  ASSERT_TRUE(PublishFile(dir.File("f.part"), dir.File("f")).ok());
  EXPECT_EQ(*ReadFile(dir.File("f")), "received");
  EXPECT_EQ(ListDir(dir.path()), std::vector<std::string>{"f"});
  // A temporary that is not there: an error naming it, the file unchanged.
  absl::Status s = PublishFile(dir.File("gone.part"), dir.File("f"));
  EXPECT_FALSE(s.ok());
  EXPECT_NE(std::string(s.message()).find("gone.part"), std::string::npos) << s;
  EXPECT_EQ(*ReadFile(dir.File("f")), "received");
}

TEST(AtomicFileWriter, WriteAndCommitBeforeOpenAreErrors) {
  AtomicFileWriter writer;
  EXPECT_EQ(writer.Write("x").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(writer.Commit().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(AtomicFile, WritesEmptyFile) {
  TempDir dir;
  ASSERT_TRUE(WriteFileAtomically(dir.File("e"), "").ok());
  EXPECT_EQ(*ReadFile(dir.File("e")), "");
}

TEST(AtomicFile, MissingDirectoryErrorNamesPathAndLeavesNothing) {
  TempDir dir;
  const std::string path = dir.File("no/such/dir/file");
  ExpectErrorContains(WriteFileAtomically(path, "x"), absl::StatusCode::kNotFound, path);
  EXPECT_TRUE(ListDir(dir.path()).empty());
}

TEST(AtomicFile, ReadMissingFileIsNotFoundNamingPath) {
  TempDir dir;
  ExpectErrorContains(ReadFile(dir.File("gone")).status(), absl::StatusCode::kNotFound,
                      dir.File("gone") + ": cannot open");
}

TEST(AtomicFile, ReadDirectoryIsRefused) {
  TempDir dir;
  ExpectErrorContains(ReadFile(dir.path()).status(), absl::StatusCode::kFailedPrecondition,
                      dir.path() + ": not a regular file");
}

// ---- OpenSSL errors and PEM ----

TEST(CryptoOpenSslErrors, DrainEmptiesTheQueue) {
  ERR_clear_error();
  EXPECT_EQ(DrainOpenSslErrors(), "no OpenSSL error detail");
  EXPECT_EQ(PEM_read_bio_X509(BioPtr(BIO_new_mem_buf("junk", 4)).get(), nullptr, nullptr, nullptr),
            nullptr);
  const std::string drained = DrainOpenSslErrors();
  EXPECT_TRUE(absl::StrContains(drained, "no start line")) << drained;
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(CryptoPem, KeyTypeNames) {
  EvpPkeyPtr ec(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  EvpPkeyPtr ed(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  EXPECT_EQ(KeyTypeName(ec.get()), "EC P-256");
  EXPECT_EQ(KeyTypeName(ed.get()), "ED25519");
}

TEST(CryptoPem, CertificatesFromPemRefusesTextWithoutCertificate) {
  ExpectErrorContains(CertificatesFromPem("-----BEGIN NOTHING-----\n", "x.pem").status(),
                      absl::StatusCode::kInvalidArgument, "x.pem: no certificate found");
}

}  // namespace
}  // namespace fedcustoms::crypto
