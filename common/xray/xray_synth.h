#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace fedcustoms::xray {

// Class names of the synthetic data, in label order; the same as
// WithXrayDefaults()' classes, so a default xray task reads them as they are.
inline constexpr std::array<const char*, 4> kSynthXrayClasses = {"clear", "firearm", "knife",
                                                                 "drugs"};

struct XraySynthOptions {
  // Administration codes: 2 or 3 upper-case ASCII letters, distinct. Each gets
  // out_dir/<CODE>/; the order matters (it picks each one's dominant threat).
  std::vector<std::string> admins = {"EE", "FI", "LV"};
  // Images per administration, 1..1'000'000.
  uint64_t images = 1000;
  // Same seed and options -> byte-identical files (on one build of OpenCV,
  // libpng and zlib, which encode the PNGs).
  uint64_t seed = 7;
  // Width and height of the images in pixels, 8..512.
  uint32_t size = 64;
  // Writes a high- and a low-energy image per item instead of one.
  bool dual_energy = false;
  // Share of threat images in [0, 1], the same for every administration; unset:
  // each administration draws its own in [0.05, 0.15].
  std::optional<double> positive_rate;
  // Created if missing; files of the same names are replaced.
  std::string out_dir = "xray";
};

// Writes, for each administration, synthetic cargo X-rays as 16-bit grayscale
// PNGs in out_dir/<CODE>/images/ (000000.png..., or 000000_high.png and
// 000000_low.png with dual_energy) and out_dir/<CODE>/labels.csv in the format
// LoadXrayLabelsCsv() reads, with the threat's bounding box (pixels) on threat
// rows and empty box fields on "clear" rows.
//
// An image is built the way a transmission scanner forms one. Objects add
// attenuation (mu x thickness) along each ray: the container's steel walls
// (thicker towards the side walls, corrugated), cargo items (axis-aligned
// boxes of organic, inorganic or steel material with solid, carton, stacked or
// granular textures and a per-image density), sometimes harmless metal (rods,
// cans, tools), and on threat images one threat, randomly rotated, scaled and
// mirrored: a firearm (pistol: slide, grip, trigger guard; or a long gun with
// a wooden stock), a knife (steel blade and guard, organic handle, rivets) or
// drugs (1-4 dense organic bricks with tape bands). The intensity is
// I0 x exp(-sum mu t) (Beer-Lambert), blurred by the detector's point-spread
// (3-tap kernel), with photon (Poisson, Gaussian approximation) and electronic
// noise added, in 16 bits: dense objects are dark. With dual_energy the low
// energy uses a larger mu per material, more so for heavier elements
// (low/high ratio 1.2 organic, 1.6 inorganic, 2.2 steel), so a drug brick and
// a knife of equal darkness in one image separate in the ratio.
//
// Non-IID on purpose: each administration has its own positive rate, its own
// mix of threat classes (a dominant class chosen by position and seed, with
// 55-75 % of its threats), cargo density and scanner (flux, noise, blur), all
// drawn from the seed and its code. Positive counts are exact: round(rate x
// images) threats, split by the mix, in shuffled order.
//
// labels.csv is removed first and written last (atomically), so it never
// lists images of another run. Deterministic: std::mt19937_64 per
// administration with hand-written distributions and blur, fixed PNG
// compression. Errors name the option or the file: InvalidArgument for bad
// options, Internal for I/O.
absl::Status SynthesizeXrays(const XraySynthOptions& options);

}  // namespace fedcustoms::xray
