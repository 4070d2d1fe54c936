#include "common/xray/xray_synth.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <numbers>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <random>
#include <set>
#include <string_view>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/io/atomic_file.h"
#include "common/synth/synth_rng.h"

namespace fedcustoms::xray {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kMaxImages = 1'000'000;
constexpr uint32_t kMinSize = 8;
constexpr uint32_t kMaxSize = 512;
// zlib level: fixed so the bytes do not follow a library default; 1 because
// these small noisy images hardly compress better at higher levels.
constexpr int kPngCompression = 1;

using synth::Fnv1a;
using synth::Rng;
using synth::SplitMix64;

// Materials by how their attenuation grows at low energy (photoelectric
// absorption rises steeply with atomic number): thickness is measured in
// high-energy attenuation, and the low energy sees it times this ratio.
enum Material { kOrganic = 0, kInorganic = 1, kSteel = 2 };
constexpr double kLowHighRatio[] = {1.2, 1.6, 2.2};

enum ThreatClass { kClear = 0, kFirearm = 1, kKnife = 2, kDrugs = 3 };

struct Point {
  double x;
  double y;
};

// A piece of an object in its own coordinates (object length 1): a convex
// polygon, or a ring (a disc when inner is 0) cut to y >= y_cut.
struct Piece {
  std::vector<Point> polygon;  // counter-clockwise in (x right, y down) after Normalize()
  Point center{0, 0};
  double inner = 0;
  double outer = 0;
  double y_cut = -1e9;
  Material material = kSteel;
  double thickness = 0;

  bool Contains(double x, double y) const {
    if (polygon.empty()) {
      if (y < y_cut) return false;
      const double d2 = (x - center.x) * (x - center.x) + (y - center.y) * (y - center.y);
      return d2 <= outer * outer && d2 >= inner * inner;
    }
    for (size_t i = 0; i < polygon.size(); ++i) {
      const Point& a = polygon[i];
      const Point& b = polygon[(i + 1) % polygon.size()];
      if ((b.x - a.x) * (y - a.y) - (b.y - a.y) * (x - a.x) < 0) return false;
    }
    return true;
  }
  // Largest distance of the piece from the object's origin.
  double Reach() const {
    if (polygon.empty()) return std::hypot(center.x, center.y) + outer;
    double r = 0;
    for (const Point& p : polygon) r = std::max(r, std::hypot(p.x, p.y));
    return r;
  }
};

Piece Polygon(std::vector<Point> points, Material m, double t) {
  double area = 0;
  for (size_t i = 0; i < points.size(); ++i) {
    const Point& a = points[i];
    const Point& b = points[(i + 1) % points.size()];
    area += a.x * b.y - b.x * a.y;
  }
  if (area < 0) std::reverse(points.begin(), points.end());
  Piece p;
  p.polygon = std::move(points);
  p.material = m;
  p.thickness = t;
  return p;
}

Piece Rect(double x0, double y0, double x1, double y1, Material m, double t) {
  return Polygon({{x0, y0}, {x1, y0}, {x1, y1}, {x0, y1}}, m, t);
}

Piece Ring(Point center, double inner, double outer, Material m, double t) {
  Piece p;
  p.center = center;
  p.inner = inner;
  p.outer = outer;
  p.material = m;
  p.thickness = t;
  return p;
}

using Object = std::vector<Piece>;

// A pistol or, less often, a long gun, barrel along +x.
Object Firearm(Rng& rng, bool* long_gun) {
  *long_gun = rng.Bernoulli(0.3);
  if (*long_gun) {
    return {
        Rect(-0.08, -0.022, 0.5, 0.022, kSteel, rng.Uniform(0.6, 0.9)),  // barrel
        Rect(-0.26, -0.05, -0.06, 0.05, kSteel, rng.Uniform(1.0, 1.4)),  // receiver
        Polygon({{-0.5, -0.03}, {-0.26, -0.045}, {-0.26, 0.06}, {-0.5, 0.13}}, kOrganic,
                rng.Uniform(0.4, 0.6)),                                // wooden stock
        Ring({-0.17, 0.07}, 0.03, 0.045, kSteel, 0.4),                 // trigger guard
        Rect(-0.12, 0.05, -0.06, 0.2, kSteel, rng.Uniform(0.5, 0.8)),  // magazine
    };
  }
  Object gun = {
      Rect(-0.5, -0.07, 0.5, 0.06, kSteel, rng.Uniform(0.9, 1.4)),  // slide and barrel
      Polygon({{-0.5, 0.06}, {-0.27, 0.06}, {-0.31, 0.5}, {-0.53, 0.46}}, kSteel,
              rng.Uniform(0.5, 0.8)),                 // grip with magazine
      Ring({-0.15, 0.1}, 0.06, 0.095, kSteel, 0.45),  // trigger guard
      Rect(-0.19, 0.06, -0.16, 0.15, kSteel, 0.5),    // trigger
  };
  gun[2].y_cut = 0.06;
  return gun;
}

// A fixed-blade knife, blade along +x.
Object Knife(Rng& rng) {
  const double w = rng.Uniform(0.04, 0.065);
  const double steel = rng.Uniform(0.35, 0.6);
  return {
      Polygon({{0, -w}, {0.5, -w}, {0.66, 0.01}, {0, w}}, kSteel, steel),    // blade
      Rect(-0.025, -0.085, 0.0, 0.085, kSteel, steel * 1.2),                 // guard
      Rect(-0.34, -0.055, -0.025, 0.055, kOrganic, rng.Uniform(0.25, 0.4)),  // handle
      Ring({-0.25, 0}, 0, 0.016, kSteel, 0.3),                               // rivets
      Ring({-0.1, 0}, 0, 0.016, kSteel, 0.3),
  };
}

// 1-4 taped bricks of compressed powder, in brick-width units.
Object DrugBricks(Rng& rng) {
  static constexpr int kCounts[] = {1, 1, 2, 2, 3, 4};
  const int count = kCounts[rng.Index(6)];
  const int columns = count == 1 ? 1 : 2;
  const int rows = (count + columns - 1) / columns;
  const double h = rng.Uniform(0.55, 0.75);
  const double density = rng.Uniform(1.0, 1.6);
  const double gap = 0.06;
  const double x_origin = -0.5 * (columns * (1 + gap) - gap);
  const double y_origin = -0.5 * (rows * (h + gap) - gap);
  Object bricks;
  for (int i = 0; i < count; ++i) {
    const double x0 = x_origin + (i % columns) * (1 + gap);
    const double y0 = y_origin + (i / columns) * (h + gap);
    bricks.push_back(Rect(x0, y0, x0 + 1, y0 + h, kOrganic, density * rng.Uniform(0.92, 1.08)));
    // Wrapping and tape: a thin shell and two crossing bands.
    bricks.push_back(Rect(x0 - 0.03, y0 - 0.03, x0 + 1.03, y0 + h + 0.03, kOrganic, 0.06));
    const double band = x0 + rng.Uniform(0.25, 0.65);
    bricks.push_back(Rect(band, y0, band + 0.08, y0 + h, kOrganic, 0.12));
    bricks.push_back(Rect(x0, y0 + 0.4 * h, x0 + 1, y0 + 0.4 * h + 0.07, kOrganic, 0.12));
  }
  return bricks;
}

// Harmless metal that a detector must not take for a threat.
Object Distractor(Rng& rng) {
  switch (rng.Index(3)) {
    case 0:  // rod or pipe
      return {Rect(-0.5, -0.03, 0.5, 0.03, kSteel, rng.Uniform(0.3, 0.8))};
    case 1:  // can
      return {Ring({0, 0}, 0.3, 0.38, kSteel, 0.35), Ring({0, 0}, 0, 0.3, kOrganic, 0.3)};
    default:  // wrench
      return {Rect(-0.4, -0.045, 0.35, 0.045, kSteel, 0.6),
              Ring({0.42, 0}, 0.05, 0.12, kSteel, 0.6)};
  }
}

struct Scanner {
  double i0;          // air intensity, 16-bit counts
  double photons;     // photons per pixel in air (sets the quantum noise)
  double blur;        // side weight of the 3-tap point-spread kernel
  double electronic;  // electronic noise, counts
  double dark;        // dark offset, counts
};

struct Profile {
  std::string code;
  std::string dir;
  double positive_rate;
  double mix[3];  // firearm, knife, drugs
  double clutter;
  Scanner scanner;
  uint64_t seed;
};

// Attenuation maps of one image being built.
class Canvas {
 public:
  explicit Canvas(int size) : size_(size), high_(Cells()), low_(Cells()), threat_(Cells()) {}

  int size() const { return size_; }
  const std::vector<float>& high() const { return high_; }
  const std::vector<float>& low() const { return low_; }
  const std::vector<float>& threat() const { return threat_; }

  void Add(int x, int y, Material m, double t) {
    const size_t i = static_cast<size_t>(y) * size_ + x;
    high_[i] += static_cast<float>(t);
    low_[i] += static_cast<float>(t * kLowHighRatio[m]);
  }

  // An axis-aligned box, edges anti-aliased by exact pixel coverage, its
  // thickness times texture(x, y).
  template <typename Texture>
  void AddBox(double x0, double y0, double x1, double y1, Material m, double t, Texture texture) {
    const int xa = std::max(0, static_cast<int>(std::floor(x0)));
    const int xb = std::min(size_, static_cast<int>(std::ceil(x1)));
    const int ya = std::max(0, static_cast<int>(std::floor(y0)));
    const int yb = std::min(size_, static_cast<int>(std::ceil(y1)));
    for (int y = ya; y < yb; ++y) {
      const double cy = std::min<double>(y + 1, y1) - std::max<double>(y, y0);
      for (int x = xa; x < xb; ++x) {
        const double cx = std::min<double>(x + 1, x1) - std::max<double>(x, x0);
        Add(x, y, m, t * cx * cy * texture(x, y));
      }
    }
  }
  void AddBox(double x0, double y0, double x1, double y1, Material m, double t) {
    AddBox(x0, y0, x1, y1, m, t, [](int, int) { return 1.0; });
  }

  // `object` scaled by `scale` pixels, turned by `angle`, mirrored across its
  // x axis when `mirror`, centred at (cx, cy); 3x3 samples per pixel.
  void AddObject(const Object& object, double cx, double cy, double scale, double angle,
                 bool mirror, bool is_threat) {
    double reach = 0;
    for (const Piece& p : object) reach = std::max(reach, p.Reach());
    const double r = reach * scale + 1;
    const int xa = std::max(0, static_cast<int>(std::floor(cx - r)));
    const int xb = std::min(size_, static_cast<int>(std::ceil(cx + r)));
    const int ya = std::max(0, static_cast<int>(std::floor(cy - r)));
    const int yb = std::min(size_, static_cast<int>(std::ceil(cy + r)));
    const double c = std::cos(angle) / scale;
    const double s = std::sin(angle) / scale;
    constexpr int kSub = 3;
    for (int y = ya; y < yb; ++y) {
      for (int x = xa; x < xb; ++x) {
        double high = 0, low = 0;
        for (int sy = 0; sy < kSub; ++sy) {
          for (int sx = 0; sx < kSub; ++sx) {
            const double dx = x + (sx + 0.5) / kSub - cx;
            const double dy = y + (sy + 0.5) / kSub - cy;
            const double u = c * dx + s * dy;
            double v = -s * dx + c * dy;
            if (mirror) v = -v;
            for (const Piece& p : object) {
              if (!p.Contains(u, v)) continue;
              high += p.thickness;
              low += p.thickness * kLowHighRatio[p.material];
            }
          }
        }
        if (high == 0) continue;
        const size_t i = static_cast<size_t>(y) * size_ + x;
        high_[i] += static_cast<float>(high / (kSub * kSub));
        low_[i] += static_cast<float>(low / (kSub * kSub));
        if (is_threat) threat_[i] += static_cast<float>(high / (kSub * kSub));
      }
    }
  }

 private:
  size_t Cells() const { return static_cast<size_t>(size_) * size_; }

  int size_;
  std::vector<float> high_;
  std::vector<float> low_;
  std::vector<float> threat_;
};

// Container walls seen through the cargo: a steel floor level, side walls
// thickening towards the image edges, a gradient and vertical corrugation.
void AddContainer(Canvas& canvas, Rng& rng) {
  const int n = canvas.size();
  const double base = rng.Uniform(0.2, 0.4);
  const double side = rng.Uniform(0.3, 0.9);
  const double falloff = rng.Uniform(0.05, 0.1) * n;
  const double gradient = rng.Uniform(-0.15, 0.2);
  const double period = rng.Uniform(0.07, 0.12) * n;
  const double phase = rng.Uniform(0, 2 * std::numbers::pi);
  const double corrugation = rng.Uniform(0.03, 0.08);
  for (int x = 0; x < n; ++x) {
    const double wall = side * (std::exp(-x / falloff) + std::exp(-(n - 1 - x) / falloff));
    const double wave =
        corrugation * (0.5 + 0.5 * std::sin(2 * std::numbers::pi * x / period + phase));
    for (int y = 0; y < n; ++y) {
      canvas.Add(x, y, kSteel, base + wall + wave + gradient * y / n);
    }
  }
}

void AddCargo(Canvas& canvas, Rng& rng, double clutter) {
  const double n = canvas.size();
  const double density = std::clamp(clutter * rng.Uniform(0.3, 1.7), 0.0, 1.2);
  const int items = 2 + static_cast<int>(std::lround(12 * density));
  for (int k = 0; k < items; ++k) {
    const double u = rng.Uniform();
    const Material m = u < 0.65 ? kOrganic : u < 0.9 ? kInorganic : kSteel;
    const double t = m == kOrganic     ? rng.Uniform(0.1, 0.7)
                     : m == kInorganic ? rng.Uniform(0.1, 0.5)
                                       : rng.Uniform(0.05, 0.25);
    const double w = rng.Uniform(0.08, 0.45) * n;
    const double h = rng.Uniform(0.08, 0.45) * n;
    const double x0 = rng.Uniform(-0.1 * n, n - 0.9 * w);
    const double y0 = rng.Uniform(-0.1 * n, n - 0.9 * h);
    const double texture = rng.Uniform();
    if (texture < 0.35) {
      canvas.AddBox(x0, y0, x0 + w, y0 + h, m, t);
    } else if (texture < 0.6) {
      // A carton: cardboard walls around lighter contents.
      const double wall = std::max(1.0, 0.02 * n);
      canvas.AddBox(x0, y0, x0 + w, y0 + h, m, 0.35 * t);
      canvas.AddBox(x0, y0, x0 + w, y0 + wall, kOrganic, 0.15);
      canvas.AddBox(x0, y0 + h - wall, x0 + w, y0 + h, kOrganic, 0.15);
      canvas.AddBox(x0, y0, x0 + wall, y0 + h, kOrganic, 0.15);
      canvas.AddBox(x0 + w - wall, y0, x0 + w, y0 + h, kOrganic, 0.15);
    } else if (texture < 0.8) {
      // Stacked goods: bands across the box.
      const double period = rng.Uniform(2.5, 8.0);
      const bool vertical = rng.Bernoulli(0.5);
      canvas.AddBox(x0, y0, x0 + w, y0 + h, m, t, [&](int x, int y) {
        const double along = vertical ? x - x0 : y - y0;
        return 0.6 + 0.8 * (std::fmod(along, period) < 0.5 * period ? 1.0 : 0.0);
      });
    } else {
      // Bulk goods: grain per pixel.
      canvas.AddBox(x0, y0, x0 + w, y0 + h, m, t, [&](int, int) { return rng.Uniform(0.5, 1.5); });
    }
  }
}

// Places a threat of class `label` and returns its pixel bounding box
// (x_min, y_min, x_max, y_max) as seen in the threat map.
std::array<int, 4> AddThreat(Canvas& canvas, Rng& rng, int label) {
  const double n = canvas.size();
  Object object;
  double scale;
  double angle = rng.Uniform(0, 2 * std::numbers::pi);
  if (label == kFirearm) {
    bool long_gun = false;
    object = Firearm(rng, &long_gun);
    scale = (long_gun ? rng.Uniform(0.5, 0.75) : rng.Uniform(0.28, 0.42)) * n;
  } else if (label == kKnife) {
    object = Knife(rng);
    scale = rng.Uniform(0.3, 0.5) * n;
  } else {
    object = DrugBricks(rng);
    scale = rng.Uniform(0.14, 0.22) * n;
    // Bricks are packed along the cargo, nearly square to the image.
    angle = rng.Uniform(-0.3, 0.3) + (rng.Bernoulli(0.5) ? 0.5 * std::numbers::pi : 0.0);
  }
  double reach = 0;
  for (const Piece& p : object) reach = std::max(reach, p.Reach());
  // Keep most of the object inside the image.
  const double margin = std::min(0.45 * n, 0.6 * reach * scale);
  const double cx = rng.Uniform(margin, n - margin);
  const double cy = rng.Uniform(margin, n - margin);
  canvas.AddObject(object, cx, cy, scale, angle, rng.Bernoulli(0.5), /*is_threat=*/true);

  const int size = canvas.size();
  std::array<int, 4> box = {size, size, 0, 0};
  for (int y = 0; y < size; ++y) {
    for (int x = 0; x < size; ++x) {
      if (canvas.threat()[static_cast<size_t>(y) * size + x] < 0.05f) continue;
      box[0] = std::min(box[0], x);
      box[1] = std::min(box[1], y);
      box[2] = std::max(box[2], x + 1);
      box[3] = std::max(box[3], y + 1);
    }
  }
  return box;
}

// Detector output for attenuation map `mu` (line integrals), 16-bit counts.
void Expose(const std::vector<float>& mu, int n, const Scanner& scanner, double i0, Rng& rng,
            std::vector<float>* clean, std::vector<uint16_t>* out) {
  const size_t cells = mu.size();
  for (size_t i = 0; i < cells; ++i) (*clean)[i] = static_cast<float>(i0 * std::exp(-mu[i]));
  // Point-spread: separable [k, 1 - 2k, k], edges repeated.
  const float k = static_cast<float>(scanner.blur);
  std::vector<float> rows(cells);
  for (int y = 0; y < n; ++y) {
    const float* r = clean->data() + static_cast<size_t>(y) * n;
    float* o = rows.data() + static_cast<size_t>(y) * n;
    for (int x = 0; x < n; ++x) {
      o[x] = k * r[std::max(x - 1, 0)] + (1 - 2 * k) * r[x] + k * r[std::min(x + 1, n - 1)];
    }
  }
  for (int y = 0; y < n; ++y) {
    const float* up = rows.data() + static_cast<size_t>(std::max(y - 1, 0)) * n;
    const float* mid = rows.data() + static_cast<size_t>(y) * n;
    const float* down = rows.data() + static_cast<size_t>(std::min(y + 1, n - 1)) * n;
    float* o = clean->data() + static_cast<size_t>(y) * n;
    for (int x = 0; x < n; ++x) o[x] = k * up[x] + (1 - 2 * k) * mid[x] + k * down[x];
  }
  // Quantum noise: the count is i0/photons per photon, so its variance is
  // value x gain; plus the electronics' own.
  const double gain = i0 / scanner.photons;
  const double e2 = scanner.electronic * scanner.electronic;
  for (size_t i = 0; i < cells; ++i) {
    const double v = (*clean)[i];
    const double noisy = v + std::sqrt(v * gain + e2) * rng.PairedNormal() + scanner.dark;
    (*out)[i] = static_cast<uint16_t>(std::clamp(std::lround(noisy), 0L, 65535L));
  }
}

Profile MakeProfile(const XraySynthOptions& options, size_t index) {
  Profile p;
  p.code = options.admins[index];
  p.dir = (fs::path(options.out_dir) / p.code).string();
  p.seed = SplitMix64(options.seed ^ SplitMix64(Fnv1a(p.code)));
  Rng rng(p.seed);
  const double drawn_rate = rng.Uniform(0.05, 0.15);
  p.positive_rate = options.positive_rate.value_or(drawn_rate);
  // One dominant threat class per administration, rotating with position so
  // neighbours differ, the rest split at random.
  const size_t dominant = (index + options.seed) % 3;
  const double dominant_share = rng.Uniform(0.55, 0.75);
  const double split = rng.Uniform(0.25, 0.75);
  p.mix[dominant] = dominant_share;
  p.mix[(dominant + 1) % 3] = (1 - dominant_share) * split;
  p.mix[(dominant + 2) % 3] = (1 - dominant_share) * (1 - split);
  p.clutter = rng.Uniform(0.35, 0.75);
  p.scanner.i0 = rng.Uniform(52000, 62000);
  p.scanner.photons = rng.Uniform(6000, 20000);
  p.scanner.blur = rng.Uniform(0.1, 0.22);
  p.scanner.electronic = rng.Uniform(15, 40);
  p.scanner.dark = rng.Uniform(100, 400);
  return p;
}

// Labels of an administration's images: exact counts, shuffled.
std::vector<int> DrawLabels(const Profile& p, uint64_t images, Rng& rng) {
  const uint64_t positives = static_cast<uint64_t>(std::llround(p.positive_rate * images));
  uint64_t counts[3];
  double remainders[3];
  uint64_t given = 0;
  for (int c = 0; c < 3; ++c) {
    const double exact = p.mix[c] * positives;
    counts[c] = static_cast<uint64_t>(std::floor(exact));
    remainders[c] = exact - counts[c];
    given += counts[c];
  }
  // Largest remainders take the leftover threats (ties to the lower class).
  while (given < positives) {
    int best = 0;
    for (int c = 1; c < 3; ++c) {
      if (remainders[c] > remainders[best]) best = c;
    }
    ++counts[best];
    remainders[best] = -1;
    ++given;
  }
  std::vector<int> labels(images, kClear);
  size_t next = 0;
  for (int c = 0; c < 3; ++c) {
    for (uint64_t k = 0; k < counts[c]; ++k) labels[next++] = c + 1;
  }
  for (size_t i = labels.size(); i > 1; --i) std::swap(labels[i - 1], labels[rng.Index(i)]);
  return labels;
}

absl::Status WritePng(const std::string& path, const std::vector<uint16_t>& pixels, int n) {
  const cv::Mat image(n, n, CV_16UC1, const_cast<uint16_t*>(pixels.data()));
  std::vector<uchar> png;
  try {
    if (!cv::imencode(".png", image, png, {cv::IMWRITE_PNG_COMPRESSION, kPngCompression})) {
      return absl::InternalError(absl::StrCat(path, ": PNG encoding failed"));
    }
  } catch (const cv::Exception& e) {
    return absl::InternalError(absl::StrCat(path, ": PNG encoding failed: ", e.what()));
  }
  // Plain writes: labels.csv, written last and atomically, is what makes the
  // images part of a dataset, so one fsync per image would only cost time.
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
  if (f == nullptr) {
    return absl::InternalError(absl::StrCat(path, ": cannot create: ", std::strerror(errno)));
  }
  if (std::fwrite(png.data(), 1, png.size(), f.get()) != png.size()) {
    return absl::InternalError(absl::StrCat(path, ": write failed: ", std::strerror(errno)));
  }
  if (std::fclose(f.release()) != 0) {
    return absl::InternalError(absl::StrCat(path, ": write failed: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status SynthesizeAdministration(const XraySynthOptions& options, const Profile& p) {
  const std::string images_dir = (fs::path(p.dir) / "images").string();
  const std::string labels_path = (fs::path(p.dir) / "labels.csv").string();
  std::error_code ec;
  fs::create_directories(images_dir, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat(images_dir, ": cannot create: ", ec.message()));
  }
  fs::remove(labels_path, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat(labels_path, ": cannot remove: ", ec.message()));
  }

  Rng rng(SplitMix64(p.seed + 1));
  const std::vector<int> labels = DrawLabels(p, options.images, rng);
  const int n = static_cast<int>(options.size);
  const size_t cells = static_cast<size_t>(n) * n;
  std::vector<float> clean(cells);
  std::vector<uint16_t> high(cells), low(cells);
  std::string csv = options.dual_energy ? "path_high,path_low,label,x_min,y_min,x_max,y_max\n"
                                        : "path,label,x_min,y_min,x_max,y_max\n";
  uint64_t per_class[4] = {0, 0, 0, 0};
  char name[32];
  for (uint64_t i = 0; i < options.images; ++i) {
    Canvas canvas(n);
    AddContainer(canvas, rng);
    AddCargo(canvas, rng, p.clutter);
    const int harmless = rng.Bernoulli(0.35) ? 1 + static_cast<int>(rng.Index(3)) : 0;
    for (int k = 0; k < harmless; ++k) {
      canvas.AddObject(Distractor(rng), rng.Uniform(0, n), rng.Uniform(0, n),
                       rng.Uniform(0.15, 0.4) * n, rng.Uniform(0, 2 * std::numbers::pi), false,
                       /*is_threat=*/false);
    }
    const int label = labels[i];
    std::array<int, 4> box{};
    if (label != kClear) box = AddThreat(canvas, rng, label);
    ++per_class[label];

    std::snprintf(name, sizeof name, "%06llu", static_cast<unsigned long long>(i));
    std::string row;
    Expose(canvas.high(), n, p.scanner, p.scanner.i0, rng, &clean, &high);
    if (options.dual_energy) {
      // The low-energy beam is weaker: fewer counts in air.
      Expose(canvas.low(), n, p.scanner, 0.8 * p.scanner.i0, rng, &clean, &low);
      const std::string h = absl::StrCat("images/", name, "_high.png");
      const std::string l = absl::StrCat("images/", name, "_low.png");
      if (absl::Status s = WritePng((fs::path(p.dir) / h).string(), high, n); !s.ok()) return s;
      if (absl::Status s = WritePng((fs::path(p.dir) / l).string(), low, n); !s.ok()) return s;
      absl::StrAppend(&csv, h, ",", l, ",");
    } else {
      const std::string path = absl::StrCat("images/", name, ".png");
      if (absl::Status s = WritePng((fs::path(p.dir) / path).string(), high, n); !s.ok()) return s;
      absl::StrAppend(&csv, path, ",");
    }
    absl::StrAppend(&csv, kSynthXrayClasses[label]);
    if (label == kClear) {
      csv += ",,,,\n";
    } else {
      absl::StrAppend(&csv, ",", box[0], ",", box[1], ",", box[2], ",", box[3], "\n");
    }
  }
  if (absl::Status s = io::WriteFileAtomically(labels_path, csv); !s.ok()) return s;
  spdlog::info("synth xray: {}: {} images, {} threats ({:.1f} %): firearm {}, knife {}, drugs {}",
               p.dir, options.images, options.images - per_class[0],
               100.0 * (options.images - per_class[0]) / options.images, per_class[1], per_class[2],
               per_class[3]);
  return absl::OkStatus();
}

absl::Status CheckOptions(const XraySynthOptions& options) {
  if (options.admins.empty()) {
    return absl::InvalidArgumentError("synth xray: admins is empty; give at least one code");
  }
  std::set<std::string> seen;
  for (const std::string& code : options.admins) {
    const bool letters =
        std::all_of(code.begin(), code.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
    if (code.size() < 2 || code.size() > 3 || !letters) {
      return absl::InvalidArgumentError(absl::StrCat(
          "synth xray: admins: \"", code, "\" is not 2 or 3 upper-case letters (e.g. EE)"));
    }
    if (!seen.insert(code).second) {
      return absl::InvalidArgumentError(absl::StrCat("synth xray: admins: \"", code, "\" twice"));
    }
  }
  if (options.images < 1 || options.images > kMaxImages) {
    return absl::InvalidArgumentError(
        absl::StrCat("synth xray: images must be in 1..", kMaxImages, ", found ", options.images));
  }
  if (options.size < kMinSize || options.size > kMaxSize) {
    return absl::InvalidArgumentError(absl::StrCat("synth xray: size must be in ", kMinSize, "..",
                                                   kMaxSize, ", found ", options.size));
  }
  if (options.positive_rate && !(*options.positive_rate >= 0 && *options.positive_rate <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "synth xray: positive_rate must be in [0, 1], found ", *options.positive_rate));
  }
  if (options.out_dir.empty()) {
    return absl::InvalidArgumentError("synth xray: out_dir is empty");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status SynthesizeXrays(const XraySynthOptions& options) {
  if (absl::Status s = CheckOptions(options); !s.ok()) return s;
  for (size_t i = 0; i < options.admins.size(); ++i) {
    if (absl::Status s = SynthesizeAdministration(options, MakeProfile(options, i)); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace fedcustoms::xray
