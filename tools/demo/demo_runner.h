#pragma once

#include <string>

#include "absl/status/status.h"

namespace fedcustoms::tools {

struct DemoOptions {
  // "risk", "anomaly" or "xray".
  std::string task = "risk";
  std::string workdir = "demo";
  uint32_t nodes = 3;
  uint32_t rounds = 5;
  // Declarations of the largest administration (others are smaller).
  uint64_t rows = 80000;
  // X-ray images per administration (task xray).
  uint64_t images = 1500;
  uint64_t seed = 7;
  // Give up after this long.
  uint32_t timeout_seconds = 600;
  // With a value > 0 the declaration tasks train with DP-SGD at every node,
  // the noise calibrated so that the rounds spend this ε per administration
  // (δ 1e-5, clip norm 1); the local-only baselines stay non-private.
  double epsilon = 0;
};

// `fedcustoms demo`: the whole federation from nothing on one machine —
// development PKI, synthetic declarations per administration, a coordinator
// process and one node process per administration over mutual TLS on
// loopback, the rounds, an analyst pull of the final model, and a local-only
// baseline per administration. Prints progress per round and writes
// workdir/summary.json. Fails with a clear message if any step fails or, for
// the risk task, if the federated model does not beat local-only training on
// every hold-out (for anomaly and xray the comparison is reported only).
//
// Task anomaly federates the risk task beside it (a second node process per
// administration, in nodes/<CODE>-risk, its model pulled into pulled-risk)
// and adds a step: on each hold-out, the share of the emerging scheme's
// frauds (synthetic over-invoicing that begins after the training period)
// and of the known patterns' frauds that each model, and half the budget
// each, puts in the top 1 % and 5 % (summary.json "emerging_scheme").
absl::Status RunDemo(const DemoOptions& options);

}  // namespace fedcustoms::tools
