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

  // `pem` is the list in force when the coordinator started (already loaded
  // and applied by the caller).
  RevocationWatcher(std::string crl_path, std::string ca_cert_path, std::string pem,
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

  // The PEM of the list in force (relayed to nodes in secure rounds).
  std::string pem() const;

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
  FileState seen_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace fedcustoms::coordinator
