#include "common/tls/peer_certificate_verifier.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>

#include "common/log/logging.h"

namespace fedcustoms::tls {
namespace {

// A peer that keeps reconnecting with a refused certificate must not turn
// into a flood of log lines: at most one line per this period per process.
constexpr auto kLogPeriod = std::chrono::seconds(10);
std::atomic<int64_t> last_logged_ns{0};
std::atomic<int64_t> unlogged{0};

void LogRefusal(const std::string& side, const absl::Status& status) {
  const int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
  int64_t last = last_logged_ns.load();
  if (last != 0 && now - last < std::chrono::nanoseconds(kLogPeriod).count()) {
    unlogged.fetch_add(1);
    return;
  }
  if (!last_logged_ns.compare_exchange_strong(last, now)) {
    unlogged.fetch_add(1);
    return;
  }
  const int64_t skipped = unlogged.exchange(0);
  spdlog::warn("{}: TLS handshake refused: {}{}", side, status.message(),
               skipped > 0 ? fmt::format(" ({} more refusals not logged)", skipped) : "");
}

std::string_view View(const grpc::string_ref& ref) { return {ref.data(), ref.size()}; }

}  // namespace

bool PeerCertificateVerifier::Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
                                     std::function<void(grpc::Status)> /*callback*/,
                                     grpc::Status* sync_status) {
  absl::Status status;
  if (request->peer_cert().empty()) {
    status = absl::UnauthenticatedError("the peer presented no certificate");
  } else {
    status = check_(View(request->peer_cert()), View(request->target_name()));
  }
  if (status.ok()) {
    *sync_status = grpc::Status::OK;
  } else {
    LogRefusal(side_, status);
    *sync_status = grpc::Status(grpc::StatusCode::UNAUTHENTICATED, std::string(status.message()));
  }
  return true;
}

}  // namespace fedcustoms::tls
