#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "absl/status/statusor.h"
#include "fedcustoms/v1/admin_service.pb.h"
#include "fedcustoms/v1/config.pb.h"

namespace fedcustoms::analyst {

// `fedcustoms status`: the coordinator's AdminService.GetStatus over mutual
// TLS with an admin certificate (the role is in the certificate). Errors keep
// gRPC's code (e.g. PERMISSION_DENIED for a node's certificate) and name the
// address; waits at most `timeout_seconds`.
absl::StatusOr<v1::GetStatusResponse> FetchCoordinatorStatus(const std::string& address,
                                                             const v1::TlsFiles& tls,
                                                             int timeout_seconds = 10);

// The status as JSON for operators: GetStatusResponse in protobuf's JSON
// mapping, and per task a "random_control" object with, for each
// administration and pooled over them ("all"), the estimates of its
// selection evaluation counts (report::EstimateFromCounts: non-compliance
// rate, recall and precision at the budget with 95 % Wilson intervals) for
// random and risk-selected controls.
nlohmann::json CoordinatorStatusToJson(const v1::GetStatusResponse& status);

}  // namespace fedcustoms::analyst
