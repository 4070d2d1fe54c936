#pragma once

#include <string_view>

#include "absl/status/status.h"
#include "fedcustoms/v1/config.pb.h"

namespace fedcustoms::xray {

// Ranges of v1::XrayModelConfig accepted by CheckXrayModelConfig().
inline constexpr int kMaxConvBlocks = 6;
inline constexpr int kMaxConvChannels = 512;
inline constexpr int kMinImageSize = 8;
inline constexpr int kMaxImageSize = 512;
inline constexpr int kMinClasses = 2;
inline constexpr int kMaxClasses = 64;
inline constexpr int kMaxHiddenUnits = 8192;
// Attenuation -ln(I) is capped here (I = e^-8, about 22 counts of 65535):
// darker pixels carry only noise.
inline constexpr double kMaxAttenuation = 8.0;
inline constexpr double kDefaultAttenuationCenter = 0.75;
inline constexpr double kDefaultAttenuationScale = 0.3;

// `config` with every unset field given its documented default (see
// config.proto): channels [16, 32, 64], image_size 64, input_channels 1,
// classes ["clear", "firearm", "knife", "drugs"], hidden_units 128,
// pixel_encoding ATTENUATION, attenuation_center 0.75 and scale 0.3. dropout 0
// and no_augmentation false are already their defaults. Set fields are kept
// as they are, valid or not: CheckXrayModelConfig() judges them.
v1::XrayModelConfig WithXrayDefaults(const v1::XrayModelConfig& config);

// OK when `config` (defaults applied) can build a model and load data:
//   channels        1..6 entries, each 1..512
//   image_size      8..512
//   input_channels  1 or 2
//   classes         2..64 names, distinct, non-empty, without control
//                   characters, commas, quotes or surrounding spaces (they
//                   are matched against labels CSV fields)
//   hidden_units    1..8192
//   dropout         finite, in [0, 1)
//   pixel_encoding  ATTENUATION or INTENSITY
//   attenuation_center  in [0, 8];  attenuation_scale  in (0, 8]
// Otherwise InvalidArgument naming `where` and the field, e.g.
//   "xray_model.image_size: must be in 8..512, found 4"
//   "xray_model.classes[2]: \"knife\" appears twice (also classes[1])".
absl::Status CheckXrayModelConfig(const v1::XrayModelConfig& config,
                                  std::string_view where = "xray_model");

}  // namespace fedcustoms::xray
