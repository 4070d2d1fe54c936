#pragma once

#include <map>
#include <string>

#include "absl/status/status.h"
#include "common/privacy/privacy_config.h"
#include "fedcustoms/v1/config.pb.h"
#include "fedcustoms/v1/node_service.pb.h"

namespace fedcustoms::coordinator {

// Checks what `node` reports it has spent with its update against the task's
// terms: a report exactly when the task uses DP-SGD, with the task's δ and C,
// at least one segment, and an ε that its segments give (recomputed here with
// the product's accountant, to 1e-9 relative). INVALID_ARGUMENT naming the
// node and the figure otherwise (the update is rejected). The coordinator
// cannot see whether the node really trained so; each administration answers
// for its own records.
//
// Beyond arithmetic, the report must be this node's history moving forward:
// its last round is `expected` (the plan the coordinator computes for the
// node's declared rows: q, σ and steps), and against its entry in
// `published_block` (the privacy block of the global model's manifest;
// empty for none) it has more rounds and, for every (q, σ), at least the
// steps published before (rounds that were aborted count too, so more is
// allowed, never less). So no node can make its published ε go down or
// report a round it did not take.
absl::Status CheckPrivacyReport(const v1::PrivacyConfig& task, const std::string& node,
                                const v1::UpdateHeader& header,
                                const privacy::DpSgdPlan* expected = nullptr,
                                const std::string& published_block = "");

// The manifest's "privacy" block (JSON text) of a version built on a parent
// whose block is `parent_block` (empty for v0) by a round whose contributors
// reported `reports`:
//   mode NONE: {"mechanism": "none", "epsilon": null, "delta": null}
//   DP_SGD:    {"mechanism": "dp-sgd", "unit": ..., "accountant": ...,
//               "clip_norm": C, "delta": δ, "epsilon": the largest ε,
//               "administrations": {code: {"epsilon", "rounds", "segments":
//               [{"sampling_rate", "noise_multiplier", "steps"}]}}}
// Every administration that ever contributed stays in the block with its
// latest report (its records shaped every later version too). A DP version
// whose parent was trained without DP (a parent block with mechanism "none"
// at a version above 0) has "epsilon": null and says so in "caveat": no
// guarantee holds for the records that trained the parent.
std::string PrivacyBlock(const v1::PrivacyConfig& task, uint64_t parent_version,
                         const std::string& parent_block,
                         const std::map<std::string, v1::PrivacySpent>& reports);

}  // namespace fedcustoms::coordinator
