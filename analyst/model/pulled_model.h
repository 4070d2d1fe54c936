#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "common/manifest/model_manifest.h"
#include "common/task/task_model.h"
#include "common/tensor/named_tensors.h"
#include "fedcustoms/v1/schema.pb.h"

namespace fedcustoms::analyst {

// A pulled global model, verified and ready to build: its manifest, the spec
// rebuilt from the manifest's architecture and hyper-parameters, and its
// weights.
struct PulledModel {
  manifest::ModelManifest manifest;
  task::ModelSpec spec;
  tensor::NamedTensors state;
};

// Loads a directory written by PullModel(): verifies the manifest's signature
// with `public_key_path` and model.pt's SHA-256 (VerifyPulledModel), rebuilds
// the spec, and reads the weights. For a declaration model (risk, anomaly)
// `schema` must be the federation's: its feature hash must equal the
// manifest's, or the error says the model was trained on other features. An
// X-ray model ignores `schema`. Errors name the directory and the field.
absl::StatusOr<PulledModel> LoadPulledModel(const std::string& dir,
                                            const std::string& public_key_path,
                                            const v1::DeclarationSchema& schema);

}  // namespace fedcustoms::analyst
