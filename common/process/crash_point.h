#pragma once

#include <string_view>

namespace fedcustoms::process {

// Deterministic kill -9 for the crash-safety tests. When the environment
// variable FEDCUSTOMS_CRASH_POINT is "<name>" or "<name>@<n>" and a thread
// reaches CrashPoint("<name>") (for the n-th time, first by default), the
// process writes one line to stderr and sends itself SIGKILL: nothing after
// that point runs — no destructor, no flush, no rename — exactly as if an
// operator's kill -9 had landed there. Without the variable a crash point is
// one relaxed atomic load.
//
// The points (see docs/reliability.md):
//   coordinator.broadcast   a model download has sent its first chunk
//   coordinator.upload      an update upload has spooled its first chunk
//   coordinator.aggregate   the candidate's wire file is written, not yet
//                           evaluated or published
//   registry.staged         a version's files are complete in the staging
//                           directory, not yet renamed into place
//   coordinator.published   a version is in the registry, its round not yet
//                           in the ledger
//   node.training           a node has the round's model and starts training
//   node.upload             a node has sent a chunk of its update, not the
//                           final one
void CrashPoint(std::string_view name);

}  // namespace fedcustoms::process
