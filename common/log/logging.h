#pragma once

#include <fmt/format.h>

#include <string_view>

#include "absl/strings/string_view.h"

namespace fedcustoms::log {

// Configures the process-wide spdlog logger for one component ("coordinator",
// "node EE", ...): text lines by default, one JSON object per line when `json`
// is set. Call once at the top of main, before any thread starts.
void InitLogging(std::string_view component, bool json);

}  // namespace fedcustoms::log

// Debian's abseil has its own string_view type (absl::Status::message()
// returns it); let spdlog/fmt format it like std::string_view.
template <>
struct fmt::formatter<absl::string_view> : fmt::formatter<std::string_view> {
  template <typename FormatContext>
  auto format(absl::string_view s, FormatContext& ctx) const {
    return fmt::formatter<std::string_view>::format(std::string_view(s.data(), s.size()), ctx);
  }
};
