#include "coordinator/registry/model_registry.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/crypto/sha256.h"
#include "common/io/atomic_file.h"
#include "common/log/logging.h"
#include "common/process/crash_point.h"

namespace fedcustoms::coordinator {
namespace fs = std::filesystem;

namespace {

constexpr char kStagingPrefix[] = ".staging-";
constexpr char kServerStateFile[] = "server_state.pt";

absl::Status FsyncPath(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot open ", path, " to fsync"));
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return absl::InternalError(absl::StrCat("fsync ", path, " failed"));
  return absl::OkStatus();
}

// Parses "v00000012" into 12.
std::optional<uint64_t> ParseVersionDir(const std::string& name) {
  if (name.size() < 2 || name[0] != 'v') return std::nullopt;
  uint64_t v = 0;
  for (size_t i = 1; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(name[i] - '0');
  }
  return v;
}

bool ValidTaskName(const std::string& task) {
  return !task.empty() && task.size() <= 64 && std::all_of(task.begin(), task.end(), [](char c) {
    return std::islower(static_cast<unsigned char>(c)) ||
           std::isdigit(static_cast<unsigned char>(c)) || c == '_';
  });
}

}  // namespace

absl::StatusOr<std::unique_ptr<ModelRegistry>> ModelRegistry::Open(
    const std::string& root, const crypto::Ed25519Signer* signer,
    const crypto::Ed25519Verifier* verifier) {
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("model registry ", root, ": cannot create directory: ", ec.message()));
  }
  // Remove staging directories left by an interrupted Publish.
  for (const fs::directory_entry& task_dir : fs::directory_iterator(root, ec)) {
    if (!task_dir.is_directory()) continue;
    for (const fs::directory_entry& entry : fs::directory_iterator(task_dir.path(), ec)) {
      if (entry.path().filename().string().rfind(kStagingPrefix, 0) == 0) {
        fs::remove_all(entry.path(), ec);
      }
    }
  }
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("model registry ", root, ": cannot read: ", ec.message()));
  }
  return std::unique_ptr<ModelRegistry>(new ModelRegistry(root, signer, verifier));
}

std::string ModelRegistry::VersionDir(const std::string& task, uint64_t version) const {
  return absl::StrFormat("%s/%s/v%08d", root_, task, version);
}

std::string ModelRegistry::WeightsPath(const std::string& task, uint64_t version) const {
  return VersionDir(task, version) + "/model.pt";
}

absl::StatusOr<manifest::SignedManifest> ModelRegistry::Publish(
    manifest::ModelManifest m, const tensor::NamedTensors& weights,
    const tensor::NamedTensors& server_state) {
  if (signer_ == nullptr) {
    return absl::FailedPreconditionError("model registry opened without a signing key");
  }
  if (!ValidTaskName(m.task)) {
    return absl::InvalidArgumentError(absl::StrCat("bad task name \"", m.task, "\""));
  }
  std::lock_guard lock(publish_mu_);
  const std::string task_dir = absl::StrCat(root_, "/", m.task);
  const std::string final_dir = VersionDir(m.task, m.version);
  std::error_code ec;
  if (fs::exists(final_dir, ec)) {
    return absl::AlreadyExistsError(
        absl::StrCat("model registry: ", m.task, " version ", m.version, " already exists"));
  }
  const std::string staging =
      absl::StrFormat("%s/%sv%08d-%d", task_dir, kStagingPrefix, m.version, ::getpid());
  fs::remove_all(staging, ec);
  fs::create_directories(staging, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("model registry: cannot create ", staging, ": ", ec.message()));
  }
  auto fail = [&](absl::Status status) {
    fs::remove_all(staging, ec);
    return status;
  };
  const std::string weights_path = staging + "/model.pt";
  if (absl::Status s = tensor::SavePickledState(weights, weights_path); !s.ok()) return fail(s);
  absl::StatusOr<std::string> sha = crypto::Sha256File(weights_path);
  if (!sha.ok()) return fail(sha.status());
  m.weights_sha256 = *sha;
  m.server_state_sha256.clear();
  if (!server_state.empty()) {
    const std::string state_path = staging + "/" + kServerStateFile;
    if (absl::Status s = tensor::SavePickledState(server_state, state_path); !s.ok()) {
      return fail(s);
    }
    absl::StatusOr<std::string> state_sha = crypto::Sha256File(state_path);
    if (!state_sha.ok()) return fail(state_sha.status());
    m.server_state_sha256 = *state_sha;
  }
  manifest::SignedManifest signed_manifest = manifest::SignManifest(m, *signer_);
  if (absl::Status s = io::WriteFileAtomically(staging + "/manifest.json", signed_manifest.json);
      !s.ok()) {
    return fail(s);
  }
  if (absl::Status s =
          io::WriteFileAtomically(staging + "/manifest.sig", signed_manifest.signature);
      !s.ok()) {
    return fail(s);
  }
  if (absl::Status s = FsyncPath(staging); !s.ok()) return fail(s);
  process::CrashPoint("registry.staged");
  fs::rename(staging, final_dir, ec);
  if (ec) {
    return fail(absl::UnavailableError(
        absl::StrCat("model registry: cannot publish ", final_dir, ": ", ec.message())));
  }
  // The version is visible from here on: a failed directory fsync only
  // weakens its durability across a power loss, so it is logged, not
  // reported as "not published" (the round would then reuse this version).
  if (absl::Status s = FsyncPath(task_dir); !s.ok()) {
    spdlog::error("model registry: published {} but {}", final_dir, s.message());
  }
  return signed_manifest;
}

std::vector<uint64_t> ModelRegistry::Versions(const std::string& task) const {
  std::vector<uint64_t> versions;
  if (!ValidTaskName(task)) return versions;
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(root_ + "/" + task, ec)) {
    if (!entry.is_directory()) continue;
    if (std::optional<uint64_t> v = ParseVersionDir(entry.path().filename().string())) {
      versions.push_back(*v);
    }
  }
  std::sort(versions.begin(), versions.end());
  return versions;
}

std::vector<std::string> ModelRegistry::Tasks() const {
  std::vector<std::string> tasks;
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(root_, ec)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && ValidTaskName(name) && !Versions(name).empty()) {
      tasks.push_back(name);
    }
  }
  std::sort(tasks.begin(), tasks.end());
  return tasks;
}

absl::StatusOr<manifest::SignedManifest> ModelRegistry::ReadManifest(
    const std::string& task, std::optional<uint64_t> version) const {
  std::vector<uint64_t> versions = Versions(task);
  if (versions.empty()) {
    return absl::NotFoundError(absl::StrCat("no published model for task \"", task, "\""));
  }
  const uint64_t v = version.value_or(versions.back());
  if (!std::binary_search(versions.begin(), versions.end(), v)) {
    return absl::NotFoundError(absl::StrCat("task \"", task, "\" has no version ", v));
  }
  const std::string dir = VersionDir(task, v);
  absl::StatusOr<std::string> json = io::ReadFile(dir + "/manifest.json");
  if (!json.ok()) return json.status();
  absl::StatusOr<std::string> signature = io::ReadFile(dir + "/manifest.sig");
  if (!signature.ok()) return signature.status();
  manifest::SignedManifest signed_manifest{*std::move(json), *std::move(signature)};
  if (verifier_ != nullptr) {
    absl::StatusOr<manifest::ModelManifest> checked =
        manifest::VerifyManifest(signed_manifest, *verifier_, dir + "/manifest.json");
    if (!checked.ok()) return checked.status();
  }
  return signed_manifest;
}

absl::StatusOr<tensor::NamedTensors> ModelRegistry::LoadWeights(const std::string& task,
                                                                uint64_t version) const {
  return LoadChecked(task, version, /*server_state=*/false);
}

absl::StatusOr<tensor::NamedTensors> ModelRegistry::LoadServerState(const std::string& task,
                                                                    uint64_t version) const {
  return LoadChecked(task, version, /*server_state=*/true);
}

absl::StatusOr<tensor::NamedTensors> ModelRegistry::LoadChecked(const std::string& task,
                                                                uint64_t version,
                                                                bool server_state) const {
  absl::StatusOr<manifest::SignedManifest> signed_manifest = ReadManifest(task, version);
  if (!signed_manifest.ok()) return signed_manifest.status();
  absl::StatusOr<manifest::ModelManifest> m =
      manifest::ParseManifest(signed_manifest->json, VersionDir(task, version) + "/manifest.json");
  if (!m.ok()) return m.status();
  const std::string& expected = server_state ? m->server_state_sha256 : m->weights_sha256;
  if (server_state && expected.empty()) return tensor::NamedTensors{};
  const std::string path = server_state ? VersionDir(task, version) + "/" + kServerStateFile
                                        : WeightsPath(task, version);
  absl::StatusOr<std::string> sha = crypto::Sha256File(path);
  if (!sha.ok()) return sha.status();
  if (*sha != expected) {
    return absl::DataLossError(absl::StrCat(
        path, ": SHA-256 ", *sha, " does not match the signed manifest (", expected, ")"));
  }
  return tensor::LoadPickledState(path);
}

}  // namespace fedcustoms::coordinator
