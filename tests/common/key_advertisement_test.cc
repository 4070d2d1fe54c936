// Signed key advertisement: what stops a relaying coordinator from swapping a
// node's secure-aggregation keys, replaying them, or passing off other keys.
#include "common/secagg/key_advertisement.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "common/io/atomic_file.h"
#include "common/pki/dev_pki.h"

namespace fedcustoms::secagg {
namespace {

namespace fs = std::filesystem;
using testing::HasSubstr;

class KeyAdvertisementTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new std::string(fs::temp_directory_path() /
                            ("fedcustoms-keyadv-" + std::to_string(::getpid())));
    fs::remove_all(*root_);
    for (const char* pki : {"pki", "other"}) {
      pki::DevPkiOptions options;
      options.dir = *root_ + "/" + pki;
      options.admins = {"EE", "FI"};
      ASSERT_TRUE(pki::InitDevPki(options).ok());
    }
  }
  static void TearDownTestSuite() {
    fs::remove_all(*root_);
    delete root_;
  }

  void SetUp() override {
    keys_.task = "risk";
    keys_.round_id = 7;
    keys_.node = "EE";
    auto mask = X25519KeyPair::Generate();
    auto cipher = X25519KeyPair::Generate();
    ASSERT_TRUE(mask.ok() && cipher.ok());
    keys_.mask_key = mask->public_key();
    keys_.cipher_key = cipher->public_key();
    auto verifier = KeyAdvertisementVerifier::Create(*root_ + "/pki/ca.pem");
    ASSERT_TRUE(verifier.ok()) << verifier.status();
    verifier_ = *std::move(verifier);
  }

  // `holder`'s signature over `keys` and its certificate, from PKI `pki`.
  std::pair<std::string, std::string> SignedBy(const std::string& holder,
                                               const AdvertisedKeys& keys,
                                               const std::string& pki = "pki") {
    auto signer = KeyAdvertisementSigner::Create(*root_ + "/" + pki + "/" + holder + ".key");
    EXPECT_TRUE(signer.ok()) << signer.status();
    auto signature = (*signer)->Sign(keys);
    EXPECT_TRUE(signature.ok()) << signature.status();
    return {*signature, *io::ReadFile(*root_ + "/" + pki + "/" + holder + ".pem")};
  }

  std::string Refusal(const AdvertisedKeys& keys,
                      const std::pair<std::string, std::string>& signed_by) {
    absl::Status s = verifier_->Verify(keys, signed_by.second, signed_by.first);
    EXPECT_TRUE(absl::IsPermissionDenied(s)) << s;
    return std::string(s.message());
  }

  static std::string* root_;
  AdvertisedKeys keys_;
  std::unique_ptr<KeyAdvertisementVerifier> verifier_;
};

std::string* KeyAdvertisementTest::root_ = nullptr;

TEST_F(KeyAdvertisementTest, ANodesOwnSignatureVerifies) {
  auto [signature, cert] = SignedBy("EE", keys_);
  EXPECT_TRUE(verifier_->Verify(keys_, cert, signature).ok());
}

TEST_F(KeyAdvertisementTest, ASwappedKeyIsRefused) {
  auto signed_by = SignedBy("EE", keys_);
  AdvertisedKeys swapped = keys_;
  swapped.mask_key[0] ^= 1;  // the coordinator substitutes its own key
  EXPECT_THAT(Refusal(swapped, signed_by),
              HasSubstr("keys advertised for EE: the signature does not cover these keys"));
  swapped = keys_;
  swapped.cipher_key[31] ^= 0x80;
  EXPECT_THAT(Refusal(swapped, signed_by), HasSubstr("does not cover these keys"));
}

TEST_F(KeyAdvertisementTest, KeysReplayedIntoAnotherRoundOrTaskAreRefused) {
  auto signed_by = SignedBy("EE", keys_);
  AdvertisedKeys replayed = keys_;
  replayed.round_id = 8;
  EXPECT_THAT(Refusal(replayed, signed_by), HasSubstr("task risk round 8"));
  replayed = keys_;
  replayed.task = "anomaly";
  EXPECT_THAT(Refusal(replayed, signed_by), HasSubstr("does not cover these keys"));
}

TEST_F(KeyAdvertisementTest, AnotherNodesCertificateCannotSpeakForANode) {
  AdvertisedKeys as_ee = keys_;
  auto fi = SignedBy("FI", as_ee);  // FI signs keys claiming to be EE's
  EXPECT_EQ(Refusal(as_ee, fi), "keys advertised for EE: the certificate is FI's");
}

TEST_F(KeyAdvertisementTest, OnlyNodeCertificatesMayAdvertiseKeys) {
  AdvertisedKeys as_analyst = keys_;
  as_analyst.node = "analyst";
  EXPECT_EQ(Refusal(as_analyst, SignedBy("analyst", as_analyst)),
            "keys advertised for analyst: the certificate's role is analyst, not node");
}

TEST_F(KeyAdvertisementTest, ACertificateFromAnotherCaIsRefused) {
  EXPECT_THAT(Refusal(keys_, SignedBy("EE", keys_, "other")),
              HasSubstr("does not verify against the federation CA"));
}

TEST_F(KeyAdvertisementTest, GarbageCertificateIsRefused) {
  auto [signature, cert] = SignedBy("EE", keys_);
  EXPECT_EQ(Refusal(keys_, {signature, "not a certificate"}),
            "keys advertised for EE: the certificate is not readable PEM");
}

TEST(AdvertisementPayload, DifferentAdvertisementsNeverShareAPayload) {
  AdvertisedKeys a;
  a.task = "risk";
  a.node = "EE";
  AdvertisedKeys b = a;
  b.task = "risk|";
  b.node = "E";
  EXPECT_NE(AdvertisementPayload(a), AdvertisementPayload(b));
  b = a;
  b.round_id = 1;
  EXPECT_NE(AdvertisementPayload(a), AdvertisementPayload(b));
}

}  // namespace
}  // namespace fedcustoms::secagg
