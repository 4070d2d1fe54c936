#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/secagg/secagg_round.h"
#include "fedcustoms/v1/node_service.pb.h"

namespace fedcustoms::secagg {

// Conversions between the secure-aggregation library's values and the node
// service's messages. Every From* checks sizes and duplicates and names the
// offending field, so malformed input from the network never reaches the
// protocol code.

v1::SignedKeys ToProto(const SignedAdvertisement& advertisement);
// The advertisement of `keys.node` for (task, round_id); InvalidArgument if a
// public key is not 32 bytes or a field is empty.
absl::StatusOr<SignedAdvertisement> FromProto(const v1::SignedKeys& keys, const std::string& task,
                                              uint64_t round_id);

// The public terms a secure assignment announces.
RoundTerms TermsOf(const v1::SecureRound& params);

v1::SealedShare ToProto(const SealedShares& shares);
SealedShares FromProto(const v1::SealedShare& shares);

// The reason stays with the node (its log); the coordinator judges the
// evidence, not the claim.
v1::ShareComplaint ToProto(const ShareComplaint& complaint);
// InvalidArgument when the share key is neither empty nor 32 bytes.
absl::StatusOr<ShareComplaint> FromProto(const v1::ShareComplaint& complaint);

// Fills the request's two share lists.
void ToProto(const UnmaskShares& shares, v1::UnmaskRequest* request);
// InvalidArgument on a duplicate owner, a share with x = 0 or a y value
// outside the field.
absl::StatusOr<UnmaskShares> FromProto(const v1::UnmaskRequest& request);

}  // namespace fedcustoms::secagg
