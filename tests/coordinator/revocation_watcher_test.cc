// RevocationWatcher: a replaced tls.crl is applied, a bad one is not, and a
// list in force that goes stale is reported.

#include "coordinator/service/revocation_watcher.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>
#include <vector>

#include "common/io/atomic_file.h"
#include "common/pki/certificate_authority.h"
#include "common/pki/revocation_list.h"
#include "tests/support/temp_dir.h"

namespace fedcustoms::coordinator {
namespace {

class RevocationWatcherTest : public testing::Test {
 protected:
  void SetUp() override {
    auto ca = pki::GenerateCa("watcher test CA", std::chrono::hours(24));
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_ = *std::move(ca);
    ASSERT_TRUE(pki::WritePemFiles(ca_, ca_path_, dir_.path() + "/ca.key").ok());
    pki::IssueOptions node;
    node.common_name = "EE";
    auto ee = pki::IssueCertificate(ca_, node);
    ASSERT_TRUE(ee.ok()) << ee.status();
    ee_ = *std::move(ee);
  }

  // Writes a CRL listing `revoked` that is due for renewal in `next_update`.
  void WriteList(const std::vector<X509*>& revoked, std::chrono::seconds next_update) {
    auto pem = pki::MakeRevocationListPem(ca_, revoked, next_update);
    ASSERT_TRUE(pem.ok()) << pem.status();
    ASSERT_TRUE(io::WriteFileAtomically(crl_path_, *pem).ok());
  }

  testing_support::TempDir dir_;
  const std::string ca_path_ = dir_.path() + "/ca.pem";
  const std::string crl_path_ = dir_.path() + "/crl.pem";
  pki::KeyAndCertificate ca_;
  pki::KeyAndCertificate ee_;
};

TEST_F(RevocationWatcherTest, AppliesAReplacedListKeepsItOverABadOneAndReportsStaleness) {
  WriteList({}, std::chrono::hours(1));
  auto initial = pki::RevocationList::Load(crl_path_, ca_path_);
  ASSERT_TRUE(initial.ok()) << initial.status();
  std::vector<std::shared_ptr<const pki::RevocationList>> applied;
  RevocationWatcher watcher(
      crl_path_, ca_path_, "initial", *initial, std::chrono::hours(1),
      [&](std::shared_ptr<const pki::RevocationList> list) { applied.push_back(std::move(list)); });
  EXPECT_TRUE(watcher.CheckNow().ok());  // nothing changed
  EXPECT_TRUE(applied.empty());
  EXPECT_FALSE(watcher.WarnIfStale());

  // A new list revoking EE that is due in 2 s: applied, then goes stale.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a new mtime
  WriteList({ee_.cert.get()}, std::chrono::seconds(2));
  EXPECT_TRUE(watcher.CheckNow().ok());
  ASSERT_EQ(applied.size(), 1u);
  EXPECT_EQ(applied[0]->size(), 1u);
  EXPECT_NE(watcher.pem(), "initial");
  EXPECT_FALSE(watcher.WarnIfStale());
  EXPECT_EQ(watcher.RelayPem(), watcher.pem());
  std::this_thread::sleep_for(std::chrono::seconds(3));
  EXPECT_TRUE(watcher.WarnIfStale());
  EXPECT_NE(applied[0]->StaleSince(), "");
  EXPECT_EQ(watcher.RelayPem(), "");  // nodes would refuse the round over it

  // A file that is not a CRL: refused, the list in force stays (still stale).
  const std::string in_force = watcher.pem();
  ASSERT_TRUE(io::WriteFileAtomically(crl_path_, "not a CRL\n").ok());
  EXPECT_FALSE(watcher.CheckNow().ok());
  EXPECT_EQ(applied.size(), 1u);
  EXPECT_EQ(watcher.pem(), in_force);
  EXPECT_TRUE(watcher.WarnIfStale());

  // A current list ends the staleness.
  WriteList({ee_.cert.get()}, std::chrono::hours(1));
  EXPECT_TRUE(watcher.CheckNow().ok());
  ASSERT_EQ(applied.size(), 2u);
  EXPECT_FALSE(watcher.WarnIfStale());
  EXPECT_EQ(watcher.RelayPem(), watcher.pem());
}

}  // namespace
}  // namespace fedcustoms::coordinator
