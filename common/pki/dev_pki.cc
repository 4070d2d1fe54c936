#include "common/pki/dev_pki.h"

#include <filesystem>
#include <set>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/ed25519.h"
#include "common/crypto/pem.h"
#include "common/io/atomic_file.h"
#include "common/pki/revocation_list.h"

namespace fedcustoms::pki {
namespace {

namespace fs = std::filesystem;

constexpr char kCaCommonName[] = "fedcustoms development CA";
constexpr int64_t kDaySeconds = 24 * 3600;

// Names whose files InitDevPki writes for other purposes.
constexpr const char* kReservedCodes[] = {"CA", "ADMIN", "ANALYST", "COORDINATOR"};

struct Leaf {
  std::string file_stem;
  IssueOptions options;
};

}  // namespace

absl::Status ValidateAdministrationCodes(const std::vector<std::string>& codes) {
  if (codes.empty()) {
    return absl::InvalidArgumentError("no administration codes given (e.g. --admins EE,FI,LV)");
  }
  std::set<std::string> seen;
  for (const std::string& code : codes) {
    if (code.size() < 2 || code.size() > 8) {
      return absl::InvalidArgumentError(absl::StrCat(
          "administration code \"", code, "\" must have 2 to 8 characters, has ", code.size()));
    }
    for (char c : code) {
      if (!absl::ascii_isupper(static_cast<unsigned char>(c)) &&
          !absl::ascii_isdigit(static_cast<unsigned char>(c))) {
        return absl::InvalidArgumentError(
            absl::StrCat("administration code \"", code,
                         "\" may only contain upper-case letters A-Z and digits 0-9"));
      }
    }
    for (const char* reserved : kReservedCodes) {
      if (code == reserved) {
        return absl::InvalidArgumentError(absl::StrCat(
            "administration code \"", code, "\" is reserved (its files would clash with ",
            absl::AsciiStrToLower(code), ".pem)"));
      }
    }
    if (!seen.insert(code).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("administration code \"", code, "\" is given twice"));
    }
  }
  return absl::OkStatus();
}

absl::Status InitDevPki(const DevPkiOptions& options) {
  if (options.dir.empty()) return absl::InvalidArgumentError("no output directory given");
  if (options.ca_validity_days <= 0 || options.leaf_validity_days <= 0) {
    return absl::InvalidArgumentError("certificate validity must be at least one day");
  }
  if (absl::Status s = ValidateAdministrationCodes(options.admins); !s.ok()) return s;

  const std::string& dir = options.dir;
  std::error_code ec;
  if (fs::create_directories(dir, ec)) {
    fs::permissions(dir, fs::perms::owner_all, ec);
  }
  if (ec || !fs::is_directory(dir)) {
    return absl::FailedPreconditionError(
        absl::StrCat(dir, ": cannot create directory", ec ? absl::StrCat(": ", ec.message()) : ""));
  }
  for (const char* name : {"ca.pem", "ca.key"}) {
    const std::string path = absl::StrCat(dir, "/", name);
    if (fs::exists(path) && !options.force) {
      return absl::AlreadyExistsError(absl::StrCat(
          path,
          " exists; refusing to replace the CA, since every certificate it signed would "
          "stop being accepted (use --force to start over)"));
    }
  }

  absl::StatusOr<KeyAndCertificate> ca =
      GenerateCa(kCaCommonName, std::chrono::seconds(options.ca_validity_days * kDaySeconds));
  if (!ca.ok()) return ca.status();

  const int64_t leaf_seconds = options.leaf_validity_days * kDaySeconds;
  auto make_leaf = [&](std::string stem, std::string cn, Role role, bool server) {
    Leaf leaf{std::move(stem), {}};
    leaf.options.common_name = std::move(cn);
    leaf.options.role = role;
    leaf.options.not_after_offset_seconds = leaf_seconds;
    leaf.options.server_auth = server;
    leaf.options.client_auth = true;
    return leaf;
  };
  std::vector<Leaf> leaves;
  Leaf coordinator = make_leaf("coordinator", "coordinator", Role::kCoordinator, true);
  coordinator.options.dns_names = {"localhost"};
  coordinator.options.ip_addresses = {"127.0.0.1", "::1"};
  leaves.push_back(std::move(coordinator));
  for (const std::string& code : options.admins) {
    leaves.push_back(make_leaf(code, code, Role::kNode, false));
  }
  leaves.push_back(make_leaf("analyst", "analyst", Role::kAnalyst, false));
  leaves.push_back(make_leaf("admin", "admin", Role::kAdmin, false));

  for (const Leaf& leaf : leaves) {
    absl::StatusOr<KeyAndCertificate> issued = IssueCertificate(*ca, leaf.options);
    if (!issued.ok()) {
      return absl::Status(issued.status().code(),
                          absl::StrCat(leaf.file_stem, ": ", issued.status().message()));
    }
    const std::string stem = absl::StrCat(dir, "/", leaf.file_stem);
    if (absl::Status s = WritePemFiles(*issued, stem + ".pem", stem + ".key"); !s.ok()) return s;
  }
  if (absl::Status s = crypto::GenerateEd25519KeyPair(dir + "/coordinator-signing.key",
                                                      dir + "/coordinator-signing.pub");
      !s.ok()) {
    return s;
  }
  return WritePemFiles(*ca, dir + "/ca.pem", dir + "/ca.key");
}

absl::Status RevokeDevCertificates(const RevokeOptions& options) {
  if (options.names.empty()) {
    return absl::InvalidArgumentError("revoke: name at least one certificate (e.g. EE)");
  }
  if (options.valid_days < 1 || options.valid_days > 3650) {
    return absl::InvalidArgumentError(
        absl::StrCat("revoke: valid days must be 1..3650, found ", options.valid_days));
  }
  auto ca = ReadPemFiles(options.dir + "/ca.pem", options.dir + "/ca.key");
  if (!ca.ok()) return ca.status();
  std::vector<crypto::X509Ptr> certs;
  for (const std::string& name : options.names) {
    const std::string path = absl::StrCat(options.dir, "/", name, ".pem");
    auto pem = io::ReadFile(path);
    if (!pem.ok()) return pem.status();
    auto parsed = crypto::CertificatesFromPem(*pem, path);
    if (!parsed.ok()) return parsed.status();
    X509* cert = parsed->front().get();
    if (X509_check_issued(ca->cert.get(), cert) != X509_V_OK) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": not issued by the CA in ", options.dir, "/ca.pem"));
    }
    certs.push_back(std::move(parsed->front()));
  }
  std::vector<X509*> revoked;
  for (const crypto::X509Ptr& c : certs) revoked.push_back(c.get());
  auto crl = MakeRevocationListPem(*ca, revoked, std::chrono::hours(24) * options.valid_days);
  if (!crl.ok()) return crl.status();
  const std::string out = options.out.empty() ? options.dir + "/crl.pem" : options.out;
  return io::WriteFileAtomically(out, *crl, 0644);
}

v1::TlsFiles IdentityFiles(const std::string& pki_dir, const std::string& name) {
  v1::TlsFiles tls;
  tls.set_ca_cert(pki_dir + "/ca.pem");
  tls.set_cert(pki_dir + "/" + name + ".pem");
  tls.set_key(pki_dir + "/" + name + ".key");
  return tls;
}

}  // namespace fedcustoms::pki
