#pragma once

#include <string>

#include "common/task/task_model.h"
#include "coordinator/rounds/clock.h"
#include "coordinator/rounds/model_snapshot.h"
#include "coordinator/rounds/round_state.h"
#include "fedcustoms/v1/config.pb.h"
#include "fedcustoms/v1/node_service.pb.h"

namespace fedcustoms::coordinator {

// What an assignment is made from besides the round: the task and the models
// of the round. References: the caller holds them (and its lock) meanwhile.
struct AssignmentContext {
  const v1::TaskConfig& config;
  const task::ModelSpec& model;
  const ModelSnapshot& global;
  const ModelSnapshot* candidate;  // while evaluating; else null
  Clock::time_point now;           // for the seconds left until the deadline
};

// The step `node` has to take now in `round`, or WAIT: TRAIN the global model
// (with the sealed shares for it in mode SECURE) while it is selected and has
// not uploaded, ADVERTISE_KEYS / SHARE_KEYS / UNMASK in the key phases while
// it belongs to the phase's set and has not acted, EVALUATE the candidate
// while it contributed and has not reported, FINISHED once the task's rounds
// are done. Every step (all but WAIT and FINISHED) carries the round, the
// model version and the seconds left; the secure ones carry the round's
// parameters.
v1::TaskAssignment AssignmentFor(const RoundState& round, const std::string& node,
                                 const AssignmentContext& context);

}  // namespace fedcustoms::coordinator
