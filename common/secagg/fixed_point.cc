#include "common/secagg/fixed_point.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace fedcustoms::secagg {
namespace {

constexpr double kSignedLimit = 2147483648.0;  // 2^31

}  // namespace

absl::StatusOr<FixedPointCodec> FixedPointCodec::Create(const Options& o) {
  if (!(std::isfinite(o.clip) && o.clip > 0)) {
    return absl::InvalidArgumentError(absl::StrCat("clip must be finite and > 0, not ", o.clip));
  }
  if (!(std::isfinite(o.scale) && o.scale >= 1)) {
    return absl::InvalidArgumentError(absl::StrCat("scale must be finite and >= 1, not ", o.scale));
  }
  if (!(std::isfinite(o.max_total_weight) && o.max_total_weight > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_total_weight must be finite and > 0, not ", o.max_total_weight));
  }
  if (o.max_nodes == 0) return absl::InvalidArgumentError("max_nodes must be > 0");
  const double worst = o.scale * o.clip * o.max_total_weight + o.max_nodes / 2.0;
  if (worst >= kSignedLimit) {
    return absl::InvalidArgumentError(absl::StrCat(
        "scale ", o.scale, " x clip ", o.clip, " x max_total_weight ", o.max_total_weight,
        " + max_nodes ", o.max_nodes, " / 2 = ", worst,
        " could overflow the 32-bit ring (must stay below 2^31); lower scale or clip"));
  }
  return FixedPointCodec(o);
}

double FixedPointCodec::LargestSafeScale(const Options& o) {
  Options candidate = o;
  for (int exponent = 62; exponent >= 0; --exponent) {
    candidate.scale = std::ldexp(1.0, exponent);
    if (Create(candidate).ok()) return candidate.scale;
  }
  return 0;
}

absl::StatusOr<uint64_t> FixedPointCodec::Encode(std::span<const float> values, double weight,
                                                 std::span<uint32_t> out) const {
  if (out.size() != values.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("output has ", out.size(), " words for ", values.size(), " values"));
  }
  if (!(std::isfinite(weight) && weight > 0 && weight <= options_.max_total_weight)) {
    return absl::InvalidArgumentError(
        absl::StrCat("weight ", weight, " is outside (0, ", options_.max_total_weight, "]"));
  }
  // Clamped in double against the exact clip: a float clip could round up
  // past the bound Create checked.
  const double clip = options_.clip;
  const double factor = options_.scale * weight;
  uint64_t clipped = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    double v = values[i];
    if (!std::isfinite(v)) {
      return absl::InvalidArgumentError(absl::StrCat("value ", i, " is NaN or Inf"));
    }
    if (v > clip || v < -clip) {
      ++clipped;
      v = std::clamp(v, -clip, clip);
    }
    // |factor * v| < 2^31 by Create's bound, so the int64 conversion is exact
    // and the cast to uint32 is the two's-complement residue mod 2^32.
    const int64_t q = std::llrint(factor * v);
    out[i] = static_cast<uint32_t>(q);
  }
  return clipped;
}

absl::Status FixedPointCodec::DecodeMean(std::span<const uint32_t> sum, double total_weight,
                                         std::span<float> out) const {
  if (out.size() != sum.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("output has ", out.size(), " values for ", sum.size(), " words"));
  }
  if (!(std::isfinite(total_weight) && total_weight > 0 &&
        total_weight <= options_.max_total_weight)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "total weight ", total_weight, " is outside (0, ", options_.max_total_weight, "]"));
  }
  const double inverse = 1.0 / (options_.scale * total_weight);
  for (size_t i = 0; i < sum.size(); ++i) {
    out[i] = static_cast<float>(static_cast<double>(static_cast<int32_t>(sum[i])) * inverse);
  }
  return absl::OkStatus();
}

double FixedPointCodec::ErrorBound(double total_weight) const {
  return options_.max_nodes / (2.0 * options_.scale * total_weight);
}

bool IsStandardizationStatistic(std::string_view tensor_name) {
  return tensor_name.ends_with("running_mean") || tensor_name.ends_with("running_var");
}

}  // namespace fedcustoms::secagg
