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

// A test suite's federation directory: MakeFederationDir(name, pki_admins)
// with synthetic declarations for `data_admins` (`rows` for the largest,
// generator seed `seed`) under <dir>/data.
inline absl::StatusOr<std::string> MakeFederationWithData(
    const std::string& name, const std::vector<std::string>& pki_admins,
    const std::vector<std::string>& data_admins, uint64_t rows, uint64_t seed = 7) {
  absl::StatusOr<std::string> dir = MakeFederationDir(name, pki_admins);
  if (!dir.ok()) return dir.status();
  synth::SynthOptions synth;
  synth.admins = data_admins;
  synth.rows = rows;
  synth.seed = seed;
  if (absl::Status s = AddSyntheticData(*dir, synth); !s.ok()) return s;
  return dir;
}

}  // namespace fedcustoms::testing_support
