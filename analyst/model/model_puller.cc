#include "analyst/model/model_puller.h"

#include <grpcpp/grpcpp.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/crypto/ed25519.h"
#include "common/crypto/sha256.h"
#include "common/io/atomic_file.h"
#include "common/manifest/signed_manifest.h"
#include "common/tensor/chunk_download.h"
#include "common/tls/credentials.h"
#include "common/tls/require_tls13.h"
#include "fedcustoms/v1/analyst_service.grpc.pb.h"

namespace fedcustoms::analyst {
namespace {

constexpr uint64_t kMaxWeightsBytes = 16ull << 30;

absl::Status FromGrpc(const grpc::Status& status, const std::string& call) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat(call, ": ", status.error_message()));
}

}  // namespace

absl::StatusOr<manifest::ModelManifest> VerifyPulledModel(const std::string& dir,
                                                          const std::string& public_key_path,
                                                          std::string* weights) {
  auto verifier = crypto::Ed25519Verifier::Create(public_key_path);
  if (!verifier.ok()) return verifier.status();
  auto json = io::ReadFile(dir + "/manifest.json");
  if (!json.ok()) return json.status();
  auto signature = io::ReadFile(dir + "/manifest.sig");
  if (!signature.ok()) return signature.status();
  auto m = manifest::VerifyManifest({*json, *signature}, **verifier, dir + "/manifest.json");
  if (!m.ok()) return m.status();
  const std::string path = dir + "/" + m->weights_file;
  absl::StatusOr<std::string> sha;
  if (weights != nullptr) {
    auto bytes = io::ReadFile(path);
    if (!bytes.ok()) return bytes.status();
    sha = crypto::Sha256Hex(*bytes);
    *weights = *std::move(bytes);
  } else {
    sha = crypto::Sha256File(path);  // streams: no copy of the weights in memory
  }
  if (!sha.ok()) return sha.status();
  if (*sha != m->weights_sha256) {
    if (weights != nullptr) weights->clear();
    return absl::DataLossError(absl::StrCat(path, ": SHA-256 ", *sha,
                                            " does not match the signed manifest (",
                                            m->weights_sha256, "); refusing the model"));
  }
  return m;
}

absl::StatusOr<manifest::ModelManifest> PullModel(const PullOptions& options) {
  if (absl::Status s = tls::RequireTls13(); !s.ok()) return s;
  auto verifier = crypto::Ed25519Verifier::Create(options.coordinator_public_key);
  if (!verifier.ok()) return verifier.status();
  auto credentials = tls::MakeChannelCredentials(options.tls);
  if (!credentials.ok()) return credentials.status();
  auto stub = v1::AnalystService::NewStub(grpc::CreateCustomChannel(
      options.coordinator_address, *credentials, tls::DefaultChannelArguments()));

  // The signed manifest of `version` (the latest when empty), checked to be
  // that task's and version's.
  v1::GetManifestRequest request;
  v1::GetManifestResponse response;
  auto fetch_manifest =
      [&](std::optional<uint64_t> version) -> absl::StatusOr<manifest::ModelManifest> {
    request.set_task(options.task);
    if (version) {
      request.set_version(*version);
    } else {
      request.clear_version();
    }
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    if (absl::Status s = FromGrpc(stub->GetManifest(&context, request, &response), "get manifest");
        !s.ok()) {
      return s;
    }
    const std::string source = absl::StrCat("manifest of ", options.task, " v", response.version(),
                                            " from ", options.coordinator_address);
    auto m = manifest::VerifyManifest({response.manifest_json(), response.signature()}, **verifier,
                                      source);
    if (!m.ok()) return m.status();
    if (m->task != options.task || m->version != response.version() ||
        (version && m->version != *version)) {
      return absl::PermissionDeniedError(
          absl::StrCat(source, ": signed for ", m->task, " v", m->version, "; refusing"));
    }
    return m;
  };
  auto m = fetch_manifest(options.version);
  if (!m.ok()) return m.status();
  if (options.released && !options.version && m->released_version != m->version) {
    // The latest manifest names, under the coordinator's signature, the
    // version it releases and the hash of its weights: the version served
    // must be that one (not a discarded candidate signed with the same
    // number).
    const uint64_t latest = m->version;
    const std::string expected = m->released_weights_sha256;
    m = fetch_manifest(m->released_version);
    if (!m.ok()) return m.status();
    if (m->weights_sha256 != expected) {
      return absl::PermissionDeniedError(
          absl::StrCat("manifest of ", options.task, " v", m->version, " from ",
                       options.coordinator_address, ": its weights hash to ", m->weights_sha256,
                       " but v", latest, " released weights hashing to ", expected, "; refusing"));
    }
  }

  std::error_code ec;
  std::filesystem::create_directories(options.out_dir, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot create ", options.out_dir, ": ", ec.message()));
  }
  const std::string weights = options.out_dir + "/model.pt";
  const std::string staging = weights + ".download";
  request.set_version(response.version());
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(30));
    auto reader = stub->DownloadWeights(&context, request);
    auto sha = tensor::ReceiveToFile(reader.get(), staging, kMaxWeightsBytes);
    if (!sha.ok()) {
      return absl::Status(sha.status().code(),
                          absl::StrCat("download weights: ", sha.status().message()));
    }
    if (*sha != m->weights_sha256) {
      std::filesystem::remove(staging, ec);
      return absl::DataLossError(absl::StrCat("weights of ", options.task, " v", m->version,
                                              " hash to ", *sha, " but the signed manifest says ",
                                              m->weights_sha256, "; refusing the model"));
    }
  }
  std::filesystem::rename(staging, weights, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot write ", weights, ": ", ec.message()));
  if (absl::Status s =
          io::WriteFileAtomically(options.out_dir + "/manifest.json", response.manifest_json());
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          io::WriteFileAtomically(options.out_dir + "/manifest.sig", response.signature());
      !s.ok()) {
    return s;
  }
  return m;
}

}  // namespace fedcustoms::analyst
