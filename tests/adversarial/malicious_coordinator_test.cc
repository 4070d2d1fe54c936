// A malicious coordinator against the nodes' own guarantees. The test plays
// the coordinator: it writes every assignment itself and relays the nodes'
// messages as it likes, against real node sessions (node/secure/: the code a
// node runs, real keys, real signatures, a real contribution record on disk).
// Each test asserts what the cheat obtains: no survivor signatures and no
// shares when it reruns a round without one node, lowers the threshold,
// skews one node's weight or relays a revoked node's keys; the honest paths
// (a rerun with the same survivors after a crash) still work.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/io/atomic_file.h"
#include "common/pki/dev_pki.h"
#include "common/pki/revocation_list.h"
#include "coordinator/rounds/secure_round.h"
#include "node/secure/secure_aggregation_session.h"
#include "tests/support/federation_dir.h"
#include "tests/support/loopback_federation.h"

namespace fedcustoms {
namespace {

namespace fs = std::filesystem;
using testing::HasSubstr;

const std::vector<std::string> kAdmins = {"DK", "EE", "FI", "LV", "SE"};
const std::string kModelV3Sha(64, '3');
constexpr uint64_t kRows = 100;

// What the coordinator obtained from one round.
struct Obtained {
  std::map<std::string, std::string> signatures;     // on U3, by node
  std::map<std::string, v1::UnmaskRequest> reveals;  // by node
  std::map<std::string, absl::Status> refusals;      // the first refusal of each node
};

class MaliciousCoordinatorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto dir = testing_support::MakeFederationDir("malicious-coordinator", kAdmins);
    ASSERT_TRUE(dir.ok()) << dir.status();
    root_ = new std::string(*dir);
  }
  static void TearDownTestSuite() {
    fs::remove_all(*root_);
    delete root_;
  }
  void SetUp() override {
    work_ = *root_ + "/" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::create_directories(work_);
    for (const std::string& admin : kAdmins) ASSERT_NO_FATAL_FAILURE(StartSession(admin));
  }

  // A node's session as the node makes it: default guarantees, its record in
  // the test's directory (so a "restarted" node keeps it).
  void StartSession(const std::string& admin) {
    sessions_.erase(admin);  // a restart: the old session lets go of its record first
    auto session =
        node::SecureAggregationSession::Create(testing_support::DevIdentity(*root_ + "/pki", admin),
                                               {{}, work_ + "/contributions-" + admin + ".jsonl"});
    ASSERT_TRUE(session.ok()) << session.status();
    sessions_[admin] = *std::move(session);
  }

  // The terms of an honest round of `n` nodes (threshold 2/3, W = n x kRows).
  static v1::SecureRound Terms(uint32_t n) {
    v1::SecureAggregationConfig config;
    config.set_threshold_fraction(2.0 / 3.0);
    config.set_clip(4);
    auto params = coordinator::SecureRoundParameters(config, n, n * kRows);
    EXPECT_TRUE(params.ok()) << params.status();
    return *params;
  }

  struct Script {
    uint64_t round_id = 1;
    uint64_t model_version = 3;
    std::string model_sha256 = kModelV3Sha;
    std::vector<std::string> nodes = kAdmins;
    // The terms each node is shown (default: Terms(|nodes|) for all).
    std::map<std::string, v1::SecureRound> terms;
    // The revocation list relayed with SHARE_KEYS, if any.
    std::string crl_pem;
  };

  // Runs one round as `script` says and returns what the coordinator got.
  // Every node that is still in the round gets each phase's assignment.
  Obtained Run(const Script& script) {
    Obtained got;
    auto refused = [&](const std::string& node, const absl::Status& s) {
      got.refusals.emplace(node, s);
    };
    auto assignment = [&](const std::string& node, v1::TaskAssignment::Kind kind) {
      v1::TaskAssignment a;
      a.set_kind(kind);
      a.set_task("risk");
      a.set_round_id(script.round_id);
      a.set_model_version(script.model_version);
      auto it = script.terms.find(node);
      *a.mutable_secure() =
          it != script.terms.end() ? it->second : Terms(static_cast<uint32_t>(script.nodes.size()));
      return a;
    };
    std::vector<v1::SignedKeys> u1;
    for (const std::string& node : script.nodes) {
      auto keys =
          sessions_[node]->AdvertiseKeys(assignment(node, v1::TaskAssignment::ADVERTISE_KEYS));
      if (!keys.ok()) {
        refused(node, keys.status());
        continue;
      }
      u1.push_back(keys->keys());
    }
    std::map<std::string, std::vector<v1::SealedShare>> inbox;
    for (const std::string& node : script.nodes) {
      v1::TaskAssignment a = assignment(node, v1::TaskAssignment::SHARE_KEYS);
      for (const v1::SignedKeys& keys : u1) *a.mutable_secure()->add_advertisements() = keys;
      a.mutable_secure()->set_crl_pem(script.crl_pem);
      auto shares = sessions_[node]->ShareKeys(a);
      if (!shares.ok()) {
        refused(node, shares.status());
        continue;
      }
      for (const v1::SealedShare& s : shares->shares()) inbox[s.to_node()].push_back(s);
    }
    std::set<std::string> u3;
    const std::vector<float> update(64, 0.01f);
    const std::vector<node::SecureAggregationSession::UpdatePiece> pieces = {
        {"w", {update.data(), update.size()}}};
    for (const std::string& node : script.nodes) {
      if (got.refusals.contains(node)) continue;
      v1::TaskAssignment a = assignment(node, v1::TaskAssignment::TRAIN);
      for (const v1::SealedShare& s : inbox[node]) *a.mutable_secure()->add_shares() = s;
      auto masked = sessions_[node]->MaskUpdate(a, script.model_sha256, pieces, kRows);
      if (!masked.ok()) {
        refused(node, masked.status());
        continue;
      }
      u3.insert(node);
    }
    for (const std::string& node : u3) {
      v1::TaskAssignment a = assignment(node, v1::TaskAssignment::CONFIRM_SURVIVORS);
      for (const std::string& u : u3) a.mutable_secure()->add_masked_input_from(u);
      auto confirmed = sessions_[node]->ConfirmSurvivors(a);
      if (!confirmed.ok()) {
        refused(node, confirmed.status());
        continue;
      }
      got.signatures[node] = confirmed->signature();
    }
    for (const auto& [node, unused] : got.signatures) {
      v1::TaskAssignment a = assignment(node, v1::TaskAssignment::UNMASK);
      for (const std::string& u : u3) a.mutable_secure()->add_masked_input_from(u);
      for (const auto& [signer, signature] : got.signatures) {
        v1::SurvivorSignature* s = a.mutable_secure()->add_survivor_signatures();
        s->set_node(signer);
        s->set_signature(signature);
      }
      auto reveal = sessions_[node]->Unmask(a);
      if (!reveal.ok()) {
        refused(node, reveal.status());
        continue;
      }
      got.reveals[node] = *reveal;
    }
    return got;
  }

  static std::string* root_;
  std::string work_;
  std::map<std::string, std::unique_ptr<node::SecureAggregationSession>> sessions_;
};

std::string* MaliciousCoordinatorTest::root_ = nullptr;

TEST_F(MaliciousCoordinatorTest, AnHonestRoundGivesEveryRevealAndARerunWithTheSameNodesToo) {
  Obtained first = Run({});
  EXPECT_TRUE(first.refusals.empty());
  EXPECT_EQ(first.reveals.size(), 5u);
  // A crash lost that round: the same five rerun it on the same model (the
  // second masked update of each is within the default allowance of 2).
  Script rerun;
  rerun.round_id = 2;
  for (const std::string& admin : kAdmins) ASSERT_NO_FATAL_FAILURE(StartSession(admin));  // restart
  Obtained second = Run(rerun);
  EXPECT_TRUE(second.refusals.empty());
  EXPECT_EQ(second.reveals.size(), 5u);
  // A third masked update from the same model is refused before masking.
  rerun.round_id = 3;
  Obtained third = Run(rerun);
  ASSERT_EQ(third.refusals.size(), 5u);
  EXPECT_THAT(std::string(third.refusals["FI"].message()),
              HasSubstr("already contributed a masked update computed from risk v3"));
  EXPECT_TRUE(third.signatures.empty());
}

// The re-run attack: the round completed with everyone; the coordinator runs
// it again on the same weights (relabelled v4) without EE, to subtract the
// sums. The others mask again (their allowance is 2) but refuse to confirm
// the new list, so no share is revealed and the second sum stays masked. A
// third try (as v3) does not even get masked input.
TEST_F(MaliciousCoordinatorTest, ARerunWithoutOneNodeGetsNoSignaturesAndNoShares) {
  Obtained first = Run({});
  ASSERT_EQ(first.reveals.size(), 5u);
  Script rerun;
  rerun.round_id = 2;
  rerun.model_version = 4;  // the same weights under a new version
  rerun.nodes = {"DK", "FI", "LV", "SE"};
  Obtained second = Run(rerun);
  EXPECT_TRUE(second.signatures.empty());
  EXPECT_TRUE(second.reveals.empty());
  ASSERT_EQ(second.refusals.size(), 4u);
  for (const auto& [node, status] : second.refusals) {
    EXPECT_TRUE(absl::IsFailedPrecondition(status)) << node << ": " << status;
    EXPECT_THAT(std::string(status.message()),
                HasSubstr("already confirmed another survivor list for a sum computed from"))
        << node;
    EXPECT_THAT(std::string(status.message()), HasSubstr("that list also had [EE]")) << node;
  }
  rerun.round_id = 3;
  rerun.model_version = 3;
  Obtained third = Run(rerun);
  EXPECT_TRUE(third.signatures.empty());
  ASSERT_EQ(third.refusals.size(), 4u);
  EXPECT_THAT(std::string(third.refusals["DK"].message()),
              HasSubstr("already contributed a masked update computed from risk v3"));
}

// A lowered threshold (t = 3 of 5: valid for the protocol, below every
// node's 2/3 floor of 4) and a shrunken round (EE shown only itself and FI,
// t = 2) are refused before any share leaves.
TEST_F(MaliciousCoordinatorTest, ALoweredThresholdOrAShrunkenRoundGetsNoShares) {
  Script low;
  v1::SecureRound terms = Terms(5);
  terms.set_threshold(3);
  for (const std::string& admin : kAdmins) low.terms[admin] = terms;
  Obtained got = Run(low);
  ASSERT_EQ(got.refusals.size(), 5u);
  EXPECT_THAT(std::string(got.refusals["EE"].message()),
              HasSubstr("announces threshold 3 for 5 nodes; EE requires at least 4"));

  Script shrunken;
  shrunken.round_id = 2;
  shrunken.nodes = {"EE", "FI"};
  shrunken.terms["EE"] = shrunken.terms["FI"] = Terms(5);
  shrunken.terms["EE"].set_threshold(2);
  shrunken.terms["FI"].set_threshold(2);
  got = Run(shrunken);
  ASSERT_EQ(got.refusals.size(), 2u);
  EXPECT_THAT(std::string(got.refusals["EE"].message()),
              HasSubstr("only 2 nodes advertised keys in round 2; EE needs at least 3"));
}

// EE alone is told W = 100, its own rows (its update would weigh as much as
// all the others together): its advertisement is signed over those terms, so
// every other node refuses it, and EE refuses theirs. No masked input leaves
// anyone, and nothing is recorded: the next honest round goes through.
TEST_F(MaliciousCoordinatorTest, AWeightSkewedForOneNodeStopsTheRoundBeforeMasking) {
  Script skew;
  skew.terms["EE"] = Terms(5);
  skew.terms["EE"].set_total_weight(kRows);
  Obtained got = Run(skew);
  ASSERT_EQ(got.refusals.size(), 5u);
  EXPECT_THAT(std::string(got.refusals["FI"].message()),
              HasSubstr("keys advertised for EE: the signature does not cover these keys"));
  EXPECT_TRUE(got.signatures.empty());
  Script honest;
  honest.round_id = 2;
  EXPECT_TRUE(Run(honest).refusals.empty());
}

// The coordinator relays the keys of SE, whose certificate the CA revoked
// (the relayed CRL is newer than the nodes' own, which they have none of).
// Every node refuses SE's keys; a list the CA did not sign is refused as junk.
TEST_F(MaliciousCoordinatorTest, ARevokedNodesKeysAreRefused) {
  pki::RevokeOptions revoke;
  revoke.dir = *root_ + "/pki";
  revoke.names = {"SE"};
  revoke.out = work_ + "/crl.pem";
  ASSERT_TRUE(pki::RevokeDevCertificates(revoke).ok());
  Script script;
  script.crl_pem = *io::ReadFile(revoke.out);
  Obtained got = Run(script);
  ASSERT_EQ(got.refusals.size(), 5u);
  EXPECT_THAT(std::string(got.refusals["EE"].message()),
              HasSubstr("keys advertised for SE: certificate serial"));
  EXPECT_THAT(std::string(got.refusals["EE"].message()), HasSubstr("was revoked on"));

  Script junk;
  junk.round_id = 2;
  junk.crl_pem = "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n";
  got = Run(junk);
  ASSERT_EQ(got.refusals.size(), 5u);
  EXPECT_THAT(std::string(got.refusals["FI"].message()),
              HasSubstr("the CRL relayed by the coordinator: not a PEM X.509 CRL"));
}

}  // namespace
}  // namespace fedcustoms
