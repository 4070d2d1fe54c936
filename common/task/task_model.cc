#include "common/task/task_model.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/config/proto_json.h"
#include "common/crypto/sha256.h"
#include "common/data/declaration_schema.h"
#include "common/models/anomaly_autoencoder.h"
#include "common/models/xray_cnn.h"
#include "common/task/risk_task.h"
#include "common/xray/xray_model_config.h"

namespace fedcustoms::task {
namespace {

std::string JsonOf(const google::protobuf::Message& message) {
  return config::PrintProtoJson(message).value_or("{}");
}

}  // namespace

v1::TaskKind ResolveKind(v1::TaskKind kind, std::string_view task_name) {
  if (kind != v1::TASK_KIND_UNSPECIFIED) return kind;
  if (task_name == "anomaly") return v1::TASK_ANOMALY;
  if (task_name == "xray") return v1::TASK_XRAY;
  return v1::TASK_RISK;
}

std::string_view KindName(v1::TaskKind kind) {
  switch (kind) {
    case v1::TASK_ANOMALY:
      return "anomaly";
    case v1::TASK_XRAY:
      return "xray";
    default:
      return "risk";
  }
}

ModelSpec SpecOf(const v1::TaskConfig& config, v1::DeclarationSchema schema) {
  ModelSpec spec;
  spec.kind = ResolveKind(config.kind(), config.name());
  spec.schema = std::move(schema);
  spec.risk = models::WithDefaults(config.model());
  spec.anomaly = models::WithDefaults(config.anomaly_model());
  spec.xray = xray::WithXrayDefaults(config.xray_model());
  return spec;
}

ModelSpec SpecOf(const v1::TaskAssignment& assignment, v1::DeclarationSchema schema) {
  ModelSpec spec;
  spec.kind = ResolveKind(assignment.task_kind(), assignment.task());
  spec.schema = std::move(schema);
  spec.risk = models::WithDefaults(assignment.model());
  spec.anomaly = models::WithDefaults(assignment.anomaly_model());
  spec.xray = xray::WithXrayDefaults(assignment.xray_model());
  return spec;
}

void CopyModelConfig(const ModelSpec& spec, v1::TaskAssignment* assignment) {
  assignment->set_task_kind(spec.kind);
  switch (spec.kind) {
    case v1::TASK_ANOMALY:
      *assignment->mutable_anomaly_model() = spec.anomaly;
      break;
    case v1::TASK_XRAY:
      *assignment->mutable_xray_model() = spec.xray;
      break;
    default:
      *assignment->mutable_model() = spec.risk;
      break;
  }
}

absl::Status FinalizeTaskModel(v1::TaskConfig* config) {
  config->set_kind(ResolveKind(config->kind(), config->name()));
  switch (config->kind()) {
    case v1::TASK_ANOMALY: {
      *config->mutable_anomaly_model() = models::WithDefaults(config->anomaly_model());
      // Widths are checked again against the schema when the model is built.
      absl::Status s = models::CheckAnomalyAutoencoderArgs(1, {2}, config->anomaly_model());
      if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat("anomaly_model: ", s.message()));
      return absl::OkStatus();
    }
    case v1::TASK_XRAY:
      *config->mutable_xray_model() = xray::WithXrayDefaults(config->xray_model());
      return models::CheckXrayCnnConfig(config->xray_model(), "xray_model");
    default: {
      absl::Status s = FinalizeRiskModelConfig(config->mutable_model());
      if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat("model: ", s.message()));
      return absl::OkStatus();
    }
  }
}

std::string_view ArchitectureName(v1::TaskKind kind) {
  switch (kind) {
    case v1::TASK_ANOMALY:
      return "anomaly_autoencoder";
    case v1::TASK_XRAY:
      return "xray_cnn";
    default:
      return "risk_mlp";
  }
}

bool IsBoostedTrees(const ModelSpec& spec) {
  return spec.kind == v1::TASK_RISK && spec.risk.kind() == v1::RiskModelConfig::BOOSTED_TREES;
}

std::string_view ArchitectureName(const ModelSpec& spec) {
  return IsBoostedTrees(spec) ? "boosted_trees" : ArchitectureName(spec.kind);
}

std::string HyperparametersJson(const ModelSpec& spec) {
  switch (spec.kind) {
    case v1::TASK_ANOMALY:
      return JsonOf(spec.anomaly);
    case v1::TASK_XRAY:
      return JsonOf(spec.xray);
    default:
      return JsonOf(spec.risk);
  }
}

std::string InputSummaryJson(const ModelSpec& spec) {
  if (spec.uses_declarations()) return FeatureSchemaSummaryJson(spec.schema);
  nlohmann::json classes = nlohmann::json::array();
  for (const std::string& c : spec.xray.classes()) classes.push_back(c);
  return nlohmann::json{{"image_size", spec.xray.image_size()},
                        {"input_channels", spec.xray.input_channels()},
                        {"classes", classes}}
      .dump();
}

std::string InputHash(const ModelSpec& spec) {
  if (spec.uses_declarations()) return data::FeatureSchemaHash(spec.schema);
  return crypto::Sha256Hex(InputSummaryJson(spec));
}

absl::StatusOr<tensor::NamedTensors> InitialState(const ModelSpec& spec, uint64_t seed) {
  switch (spec.kind) {
    case v1::TASK_ANOMALY: {
      int64_t numeric = 0;
      std::vector<uint32_t> buckets;
      FeatureWidths(spec.schema, &numeric, &buckets);
      if (absl::Status s = models::CheckAnomalyAutoencoderArgs(numeric, buckets, spec.anomaly);
          !s.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("cannot build the anomaly model for this schema: ", s.message()));
      }
      models::AnomalyAutoencoder model(numeric, buckets, spec.anomaly, seed);
      return tensor::StateOf(*model);
    }
    case v1::TASK_XRAY: {
      if (absl::Status s = models::CheckXrayCnnConfig(spec.xray); !s.ok()) return s;
      models::XrayCnn model(spec.xray, seed);
      return tensor::StateOf(*model);
    }
    default:
      return InitialRiskState(spec.schema, spec.risk, seed);
  }
}

}  // namespace fedcustoms::task
