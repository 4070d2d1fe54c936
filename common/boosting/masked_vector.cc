#include "common/boosting/masked_vector.h"

#include <openssl/crypto.h>

#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/boosting/boosting_keys.h"
#include "common/secagg/mask_generator.h"

namespace fedcustoms::boosting {
namespace {

constexpr int kDigitBits = 24;
constexpr uint32_t kDigitMask = (1u << kDigitBits) - 1;
constexpr double kScale = 0x1p24;
constexpr unsigned __int128 kOffset = static_cast<unsigned __int128>(1) << 119;

}  // namespace

uint64_t PartsOf(uint64_t values) {
  return values == 0 ? 1 : (values + kPartValues - 1) / kPartValues;
}

absl::StatusOr<std::vector<uint32_t>> EncodeValues(std::span<const double> values) {
  std::vector<uint32_t> words(values.size() * kDigits);
  for (size_t i = 0; i < values.size(); ++i) {
    const double v = values[i];
    if (!std::isfinite(v) || std::abs(v) >= kMaxMagnitude) {
      return absl::InvalidArgumentError(absl::StrCat(
          "value ", i, " of the vector (", v, ") is not finite or not below 2^94 in magnitude"));
    }
    const auto fixed = static_cast<__int128>(std::nearbyint(v * kScale));
    const auto u = static_cast<unsigned __int128>(fixed) + kOffset;
    for (uint32_t d = 0; d < kDigits; ++d) {
      words[i * kDigits + d] = static_cast<uint32_t>(u >> (kDigitBits * d)) & kDigitMask;
    }
  }
  return words;
}

std::vector<double> DecodeSum(std::span<const uint32_t> words, uint32_t members) {
  std::vector<double> values(words.size() / kDigits);
  const unsigned __int128 offset = kOffset * members;
  for (size_t i = 0; i < values.size(); ++i) {
    unsigned __int128 u = 0;
    for (uint32_t d = 0; d < kDigits; ++d) {
      u += static_cast<unsigned __int128>(words[i * kDigits + d]) << (kDigitBits * d);
    }
    const auto fixed = static_cast<__int128>(u - offset);
    values[i] = static_cast<double>(fixed) / kScale;
  }
  return values;
}

absl::StatusOr<std::vector<double>> FixedPointSum(const std::vector<std::vector<double>>& parts) {
  if (parts.empty()) return std::vector<double>();
  if (parts.size() > kMaxMembers) {
    return absl::InvalidArgumentError(
        absl::StrCat(parts.size(), " vectors; at most ", kMaxMembers, " can be summed"));
  }
  std::vector<uint32_t> sum(parts[0].size() * kDigits, 0);
  for (const std::vector<double>& part : parts) {
    if (part.size() != parts[0].size()) {
      return absl::InvalidArgumentError(absl::StrCat("vectors of ", parts[0].size(), " and ",
                                                     part.size(), " values cannot be summed"));
    }
    absl::StatusOr<std::vector<uint32_t>> words = EncodeValues(part);
    if (!words.ok()) return words.status();
    for (size_t i = 0; i < sum.size(); ++i) sum[i] += (*words)[i];
  }
  return DecodeSum(sum, static_cast<uint32_t>(parts.size()));
}

absl::StatusOr<PairwiseMasker> PairwiseMasker::Create(const secagg::X25519KeyPair& own,
                                                      const std::string& self,
                                                      const std::vector<Member>& members,
                                                      const std::string& task, uint64_t round_id) {
  PairwiseMasker masker;
  // Reserved so that no copy of a pair key is left behind by a reallocation.
  masker.pairs_.reserve(members.size());
  bool found_self = false;
  for (const Member& m : members) {
    if (m.node == self) {
      if (m.key != own.public_key()) {
        return absl::InvalidArgumentError(
            absl::StrCat("the member list gives ", self, " a key that is not its own"));
      }
      found_self = true;
      continue;
    }
    absl::StatusOr<secagg::SharedKey> key =
        own.Agree(m.key, PairContext(task, round_id, self, m.node));
    if (!key.ok()) return key.status();
    masker.pairs_.push_back({*key, self < m.node});
    OPENSSL_cleanse(key->data(), key->size());
  }
  if (!found_self) {
    return absl::InvalidArgumentError(absl::StrCat("the member list does not name ", self));
  }
  return masker;
}

PairwiseMasker& PairwiseMasker::operator=(PairwiseMasker&& other) {
  if (this != &other) {
    for (Pair& p : pairs_) OPENSSL_cleanse(p.key.data(), p.key.size());
    pairs_ = std::move(other.pairs_);
  }
  return *this;
}

PairwiseMasker::~PairwiseMasker() {
  for (Pair& p : pairs_) OPENSSL_cleanse(p.key.data(), p.key.size());
}

absl::Status PairwiseMasker::Mask(uint64_t step, std::string_view content,
                                  std::span<uint32_t> words) const {
  std::vector<secagg::SignedMask> masks;
  masks.reserve(pairs_.size());
  for (const Pair& p : pairs_) {
    absl::StatusOr<secagg::SharedKey> seed = secagg::HkdfSha256(
        p.key,
        absl::StrCat("fedcustoms/v1 boosting step ", step, " content ", std::string(content)));
    if (!seed.ok()) {
      secagg::WipeMasks(masks);
      return seed.status();
    }
    masks.push_back({*seed, p.add ? secagg::MaskSign::kAdd : secagg::MaskSign::kSubtract});
    OPENSSL_cleanse(seed->data(), seed->size());
  }
  absl::Status s = secagg::ApplyMasks(masks, words);
  secagg::WipeMasks(masks);
  return s;
}

}  // namespace fedcustoms::boosting
