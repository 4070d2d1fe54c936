#include "analyst/status/coordinator_status.h"

#include <grpcpp/grpcpp.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "analyst/report/group_report.h"
#include "common/config/proto_json.h"
#include "common/tls/credentials.h"
#include "fedcustoms/v1/admin_service.grpc.pb.h"

namespace fedcustoms::analyst {
namespace {

report::SelectionCounts FromProto(const v1::SelectionCounts& c) {
  return {c.rows(), c.positives(), c.flagged(), c.flagged_positives()};
}

nlohmann::json EstimatesJson(const report::SelectionCounts& random,
                             const report::SelectionCounts& risk, uint32_t budget_percent) {
  return {
      {"budget_percent", budget_percent},
      {"random", report::SelectionEstimateJson(report::EstimateFromCounts(random), true)},
      {"risk_selected", report::SelectionEstimateJson(report::EstimateFromCounts(risk), false)}};
}

}  // namespace

absl::StatusOr<v1::GetStatusResponse> FetchCoordinatorStatus(const std::string& address,
                                                             const v1::TlsFiles& tls,
                                                             int timeout_seconds) {
  auto credentials = tls::MakeChannelCredentials(tls);
  if (!credentials.ok()) return credentials.status();
  auto stub = v1::AdminService::NewStub(
      grpc::CreateCustomChannel(address, *credentials, tls::DefaultChannelArguments()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(timeout_seconds));
  v1::GetStatusResponse response;
  const grpc::Status status = stub->GetStatus(&context, v1::GetStatusRequest(), &response);
  if (!status.ok()) {
    // gRPC's codes are abseil's, number for number.
    return absl::Status(
        static_cast<absl::StatusCode>(status.error_code()),
        absl::StrCat("coordinator ", address, ": GetStatus failed: ", status.error_message()));
  }
  return response;
}

nlohmann::json CoordinatorStatusToJson(const v1::GetStatusResponse& status) {
  nlohmann::json json = nlohmann::json::parse(config::PrintProtoJson(status).value_or("{}"));
  for (int t = 0; t < status.tasks_size(); ++t) {
    const v1::TaskStatus& task = status.tasks(t);
    if (task.selection_evaluations_size() == 0) continue;
    nlohmann::json control = nlohmann::json::object();
    report::SelectionCounts all_random, all_risk;
    uint32_t budget = 0;
    for (const v1::NodeSelectionEvaluation& e : task.selection_evaluations()) {
      const auto random = FromProto(e.evaluation().random());
      const auto risk = FromProto(e.evaluation().risk_selected());
      control[e.node()] = EstimatesJson(random, risk, e.evaluation().budget_percent());
      control[e.node()]["round_id"] = e.round_id();
      // Only counts taken at one budget add up (as in the published metrics).
      if (budget == 0) budget = e.evaluation().budget_percent();
      if (e.evaluation().budget_percent() != budget) continue;
      report::AddCounts(all_random, random);
      report::AddCounts(all_risk, risk);
    }
    control["all"] = EstimatesJson(all_random, all_risk, budget);
    json["tasks"][t]["random_control"] = control;
  }
  return json;
}

}  // namespace fedcustoms::analyst
