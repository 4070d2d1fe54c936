#include "common/secagg/masked_update.h"

#include <cstdint>

#include "absl/strings/str_cat.h"

namespace fedcustoms::secagg {

absl::StatusOr<MaskedUpdate> MaskedUpdate::Create(const v1::SecureRound& params) {
  if (params.total_weight() == 0 || params.total_weight() > UINT32_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat("total_weight ", params.total_weight(), " is outside 1..2^32-1"));
  }
  absl::StatusOr<FixedPointCodec> codec =
      FixedPointCodec::Create({params.clip(), params.scale(), 1.0, params.max_nodes()});
  if (!codec.ok()) return codec.status();
  return MaskedUpdate(*std::move(codec), params.total_weight());
}

absl::StatusOr<MaskedUpdate::Encoded> MaskedUpdate::Encode(std::span<const Piece> update,
                                                           uint64_t samples) const {
  if (samples == 0 || samples > total_weight_) {
    return absl::InvalidArgumentError(
        absl::StrCat(samples, " samples are outside 1..", total_weight_, " (the total weight)"));
  }
  size_t total = 0;
  for (const Piece& piece : update) total += piece.values.size();
  Encoded out;
  out.words.resize(Words(total));
  const double weight = static_cast<double>(samples) / static_cast<double>(total_weight_);
  size_t offset = 0;
  std::vector<float> scaled;
  for (const Piece& piece : update) {
    std::span<const float> values = piece.values;
    if (IsStandardizationStatistic(piece.name)) {
      scaled.assign(values.begin(), values.end());
      for (float& v : scaled) v = static_cast<float>(v / kStatisticsDivisor);
      values = scaled;
    }
    absl::StatusOr<uint64_t> n = codec_.Encode(
        values, weight, std::span<uint32_t>(out.words).subspan(offset, values.size()));
    if (!n.ok()) return n.status();
    out.clipped += *n;
    offset += values.size();
  }
  out.words.back() = static_cast<uint32_t>(samples);
  return out;
}

absl::StatusOr<uint64_t> MaskedUpdate::Decode(std::span<const uint32_t> sum,
                                              std::span<const Entry> layout, std::span<float> mean,
                                              uint64_t weight) const {
  uint64_t parameters = 0;
  for (const Entry& entry : layout) parameters += entry.size;
  if (sum.size() != Words(parameters) || mean.size() != parameters) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a masked sum of ", sum.size(), " words and a mean of ", mean.size(),
        " values for a layout of ", parameters, " parameters (P + 1 words, P values)"));
  }
  if (weight == 0 || weight > total_weight_) {
    return absl::InvalidArgumentError(absl::StrCat("the contributors' weight ", weight,
                                                   " is outside 1..", total_weight_,
                                                   " (the declared training rows)"));
  }
  const double contributed = static_cast<double>(weight) / static_cast<double>(total_weight_);
  if (absl::Status s = codec_.DecodeMean(sum.first(parameters), contributed, mean); !s.ok()) {
    return s;
  }
  size_t offset = 0;
  for (const Entry& entry : layout) {
    if (IsStandardizationStatistic(entry.name)) {
      for (size_t i = offset; i < offset + entry.size; ++i) {
        mean[i] = static_cast<float>(mean[i] * kStatisticsDivisor);
      }
    }
    offset += entry.size;
  }
  return uint64_t{sum.back()};
}

}  // namespace fedcustoms::secagg
