#pragma once
// A test suite that shares one federation directory (a development PKI and
// synthetic declarations) across its tests: made once by the suite's
// SetUpTestSuite through MakeRoot, removed after the suite. `Suite` is the
// derived fixture, so each suite has its own directory.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "absl/status/statusor.h"
#include "fedcustoms/v1/config.pb.h"
#include "tests/support/loopback_federation.h"

namespace fedcustoms::testing_support {

template <typename Suite>
class FederationSuite : public ::testing::Test {
 protected:
  // Keeps `dir` (e.g. MakeFederationWithData's) as the suite's root; a
  // failure fails the suite set-up with its message.
  static void MakeRoot(const absl::StatusOr<std::string>& dir) {
    ASSERT_TRUE(dir.ok()) << dir.status();
    root_ = new std::string(*dir);
  }
  static void TearDownTestSuite() {
    if (root_ == nullptr) return;
    std::filesystem::remove_all(*root_);
    delete root_;
    root_ = nullptr;
  }
  // The TLS files of `name` ("coordinator", "EE", "analyst", ...) in the PKI.
  static v1::TlsFiles Identity(const std::string& name) {
    return DevIdentity(*root_ + "/pki", name);
  }

  inline static std::string* root_ = nullptr;
};

}  // namespace fedcustoms::testing_support
