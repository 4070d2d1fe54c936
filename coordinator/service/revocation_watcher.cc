#include "coordinator/service/revocation_watcher.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/io/atomic_file.h"
#include "common/log/logging.h"

namespace fedcustoms::coordinator {

RevocationWatcher::RevocationWatcher(std::string crl_path, std::string ca_cert_path,
                                     std::string pem,
                                     std::shared_ptr<const pki::RevocationList> in_force,
                                     std::chrono::milliseconds period, Apply apply)
    : crl_path_(std::move(crl_path)),
      ca_cert_path_(std::move(ca_cert_path)),
      period_(period),
      apply_(std::move(apply)),
      pem_(std::move(pem)),
      in_force_(std::move(in_force)),
      seen_(Stat()) {}

RevocationWatcher::~RevocationWatcher() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

RevocationWatcher::FileState RevocationWatcher::Stat() const {
  struct stat st {};
  if (::stat(crl_path_.c_str(), &st) != 0) return {};
  return {static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec,
          static_cast<int64_t>(st.st_size)};
}

void RevocationWatcher::Start() {
  thread_ = std::thread([this] {
    for (;;) {
      {
        absl::MutexLock lock(&mu_);
        // Wakes early only to stop.
        mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::FromChrono(period_));
        if (stopping_) return;
      }
      (void)CheckNow();  // logs its own failures
      (void)WarnIfStale();
    }
  });
}

absl::Status RevocationWatcher::CheckNow() {
  const FileState now = Stat();
  {
    absl::MutexLock lock(&mu_);
    if (now == seen_) return absl::OkStatus();
    seen_ = now;
  }
  absl::StatusOr<std::shared_ptr<const pki::RevocationList>> loaded =
      pki::RevocationList::Load(crl_path_, ca_cert_path_);
  absl::StatusOr<std::string> pem =
      loaded.ok() ? io::ReadFile(crl_path_) : absl::StatusOr<std::string>(loaded.status());
  if (!pem.ok()) {
    spdlog::error(
        "tls.crl changed but cannot be used: {}; the list loaded before stays in force (replace "
        "the file with a current list signed by the CA)",
        pem.status().message());
    return pem.status();
  }
  apply_(*loaded);
  {
    absl::MutexLock lock(&mu_);
    pem_ = *std::move(pem);
    in_force_ = *loaded;
    stale_logged_ = {};
  }
  spdlog::info("tls.crl {} reloaded: {} revoked certificate(s) are now refused", crl_path_,
               (*loaded)->size());
  return absl::OkStatus();
}

bool RevocationWatcher::WarnIfStale(std::chrono::seconds repeat) {
  absl::MutexLock lock(&mu_);
  if (in_force_ == nullptr) return false;
  const std::string due = in_force_->StaleSince();
  if (due.empty()) return false;
  const auto now = std::chrono::steady_clock::now();
  if (stale_logged_ == std::chrono::steady_clock::time_point{} || now - stale_logged_ >= repeat) {
    stale_logged_ = now;
    spdlog::error(
        "tls.crl {} in force is STALE: its next update was due {}; revocations made since may be "
        "missing. It stays in force; put a current list signed by the CA in its place (it is "
        "picked up within seconds)",
        crl_path_, due);
  }
  return true;
}

std::string RevocationWatcher::RelayPem() const {
  absl::MutexLock lock(&mu_);
  if (in_force_ != nullptr && !in_force_->StaleSince().empty()) return "";
  return pem_;
}

std::string RevocationWatcher::pem() const {
  absl::MutexLock lock(&mu_);
  return pem_;
}

}  // namespace fedcustoms::coordinator
