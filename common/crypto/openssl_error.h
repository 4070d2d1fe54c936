#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace fedcustoms::crypto {

// Empties this thread's OpenSSL error queue and returns its entries, oldest
// first, joined with "; " (reason strings plus any detail OpenSSL attached).
// Returns "no OpenSSL error detail" when the queue was empty, so a message built
// from it never ends in a dangling colon. Call it right after the failing
// OpenSSL call, on the same thread.
std::string DrainOpenSslErrors();

// Returns a status with `code` and the message "<context>: <drained errors>".
// `context` should name what failed and the file or peer involved.
absl::Status OpenSslError(absl::StatusCode code, const std::string& context);

}  // namespace fedcustoms::crypto
