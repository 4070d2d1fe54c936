#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/pki/revocation_list.h"

namespace fedcustoms::coordinator {

// Keeps the coordinator's revocation list current while it runs: every
// `period` it looks at tls.crl, and when the file changed (modification time
// or size) it loads it with RevocationList::Load's checks and hands it to
// `apply`. A changed file that cannot be used (stale, not signed by the CA,
// unreadable, not a CRL) is logged as an error, once per change, and the list
// in force stays: revocations are never dropped by a bad file. Thread-safe.
class RevocationWatcher {
 public:
  using Apply = std::function<void(std::shared_ptr<const pki::RevocationList>)>;

  // `pem` and `in_force` are the list in force when the coordinator started
  // (already loaded and applied by the caller).
  RevocationWatcher(std::string crl_path, std::string ca_cert_path, std::string pem,
                    std::shared_ptr<const pki::RevocationList> in_force,
                    std::chrono::milliseconds period, Apply apply);
  // Stops the thread.
  ~RevocationWatcher();
  RevocationWatcher(const RevocationWatcher&) = delete;
  RevocationWatcher& operator=(const RevocationWatcher&) = delete;

  // Starts checking every `period`.
  void Start();
  // One check now: reloads if the file changed since the last check. OK when
  // nothing changed or the new list was applied; the load error otherwise
  // (also logged).
  absl::Status CheckNow();

  // The PEM of the list in force.
  std::string pem() const;
  // What secure rounds relay to the nodes: the list in force, or "" while it
  // is stale (nodes refuse a stale relayed list, and with it the round; they
  // keep checking with their own tls.crl).
  std::string RelayPem() const;

  // Logs an error when the list in force is past its nextUpdate: it stays in
  // force (dropping it would drop its revocations, refusing every caller
  // would stop the federation), but revocations made since may be missing.
  // At most once per `repeat`; the watcher's thread calls it each period.
  // Returns whether the list is stale.
  bool WarnIfStale(std::chrono::seconds repeat = std::chrono::hours(1));

 private:
  struct FileState {
    int64_t mtime_ns = -1;
    int64_t size = -1;
    bool operator==(const FileState&) const = default;
  };
  FileState Stat() const;

  const std::string crl_path_;
  const std::string ca_cert_path_;
  const std::chrono::milliseconds period_;
  const Apply apply_;

  mutable absl::Mutex mu_;
  std::string pem_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const pki::RevocationList> in_force_ ABSL_GUARDED_BY(mu_);
  std::chrono::steady_clock::time_point stale_logged_ ABSL_GUARDED_BY(mu_){};
  FileState seen_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace fedcustoms::coordinator
