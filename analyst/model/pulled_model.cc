#include "analyst/model/pulled_model.h"

#include <google/protobuf/util/json_util.h>

#include "absl/strings/str_cat.h"
#include "analyst/model/model_puller.h"
#include "common/data/declaration_schema.h"

namespace fedcustoms::analyst {
namespace {

absl::Status ParseHyperparameters(const std::string& json, const std::string& dir,
                                  google::protobuf::Message* config) {
  if (!google::protobuf::util::JsonStringToMessage(json, config).ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        dir, "/manifest.json: hyperparameters do not parse as ", config->GetDescriptor()->name()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<PulledModel> LoadPulledModel(const std::string& dir,
                                            const std::string& public_key_path,
                                            const v1::DeclarationSchema& schema) {
  std::string weights;
  auto manifest = VerifyPulledModel(dir, public_key_path, &weights);
  if (!manifest.ok()) return manifest.status();
  PulledModel pulled;
  pulled.manifest = *std::move(manifest);
  task::ModelSpec& spec = pulled.spec;
  const std::string& architecture = pulled.manifest.architecture;
  absl::Status parsed;
  if (architecture == task::ArchitectureName(v1::TASK_RISK) || architecture == "boosted_trees") {
    spec.kind = v1::TASK_RISK;
    parsed = ParseHyperparameters(pulled.manifest.hyperparameters_json, dir, &spec.risk);
  } else if (architecture == task::ArchitectureName(v1::TASK_ANOMALY)) {
    spec.kind = v1::TASK_ANOMALY;
    parsed = ParseHyperparameters(pulled.manifest.hyperparameters_json, dir, &spec.anomaly);
  } else if (architecture == task::ArchitectureName(v1::TASK_XRAY)) {
    spec.kind = v1::TASK_XRAY;
    parsed = ParseHyperparameters(pulled.manifest.hyperparameters_json, dir, &spec.xray);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(dir, "/manifest.json: architecture \"",
                                                   architecture, "\" is not one this build knows"));
  }
  if (!parsed.ok()) return parsed;
  if (spec.kind == v1::TASK_RISK && task::ArchitectureName(spec) != architecture) {
    return absl::InvalidArgumentError(
        absl::StrCat(dir, "/manifest.json: architecture \"", architecture,
                     "\" does not match the hyperparameters' model kind (",
                     std::string(task::ArchitectureName(spec)), ")"));
  }
  if (spec.uses_declarations()) spec.schema = schema;
  if (const std::string hash = task::InputHash(spec); hash != pulled.manifest.feature_schema_hash) {
    return absl::FailedPreconditionError(absl::StrCat(
        dir, ": the model was trained on features hashing to ", pulled.manifest.feature_schema_hash,
        spec.uses_declarations() ? ", but the given schema's features hash to "
                                 : ", but its own X-ray input hashes to ",
        hash));
  }
  // The bytes whose SHA-256 was verified, not the file read a second time.
  auto state = tensor::ParsePickledState(weights, dir + "/" + pulled.manifest.weights_file);
  if (!state.ok()) return state.status();
  pulled.state = *std::move(state);
  return pulled;
}

}  // namespace fedcustoms::analyst
