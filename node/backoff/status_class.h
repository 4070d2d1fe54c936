#pragma once

#include "absl/status/status.h"

namespace fedcustoms::node {

// What the node does after a step of a round failed. The one place where the
// node's retry policy is decided: every call site asks Classify.
enum class StatusClass {
  kOk,
  // Transient: the network, a coordinator restarting or busy, a reset stream.
  // The same step is tried again under backoff.
  kRetry,
  // This node cannot do this round: the coordinator refused the step (a closed
  // round, a rejected update), or the node's own work failed in a way that
  // would fail again (training diverged on this data, a secure step the node
  // refuses). The node waits for the next round; retrying would repeat it.
  kSitOut,
  // Credentials: the coordinator does not accept this node's certificate or
  // the node does not accept the coordinator's signature. No retry can help;
  // the node stops with the message.
  kFatal,
};

// Classifies by status code:
//   OK → kOk;
//   UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED, ABORTED, INTERNAL, UNKNOWN →
//     kRetry (gRPC reports a broken transport as UNAVAILABLE, and a reset
//     stream or a cut TLS record as INTERNAL or UNKNOWN);
//   PERMISSION_DENIED, UNAUTHENTICATED → kFatal;
//   every other code → kSitOut.
// Because INTERNAL means "retry", a node-local failure that would repeat must
// not be reported as INTERNAL: see LocalTrainingFailure.
StatusClass Classify(const absl::Status& status);

// The status Node reports when its learner failed to train an assignment (a
// NaN loss, a model that does not fit the data): FAILED_PRECONDITION with the
// learner's message, which Classify puts in kSitOut whatever code the learner
// used. Training again from the same global model and data would fail again.
absl::Status LocalTrainingFailure(const absl::Status& learner_status);

}  // namespace fedcustoms::node
