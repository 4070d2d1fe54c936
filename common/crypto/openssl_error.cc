#include "common/crypto/openssl_error.h"

#include <openssl/err.h>

#include <array>

#include "absl/strings/str_cat.h"

namespace fedcustoms::crypto {

std::string DrainOpenSslErrors() {
  std::string out;
  const char* data = nullptr;
  int flags = 0;
  while (unsigned long code = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags)) {
    std::array<char, 256> text{};
    ERR_error_string_n(code, text.data(), text.size());
    if (!out.empty()) out += "; ";
    out += text.data();
    if (data != nullptr && (flags & ERR_TXT_STRING) != 0 && *data != '\0') {
      absl::StrAppend(&out, " (", data, ")");
    }
  }
  if (out.empty()) return "no OpenSSL error detail";
  return out;
}

absl::Status OpenSslError(absl::StatusCode code, const std::string& context) {
  return absl::Status(code, absl::StrCat(context, ": ", DrainOpenSslErrors()));
}

}  // namespace fedcustoms::crypto
