#include "common/secagg/shamir.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <optional>
#include <span>
#include <unordered_map>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/openssl_error.h"

namespace fedcustoms::secagg {
namespace {

template <typename T>
void Wipe(std::vector<T>& values) {
  if (!values.empty()) OPENSSL_cleanse(values.data(), values.size() * sizeof(T));
}

absl::Status CheckSecretBytes(size_t secret_bytes) {
  if (secret_bytes == 0) return absl::InvalidArgumentError("secret is empty");
  if (secret_bytes > kMaxSecretBytes) {
    return absl::InvalidArgumentError(absl::StrCat("secret is ", secret_bytes, " bytes; at most ",
                                                   kMaxSecretBytes, " are supported"));
  }
  return absl::OkStatus();
}

// Fills `out` with uniformly random field elements.
absl::Status RandomFieldElements(std::span<uint64_t> out) {
  if (out.empty()) return absl::OkStatus();
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()),
                 static_cast<int>(out.size_bytes())) != 1) {
    return crypto::OpenSslError(absl::StatusCode::kInternal,
                                "RAND_bytes failed drawing Shamir polynomial coefficients");
  }
  for (uint64_t& element : out) {
    std::optional<uint64_t> reduced = field::FromRandomWord(element);
    while (!reduced.has_value()) {
      uint64_t word = 0;
      if (RAND_bytes(reinterpret_cast<unsigned char*>(&word), sizeof(word)) != 1) {
        return crypto::OpenSslError(absl::StatusCode::kInternal,
                                    "RAND_bytes failed redrawing a Shamir coefficient");
      }
      reduced = field::FromRandomWord(word);
      OPENSSL_cleanse(&word, sizeof(word));
    }
    element = *reduced;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckThreshold(uint32_t threshold, uint32_t n) {
  if (n > kMaxShares) {
    return absl::InvalidArgumentError(
        absl::StrCat("n = ", n, " shares exceeds the maximum of ", kMaxShares));
  }
  if (threshold < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("threshold ", threshold, " of n = ", n,
                     " is below 2: with threshold 1 every single share is the secret itself"));
  }
  if (threshold > n) {
    return absl::InvalidArgumentError(absl::StrCat("threshold ", threshold, " exceeds n = ", n,
                                                   " shares: the secret could never be "
                                                   "reconstructed"));
  }
  if (uint64_t{2} * threshold <= n) {
    return absl::InvalidArgumentError(absl::StrCat(
        "threshold ", threshold, " of n = ", n,
        " is unsafe: it must exceed n/2 so that two disjoint groups of shareholders can "
        "never both reconstruct the secret"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ShamirShare>> SplitSecret(std::span<const uint8_t> secret,
                                                     uint32_t threshold, uint32_t n) {
  if (absl::Status status = CheckThreshold(threshold, n); !status.ok()) return status;
  if (absl::Status status = CheckSecretBytes(secret.size()); !status.ok()) return status;

  const size_t limbs = LimbCount(secret.size());
  std::vector<ShamirShare> shares(n);
  for (uint32_t i = 0; i < n; ++i) {
    shares[i].x = i + 1;
    shares[i].y.resize(limbs);
  }

  // coefficients[0] is the limb itself, the rest random; together they are
  // the secret, so they are wiped on every path out.
  std::vector<uint64_t> coefficients(threshold);
  absl::Cleanup wipe = [&coefficients] { Wipe(coefficients); };
  for (size_t limb = 0; limb < limbs; ++limb) {
    const size_t begin = limb * kLimbBytes;
    const size_t end = std::min(begin + kLimbBytes, secret.size());
    coefficients[0] = 0;
    for (size_t b = end; b > begin; --b) coefficients[0] = (coefficients[0] << 8) | secret[b - 1];
    if (absl::Status status = RandomFieldElements(std::span(coefficients).subspan(1));
        !status.ok()) {
      return status;
    }
    for (ShamirShare& share : shares) {
      uint64_t y = coefficients[threshold - 1];
      for (size_t k = threshold - 1; k > 0; --k) {
        y = field::Add(field::Mul(y, share.x), coefficients[k - 1]);
      }
      share.y[limb] = y;
    }
  }
  return shares;
}

absl::StatusOr<std::vector<uint8_t>> ReconstructSecret(std::span<const ShamirShare> shares,
                                                       uint32_t threshold, size_t secret_bytes) {
  if (threshold < 2 || threshold > kMaxShares) {
    return absl::InvalidArgumentError(
        absl::StrCat("threshold ", threshold, " is outside 2..", kMaxShares));
  }
  if (absl::Status status = CheckSecretBytes(secret_bytes); !status.ok()) return status;
  if (shares.size() < threshold) {
    return absl::InvalidArgumentError(
        absl::StrCat("got ", shares.size(), " shares; reconstruction needs threshold ", threshold));
  }

  const size_t limbs = shares[0].y.size();
  std::unordered_map<uint32_t, size_t> index_of_x;
  for (size_t i = 0; i < shares.size(); ++i) {
    const ShamirShare& share = shares[i];
    if (share.x == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("share ", i, " has x = 0, the point that holds the secret itself"));
    }
    if (auto [it, inserted] = index_of_x.emplace(share.x, i); !inserted) {
      return absl::InvalidArgumentError(
          absl::StrCat("shares ", it->second, " and ", i, " both have x = ", share.x));
    }
    if (share.y.size() != limbs) {
      return absl::InvalidArgumentError(
          absl::StrCat("share ", i, " has ", share.y.size(), " limbs but share 0 has ", limbs));
    }
    for (size_t limb = 0; limb < limbs; ++limb) {
      if (share.y[limb] >= field::kPrime) {
        return absl::InvalidArgumentError(absl::StrCat("share ", i, " limb ", limb, " is ",
                                                       share.y[limb],
                                                       ", not below the field prime 2^61 - 1"));
      }
    }
  }
  if (limbs != LimbCount(secret_bytes)) {
    return absl::InvalidArgumentError(absl::StrCat("shares have ", limbs, " limbs but a ",
                                                   secret_bytes, "-byte secret has ",
                                                   LimbCount(secret_bytes)));
  }

  // Lagrange basis at 0: l_i = prod_{j != i} x_j / (x_j - x_i). The x are
  // distinct and below p, so no denominator is zero.
  const std::span<const ShamirShare> used = shares.first(threshold);
  std::vector<uint64_t> basis(threshold);
  for (size_t i = 0; i < threshold; ++i) {
    uint64_t numerator = 1;
    uint64_t denominator = 1;
    for (size_t j = 0; j < threshold; ++j) {
      if (j == i) continue;
      numerator = field::Mul(numerator, used[j].x);
      denominator = field::Mul(denominator, field::Sub(used[j].x, used[i].x));
    }
    basis[i] = field::Mul(numerator, field::Inverse(denominator));
  }

  std::vector<uint8_t> secret(secret_bytes);
  absl::Cleanup wipe_on_error = [&secret] { Wipe(secret); };
  for (size_t limb = 0; limb < limbs; ++limb) {
    uint64_t value = 0;
    for (size_t i = 0; i < threshold; ++i) {
      value = field::Add(value, field::Mul(basis[i], used[i].y[limb]));
    }
    const size_t begin = limb * kLimbBytes;
    const size_t width = std::min(kLimbBytes, secret_bytes - begin);
    if ((value >> (8 * width)) != 0) {
      OPENSSL_cleanse(&value, sizeof(value));
      return absl::InvalidArgumentError(
          absl::StrCat("limb ", limb, " reconstructs to a value wider than its ", width,
                       "-byte slot of the secret: the shares are wrong or have been tampered "
                       "with"));
    }
    for (size_t b = 0; b < width; ++b) secret[begin + b] = static_cast<uint8_t>(value >> (8 * b));
    OPENSSL_cleanse(&value, sizeof(value));
  }
  std::move(wipe_on_error).Cancel();
  return secret;
}

}  // namespace fedcustoms::secagg
