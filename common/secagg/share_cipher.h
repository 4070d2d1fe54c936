#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/secagg/key_agreement.h"

namespace fedcustoms::secagg {

// Authenticated encryption of the Shamir shares one node sends another through
// the coordinator, which relays them but must not read or alter them:
// AES-256-GCM under a key the two nodes agreed (X25519 + HKDF), a fresh random
// 96-bit nonce per message, and associated data that binds the message to its
// sender, receiver, task and round, so a share cannot be replayed into another
// round or redirected to another node.
//
// Sealed layout: nonce (12 bytes) | ciphertext | tag (16 bytes).
inline constexpr size_t kNonceBytes = 12;
inline constexpr size_t kTagBytes = 16;

// The associated data of one share message, as fixed text. `u1_digest` is
// the AdvertisedKeysDigest of the U1 the sender dealt for: a receiver shown
// another U1 cannot open the message (and so checks its signature, which
// fails, before anything is revealed).
std::string ShareAssociatedData(std::string_view task, uint64_t round_id, std::string_view sender,
                                std::string_view receiver, std::string_view u1_digest);

// SHA-256 (raw, 32 bytes) over a fixed label and the key one share message
// is sealed under. The sender signs it with the message; a receiver that
// cannot use the message reveals the key, and whoever holds the signed
// commitment can check it is the sender's key and open that one message
// (keys are per direction: no other message opens with it). The key is 32
// random bytes, so the commitment tells nothing of it.
std::string CommitToShareKey(const SharedKey& key);

absl::StatusOr<std::string> SealShare(const SharedKey& key, std::string_view plaintext,
                                      std::string_view associated_data);

// DataLoss "share message failed authentication ..." when the message was
// altered, sealed under another key, or bound to other associated data (another
// round, sender or receiver); InvalidArgument when it is too short to be one.
absl::StatusOr<std::string> OpenShare(const SharedKey& key, std::string_view sealed,
                                      std::string_view associated_data);

}  // namespace fedcustoms::secagg
