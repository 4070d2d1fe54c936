#include "node/analyst/coordinator_status.h"

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/tls/credentials.h"
#include "fedcustoms/v1/admin_service.grpc.pb.h"
#include "node/report/group_report.h"

namespace fedcustoms::node {
namespace {

report::SelectionCounts FromProto(const v1::SelectionCounts& c) {
  return {c.rows(), c.positives(), c.flagged(), c.flagged_positives()};
}

nlohmann::json EstimatesJson(const report::SelectionCounts& random,
                             const report::SelectionCounts& risk, uint32_t budget_percent) {
  auto side = [](const report::SelectionCounts& counts, bool unbiased) {
    const report::SelectionEstimate e = report::EstimateFromCounts(counts);
    auto p = [](const report::Proportion& x) {
      return nlohmann::json{{"value", x.value}, {"low", x.low}, {"high", x.high}};
    };
    return nlohmann::json{
        {"rows", counts.rows},       {"positives", counts.positives},
        {"flagged", counts.flagged}, {"flagged_positives", counts.flagged_positives},
        {"unbiased", unbiased},      {"non_compliance_rate", p(e.non_compliance_rate)},
        {"recall", p(e.recall)},     {"precision", p(e.precision)}};
  };
  return {{"budget_percent", budget_percent},
          {"random", side(random, true)},
          {"risk_selected", side(risk, false)}};
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
  std::string text;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(status, &text, options);
  nlohmann::json json = nlohmann::json::parse(text);
  for (int t = 0; t < status.tasks_size(); ++t) {
    const v1::TaskStatus& task = status.tasks(t);
    if (task.selection_evaluations_size() == 0) continue;
    nlohmann::json control = nlohmann::json::object();
    report::SelectionCounts all_random, all_risk;
    uint32_t budget = 0;
    for (const v1::NodeSelectionEvaluation& e : task.selection_evaluations()) {
      const auto random = FromProto(e.evaluation().random());
      const auto risk = FromProto(e.evaluation().risk_selected());
      budget = e.evaluation().budget_percent();
      control[e.node()] = EstimatesJson(random, risk, budget);
      control[e.node()]["round_id"] = e.round_id();
      for (auto [from, to] : {std::pair{&random, &all_random}, std::pair{&risk, &all_risk}}) {
        to->rows += from->rows;
        to->positives += from->positives;
        to->flagged += from->flagged;
        to->flagged_positives += from->flagged_positives;
      }
    }
    control["all"] = EstimatesJson(all_random, all_risk, budget);
    json["tasks"][t]["random_control"] = control;
  }
  return json;
}

}  // namespace fedcustoms::node
