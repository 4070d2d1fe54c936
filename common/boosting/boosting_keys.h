#pragma once

#include <cstdint>
#include <string>

#include "common/secagg/key_agreement.h"

namespace fedcustoms::boosting {

// The bytes a member signs with its certificate key to advertise its X25519
// key for one boosting session: a fixed label, then task, round, node and
// the key, each length-prefixed, so that no advertisement of a secure round
// (another label) or of another session verifies as this one.
std::string BoostingKeyPayload(const std::string& task, uint64_t round_id, const std::string& node,
                               const secagg::X25519PublicKey& key);

// The HKDF context of the pairwise key two members agree for a session:
// both sides build the same string (the names in order).
std::string PairContext(const std::string& task, uint64_t round_id, const std::string& a,
                        const std::string& b);

}  // namespace fedcustoms::boosting
