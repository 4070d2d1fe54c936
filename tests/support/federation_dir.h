#pragma once
// A fresh directory per test suite for its federation material: a
// development PKI and, where needed, synthetic declarations. Shared by the
// tests in tests/common/ and tests/federation/.
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/pki/dev_pki.h"
#include "common/synth/declarations_synth.h"

namespace fedcustoms::testing_support {

// Creates <tmp>/fedcustoms-<name>-<pid> afresh, with a development PKI for
// `admins` in its subdirectory `pki_subdir` ("" = the directory itself), and
// returns its path.
inline absl::StatusOr<std::string> MakeFederationDir(const std::string& name,
                                                     const std::vector<std::string>& admins,
                                                     const std::string& pki_subdir = "pki") {
  const std::string dir =
      std::filesystem::temp_directory_path() / absl::StrCat("fedcustoms-", name, "-", ::getpid());
  std::filesystem::remove_all(dir);
  pki::DevPkiOptions pki;
  pki.dir = pki_subdir.empty() ? dir : dir + "/" + pki_subdir;
  pki.admins = admins;
  if (absl::Status s = pki::InitDevPki(pki); !s.ok()) return s;
  return dir;
}

// Writes synthetic declarations for options.admins under <dir>/data.
inline absl::Status AddSyntheticData(const std::string& dir, synth::SynthOptions options) {
  options.out_dir = dir + "/data";
  return synth::SynthesizeDeclarations(options);
}

}  // namespace fedcustoms::testing_support
