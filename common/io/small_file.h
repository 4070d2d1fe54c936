#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace fedcustoms::io {

// The whole file at `path`, read in chunks so that a file larger than
// `max_bytes` (or a pipe) is refused without reading it all. Errors name the
// path: NotFound when it cannot be opened, InvalidArgument for a directory or
// "<path>: larger than <max_bytes> bytes, the most <what> may have",
// DataLoss on a read error.
absl::StatusOr<std::string> ReadSmallFile(const std::string& path, size_t max_bytes,
                                          std::string_view what);

}  // namespace fedcustoms::io
