#include "common/xray/xray_model_config.h"

#include <cmath>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace fedcustoms::xray {
namespace {

absl::Status Bad(absl::string_view where, absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(where, ".", field, ": ", what));
}

std::string Quoted(absl::string_view s) { return absl::StrCat("\"", absl::CHexEscape(s), "\""); }

}  // namespace

v1::XrayModelConfig WithXrayDefaults(const v1::XrayModelConfig& config) {
  v1::XrayModelConfig c = config;
  if (c.channels().empty()) {
    for (uint32_t width : {16u, 32u, 64u}) c.add_channels(width);
  }
  if (c.image_size() == 0) c.set_image_size(64);
  if (c.input_channels() == 0) c.set_input_channels(1);
  if (c.classes().empty()) {
    for (const char* name : {"clear", "firearm", "knife", "drugs"}) c.add_classes(name);
  }
  if (c.hidden_units() == 0) c.set_hidden_units(128);
  if (c.pixel_encoding() == v1::XrayModelConfig::PIXEL_ENCODING_UNSPECIFIED) {
    c.set_pixel_encoding(v1::XrayModelConfig::ATTENUATION);
  }
  if (!c.has_attenuation_center()) c.set_attenuation_center(kDefaultAttenuationCenter);
  if (!c.has_attenuation_scale()) c.set_attenuation_scale(kDefaultAttenuationScale);
  return c;
}

absl::Status CheckXrayModelConfig(const v1::XrayModelConfig& config, std::string_view where_view) {
  // Debian's abseil has its own string_view type.
  const absl::string_view where(where_view.data(), where_view.size());
  if (config.channels().empty() || config.channels_size() > kMaxConvBlocks) {
    return Bad(
        where, "channels",
        absl::StrCat("must have 1..", kMaxConvBlocks,
                     " entries (one per convolution block), found ", config.channels_size()));
  }
  for (int i = 0; i < config.channels_size(); ++i) {
    const uint32_t c = config.channels(i);
    if (c < 1 || c > static_cast<uint32_t>(kMaxConvChannels)) {
      return Bad(where, absl::StrCat("channels[", i, "]"),
                 absl::StrCat("must be in 1..", kMaxConvChannels, ", found ", c));
    }
  }
  if (config.image_size() < static_cast<uint32_t>(kMinImageSize) ||
      config.image_size() > static_cast<uint32_t>(kMaxImageSize)) {
    return Bad(where, "image_size",
               absl::StrCat("must be in ", kMinImageSize, "..", kMaxImageSize, ", found ",
                            config.image_size()));
  }
  if (config.input_channels() != 1 && config.input_channels() != 2) {
    return Bad(where, "input_channels",
               absl::StrCat("must be 1 (single energy) or 2 (dual energy), found ",
                            config.input_channels()));
  }
  if (config.classes_size() < kMinClasses || config.classes_size() > kMaxClasses) {
    return Bad(where, "classes",
               absl::StrCat("must have ", kMinClasses, "..", kMaxClasses,
                            " names (class 0 meaning no threat), found ", config.classes_size()));
  }
  for (int i = 0; i < config.classes_size(); ++i) {
    const std::string& name = config.classes(i);
    const std::string field = absl::StrCat("classes[", i, "]");
    if (name.empty()) return Bad(where, field, "empty class name");
    for (char ch : name) {
      const auto u = static_cast<unsigned char>(ch);
      if (u < 0x20 || u == 0x7f || ch == ',' || ch == '"') {
        return Bad(where, field,
                   absl::StrCat(Quoted(name),
                                " has a control character, comma or quote; labels CSV "
                                "fields could not name it"));
      }
    }
    if (name.front() == ' ' || name.back() == ' ' || name.front() == '\t' || name.back() == '\t') {
      return Bad(where, field,
                 absl::StrCat(Quoted(name), " has surrounding spaces (labels are trimmed)"));
    }
    for (int j = 0; j < i; ++j) {
      if (config.classes(j) == name) {
        return Bad(where, field,
                   absl::StrCat(Quoted(name), " appears twice (also classes[", j, "])"));
      }
    }
  }
  if (config.hidden_units() < 1 || config.hidden_units() > static_cast<uint32_t>(kMaxHiddenUnits)) {
    return Bad(where, "hidden_units",
               absl::StrCat("must be in 1..", kMaxHiddenUnits, ", found ", config.hidden_units()));
  }
  if (!std::isfinite(config.dropout()) || config.dropout() < 0 || config.dropout() >= 1) {
    return Bad(where, "dropout", absl::StrCat("must be in [0, 1), found ", config.dropout()));
  }
  if (!v1::XrayModelConfig::PixelEncoding_IsValid(config.pixel_encoding())) {
    return Bad(where, "pixel_encoding",
               absl::StrCat("must be ATTENUATION or INTENSITY, found ", config.pixel_encoding()));
  }
  const double center = config.attenuation_center();
  if (!std::isfinite(center) || center < 0 || center > kMaxAttenuation) {
    return Bad(where, "attenuation_center",
               absl::StrCat("must be in [0, ", kMaxAttenuation, "], found ", center));
  }
  const double scale = config.attenuation_scale();
  if (!std::isfinite(scale) || scale <= 0 || scale > kMaxAttenuation) {
    return Bad(where, "attenuation_scale",
               absl::StrCat("must be in (0, ", kMaxAttenuation, "], found ", scale));
  }
  return absl::OkStatus();
}

}  // namespace fedcustoms::xray
