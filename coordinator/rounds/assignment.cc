#include "coordinator/rounds/assignment.h"

#include <algorithm>

#include "common/secagg/secagg_messages.h"

namespace fedcustoms::coordinator {
namespace {

// The round, version and deadline every step carries.
void SetStep(v1::TaskAssignment& a, v1::TaskAssignment::Kind kind, const RoundState& round,
             uint64_t version, const AssignmentContext& context) {
  a.set_kind(kind);
  a.set_round_id(round.id);
  a.set_model_version(version);
  const auto left = std::chrono::duration_cast<std::chrono::seconds>(round.deadline - context.now);
  a.set_deadline_seconds(static_cast<uint32_t>(std::max<int64_t>(left.count(), 0)));
}

// The signed manifest and model config of the model the step downloads.
void SetModel(v1::TaskAssignment& a, const ModelSnapshot& model, const AssignmentContext& context) {
  task::CopyModelConfig(context.model, &a);
  a.set_manifest_json(model.manifest.json);
  a.set_manifest_signature(model.manifest.signature);
}

// The secure steps: the key phases, confirming survivors and unmasking.
void SetSecureStep(v1::TaskAssignment& a, const RoundState& round, const std::string& node,
                   const AssignmentContext& context) {
  const SecureRound& secure = *round.secure;
  if (round.phase == RoundPhase::kAdvertising && round.selected.contains(node) &&
      !secure.Advertised(node)) {
    SetStep(a, v1::TaskAssignment::ADVERTISE_KEYS, round, context.global.version, context);
  } else if (round.phase == RoundPhase::kSharing && secure.InU1(node) && !secure.Shared(node)) {
    SetStep(a, v1::TaskAssignment::SHARE_KEYS, round, context.global.version, context);
  } else if (round.phase == RoundPhase::kConfirming && secure.InU3(node) &&
             !secure.Confirmed(node)) {
    SetStep(a, v1::TaskAssignment::CONFIRM_SURVIVORS, round, context.global.version, context);
  } else if (round.phase == RoundPhase::kUnmasking && secure.Confirmed(node) &&
             !secure.Revealed(node)) {
    SetStep(a, v1::TaskAssignment::UNMASK, round, context.global.version, context);
  } else {
    return;
  }
  *a.mutable_secure() = round.secure_params;
  if (a.kind() == v1::TaskAssignment::SHARE_KEYS) {
    for (const secagg::SignedAdvertisement& ad : secure.advertisements()) {
      *a.mutable_secure()->add_advertisements() = secagg::ToProto(ad);
    }
  } else {
    for (const std::string& u : secure.u3()) a.mutable_secure()->add_masked_input_from(u);
    if (a.kind() == v1::TaskAssignment::UNMASK) {
      for (const auto& [signer, signature] : secure.survivor_signatures()) {
        v1::SurvivorSignature* s = a.mutable_secure()->add_survivor_signatures();
        s->set_node(signer);
        s->set_signature(signature);
      }
    }
  }
}

}  // namespace

v1::TaskAssignment AssignmentFor(const RoundState& round, const std::string& node,
                                 const AssignmentContext& context) {
  v1::TaskAssignment a;
  a.set_task(context.config.name());
  a.set_kind(v1::TaskAssignment::WAIT);
  const bool key_phase =
      round.phase == RoundPhase::kAdvertising || round.phase == RoundPhase::kSharing ||
      round.phase == RoundPhase::kConfirming || round.phase == RoundPhase::kUnmasking;
  if (round.phase == RoundPhase::kFinished) {
    a.set_kind(v1::TaskAssignment::FINISHED);
  } else if (round.phase == RoundPhase::kTraining && round.selected.contains(node) &&
             !round.submitted.contains(node) && !round.uploading.contains(node)) {
    SetStep(a, v1::TaskAssignment::TRAIN, round, context.global.version, context);
    *a.mutable_training() = context.config.training();
    SetModel(a, context.global, context);
    if (round.secure) {
      *a.mutable_secure() = round.secure_params;
      for (const secagg::SealedShares& shares : round.secure->SharesFor(node)) {
        *a.mutable_secure()->add_shares() = secagg::ToProto(shares);
      }
    }
  } else if (round.secure && key_phase) {
    SetSecureStep(a, round, node, context);
  } else if (round.phase == RoundPhase::kBoosting && round.boosting) {
    if (std::optional<v1::BoostingStep> step = round.boosting->StepFor(node)) {
      SetStep(a, v1::TaskAssignment::BOOST, round, context.global.version, context);
      task::CopyModelConfig(context.model, &a);
      *a.mutable_boosting() = *std::move(step);
      a.mutable_boosting()->set_crl_pem(round.boosting_crl_pem);
    }
  } else if (round.phase == RoundPhase::kEvaluating && context.candidate != nullptr &&
             round.evaluators.contains(node) && !round.reported.contains(node)) {
    SetStep(a, v1::TaskAssignment::EVALUATE, round, context.candidate->version, context);
    SetModel(a, *context.candidate, context);
  }
  // The node checks the privacy terms against its own budget before it
  // commits keys or trains.
  if (a.kind() == v1::TaskAssignment::TRAIN || a.kind() == v1::TaskAssignment::ADVERTISE_KEYS) {
    *a.mutable_privacy() = context.config.privacy();
    *a.mutable_training() = context.config.training();
  }
  return a;
}

}  // namespace fedcustoms::coordinator
