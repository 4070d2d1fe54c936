#include "common/synth/declarations_synth.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <numbers>
#include <optional>
#include <random>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "common/config/proto_json.h"
#include "common/io/atomic_file.h"
#include "common/synth/synth_rng.h"

namespace fedcustoms::synth {
namespace {

namespace fs = std::filesystem;

// Weighted choice among indices 0 .. n-1.
class Discrete {
 public:
  Discrete() = default;
  explicit Discrete(const std::vector<double>& weights) : cumulative_(weights.size()) {
    double sum = 0;
    for (size_t i = 0; i < weights.size(); ++i) cumulative_[i] = sum += weights[i];
  }
  size_t Sample(Rng& rng) const {
    const double u = rng.Uniform() * cumulative_.back();
    const auto it = std::upper_bound(cumulative_.begin(), cumulative_.end(), u);
    return std::min<size_t>(it - cumulative_.begin(), cumulative_.size() - 1);
  }
  size_t size() const { return cumulative_.size(); }
  // Probability of index i.
  double Share(size_t i) const {
    return (cumulative_[i] - (i == 0 ? 0.0 : cumulative_[i - 1])) / cumulative_.back();
  }

 private:
  std::vector<double> cumulative_;
};

std::vector<double> ZipfWeights(size_t n, double s) {
  std::vector<double> w(n);
  for (size_t i = 0; i < n; ++i) w[i] = 1.0 / std::pow(static_cast<double>(i + 1), s);
  return w;
}

struct Chapter {
  int code;
  // Typical declared value in EUR per kg, and kg per declared unit.
  double value_per_kg;
  double kg_per_unit;
  // Share of world trade into the region (relative).
  double weight;
  std::vector<int> headings;
};

const std::vector<Chapter>& Chapters() {
  static const auto* chapters = new std::vector<Chapter>{
      {3, 6, 10, 3, {302, 303, 304, 306}},
      {8, 2, 12, 4, {803, 805, 806, 808}},
      {9, 5, 20, 2, {901, 902, 904}},
      {16, 5, 1, 2, {1602, 1604}},
      {20, 2, 1, 2, {2004, 2008, 2009}},
      {22, 2.5, 1, 3, {2203, 2204, 2208}},
      {24, 30, 0.2, 1.5, {2401, 2402, 2403}},
      {27, 0.7, 1000, 3, {2701, 2710, 2711}},
      {28, 1, 25, 2, {2804, 2815, 2836}},
      {29, 4, 25, 2, {2905, 2915, 2933}},
      {30, 80, 0.5, 2, {3002, 3004, 3006}},
      {33, 18, 0.3, 2, {3303, 3304, 3305}},
      {38, 3, 20, 2, {3808, 3824}},
      {39, 3, 5, 6, {3901, 3920, 3923, 3926}},
      {40, 4, 8, 3, {4011, 4015, 4016}},
      {42, 35, 0.8, 1.5, {4202, 4203}},
      {44, 0.8, 20, 3, {4403, 4407, 4412, 4418}},
      {48, 1.5, 5, 3, {4802, 4810, 4819}},
      {52, 4, 10, 1.5, {5205, 5208, 5209}},
      {61, 22, 0.3, 4, {6104, 6109, 6110, 6115}},
      {62, 25, 0.5, 4, {6201, 6203, 6204, 6205}},
      {64, 20, 0.9, 3, {6402, 6403, 6404}},
      {69, 2.2, 2, 1.5, {6907, 6911, 6912}},
      {70, 2.5, 3, 1.5, {7005, 7010, 7013}},
      {72, 0.9, 500, 4, {7208, 7210, 7214}},
      {73, 3, 10, 4, {7308, 7318, 7326}},
      {76, 4, 20, 2, {7604, 7606, 7616}},
      {84, 25, 30, 8, {8413, 8421, 8471, 8481, 8483}},
      {85, 40, 2, 8, {8504, 8507, 8517, 8528, 8544}},
      {87, 10, 50, 5, {8703, 8708, 8711, 8714}},
      {90, 90, 2, 3, {9018, 9021, 9027}},
      {94, 5, 15, 3, {9401, 9403, 9405}},
      {95, 9, 1, 3, {9503, 9504, 9506}},
      {96, 10, 0.5, 1.5, {9603, 9608, 9619}},
  };
  return *chapters;
}

struct Origin {
  absl::string_view code;
  double weight;
  // Price level relative to the world (cheap producers below 1).
  double price_factor;
};

constexpr std::array<Origin, 39> kOrigins = {{
    {"CN", 30, 0.8},   {"US", 6, 1.3},   {"DE", 8, 1.25},   {"TR", 5, 0.9},    {"IN", 5, 0.85},
    {"VN", 4, 0.8},    {"BD", 2, 0.75},  {"PK", 1.5, 0.8},  {"KR", 3, 1.15},   {"JP", 3, 1.3},
    {"TW", 2.5, 1.1},  {"TH", 2, 0.9},   {"MY", 2, 0.9},    {"ID", 1.5, 0.85}, {"GB", 4, 1.2},
    {"NO", 3, 1.2},    {"CH", 2, 1.4},   {"BR", 1.5, 0.9},  {"AR", 0.8, 0.9},  {"CL", 0.8, 0.95},
    {"ZA", 0.8, 0.95}, {"EG", 0.8, 0.8}, {"MA", 0.8, 0.85}, {"AE", 2, 0.95},   {"SG", 1.5, 1.1},
    {"HK", 2, 0.85},   {"UA", 2, 0.85},  {"KZ", 1.5, 0.8},  {"UZ", 0.8, 0.75}, {"GE", 0.6, 0.8},
    {"AM", 0.5, 0.8},  {"BY", 1, 0.8},   {"RS", 0.8, 0.9},  {"MX", 1, 0.9},    {"CA", 1.5, 1.2},
    {"AU", 0.8, 1.2},  {"IL", 1, 1.2},   {"LK", 0.6, 0.85}, {"IS", 0.4, 1.2},
}};

size_t OriginIndex(absl::string_view code) {
  for (size_t i = 0; i < kOrigins.size(); ++i) {
    if (kOrigins[i].code == code) return i;
  }
  return 0;  // only called with codes from the table above
}

// Shared pattern: undervaluation of these chapters, most often from these
// origins.
constexpr std::array<int, 7> kUndervaluedChapters = {33, 42, 61, 62, 64, 85, 95};
constexpr std::array<absl::string_view, 7> kUndervaluingOrigins = {"CN", "HK", "VN", "BD",
                                                                   "TR", "PK", "AE"};

// Shared pattern: misdescription (quantity far above what the mass suggests)
// in these chapters.
constexpr std::array<int, 6> kMisdescribedChapters = {39, 40, 73, 84, 87, 94};

// Shared pattern: high-risk (HS heading, origin) combinations.
struct RiskCombo {
  int heading;
  absl::string_view origin;
};
constexpr std::array<RiskCombo, 12> kNamedRiskCombos = {{
    {2402, "AE"},  // cigarettes
    {2402, "BY"},
    {3004, "IN"},  // medicaments
    {8517, "HK"},  // phones
    {2208, "GE"},  // spirits
    {9018, "PK"},  // surgical instruments
    {3304, "TR"},  // cosmetics
    {2710, "KZ"},  // fuel oils
    {4403, "BY"},  // timber
    {7214, "TR"},  // steel bars (anti-dumping circumvention)
    {8703, "AM"},  // cars (grey imports)
    {4011, "MY"},  // tyres
}};

// Share of rows that fall in some high-risk combination; each combination
// weighs kComboHomeWeight in its home administration and 1 elsewhere.
constexpr double kComboRowShare = 0.025;
constexpr double kComboHomeWeight = 2;

// Probability that a declaration matching a pattern is fraudulent.
constexpr double kComboFraud = 0.65;
// The local route explains about this share of rows, whatever its traffic.
constexpr double kRouteFraudRows = 0.0003;
constexpr double kUndervaluationFraud = 0.008;
constexpr double kUndervaluationFraudOther = 0.003;
constexpr double kRiskyTraderFraud = 0.25;
constexpr double kRiskyTraderRows = 0.0025;
constexpr double kRiskyDeclarantRows = 0.0005;
constexpr double kAnyMisdescriptionFraud = 0.003;
constexpr double kUnexplainedFraud = 0.0005;
// Share of rows sent along the local smuggling route.
constexpr double kRouteRowShare = 0.003;
// Frauds the officers find.
constexpr double kDetection = 0.8;
// Innocent look-alikes among compliant rows.
constexpr double kLowValueLookalike = 0.005;
constexpr double kOddUnitsLookalike = 0.002;
// Fraud probabilities are scaled by this in small administrations.
constexpr double kSmallCompliance = 0.85;

// The named combinations plus more drawn from the catalogue with a fixed
// seed (the same in every run and administration): a long tail, so that each
// one is rare in any single administration.
const std::vector<RiskCombo>& RiskCombos() {
  static const auto* combos = [] {
    auto* all = new std::vector<RiskCombo>(kNamedRiskCombos.begin(), kNamedRiskCombos.end());
    constexpr size_t kTotal = 120;
    Rng rng(20230101);
    const std::vector<Chapter>& chapters = Chapters();
    while (all->size() < kTotal) {
      const Chapter& c = chapters[rng.Index(chapters.size())];
      const RiskCombo combo{c.headings[rng.Index(c.headings.size())],
                            kOrigins[3 + rng.Index(kOrigins.size() - 3)].code};
      if (std::none_of(all->begin(), all->end(), [&](const RiskCombo& o) {
            return o.heading == combo.heading && o.origin == combo.origin;
          })) {
        all->push_back(combo);
      }
    }
    return all;
  }();
  return *combos;
}

// The emerging scheme (trade-based money laundering by over-invoicing): from
// kEmergingFirstDay on, this share of rows are low-value bulk goods from a
// trade hub, declared by a new company at many times their value, to move
// money abroad under cover of payment. It starts after the training period
// of a 20 % date hold-out, so no control result before it shows it.
constexpr double kEmergingRowShare = 0.006;
constexpr std::array<int, 6> kOverInvoicedChapters = {27, 44, 48, 69, 70, 72};
constexpr std::array<absl::string_view, 3> kOverInvoicingOrigins = {"AE", "HK", "SG"};

// Transport mode codes (EU): 1 sea, 2 rail, 3 road, 4 air, 5 postal.
enum class OfficeKind { kSeaPort = 1, kRoadBorder, kRailBorder, kAirport, kPostal, kInland };

struct ModeShare {
  int mode;
  double share;
};

std::vector<ModeShare> ModesOf(OfficeKind kind) {
  switch (kind) {
    case OfficeKind::kSeaPort:
      return {{1, 0.85}, {3, 0.15}};
    case OfficeKind::kRoadBorder:
      return {{3, 0.9}, {2, 0.1}};
    case OfficeKind::kRailBorder:
      return {{2, 0.8}, {3, 0.2}};
    case OfficeKind::kAirport:
      return {{4, 0.95}, {3, 0.05}};
    case OfficeKind::kPostal:
      return {{5, 1.0}};
    case OfficeKind::kInland:
      return {{3, 0.6}, {1, 0.2}, {4, 0.2}};
  }
  return {{3, 1.0}};
}

// Median gross mass (kg) and its log-spread by transport mode.
std::pair<double, double> MassOfMode(int mode) {
  switch (mode) {
    case 1:
      return {9000, 1.0};
    case 2:
      return {20000, 0.8};
    case 4:
      return {120, 1.2};
    case 5:
      return {1.2, 0.8};
    default:
      return {4000, 1.0};
  }
}

// Value-per-kg level of a heading within its chapter, fixed in [0.6, 1.6).
double HeadingPriceFactor(int heading) {
  return 0.6 + static_cast<double>(SplitMix64(static_cast<uint64_t>(heading)) % 1000) / 1000.0;
}

struct Office {
  std::string code;
  Discrete modes;
  std::vector<int> mode_codes;
};

struct Importer {
  std::string id;
  std::array<size_t, 2> chapters;  // indices into Chapters()
  size_t origin;                   // index into kOrigins
  size_t declarant;
  bool risky;
};

struct Profile {
  std::string code;
  size_t rows;
  Discrete chapter_mix;
  Discrete origin_mix;
  std::vector<Office> offices;
  Discrete office_mix;
  std::vector<Importer> importers;
  Discrete importer_mix;
  std::vector<std::string> declarants;
  Discrete declarant_mix;
  // Injection probability of each risk combination.
  std::vector<double> combo_share;
  Discrete combo_pick;
  // Local patterns.
  size_t route_office;
  size_t route_chapter;
  int route_heading;
  double route_fraud;
  size_t risky_declarant;
  double risky_declarant_fraud;
  // Multiplies every fraud probability.
  double fraud_scale;
  bool emerging_scheme = false;
};

bool IsUndervaluedChapter(int chapter) {
  return std::find(kUndervaluedChapters.begin(), kUndervaluedChapters.end(), chapter) !=
         kUndervaluedChapters.end();
}

bool IsMisdescribedChapter(int chapter) {
  return std::find(kMisdescribedChapters.begin(), kMisdescribedChapters.end(), chapter) !=
         kMisdescribedChapters.end();
}

bool IsUndervaluingOrigin(absl::string_view origin) {
  return std::find(kUndervaluingOrigins.begin(), kUndervaluingOrigins.end(), origin) !=
         kUndervaluingOrigins.end();
}

bool IsComboHeading(int heading) {
  for (const RiskCombo& c : RiskCombos()) {
    if (c.heading == heading) return true;
  }
  return false;
}

// `hub` / `hub_count`: the administration's position among the large ones,
// which are home to the risk combinations; nullopt for a small one.
Profile BuildProfile(const std::string& code, std::optional<size_t> hub, size_t hub_count,
                     uint64_t rows, Rng& rng) {
  const std::vector<Chapter>& chapters = Chapters();
  Profile p;
  p.code = code;
  p.rows = rows;

  // Trade mix: world weights bent per administration, three specialities.
  std::vector<double> chapter_weights;
  for (const Chapter& c : chapters) chapter_weights.push_back(c.weight * rng.LogNormal(1, 0.9));
  for (int k = 0; k < 3; ++k) chapter_weights[rng.Index(chapters.size())] *= 3;
  p.chapter_mix = Discrete(chapter_weights);
  std::vector<double> origin_weights;
  for (const Origin& o : kOrigins) origin_weights.push_back(o.weight * rng.LogNormal(1, 0.8));
  p.origin_mix = Discrete(origin_weights);

  // Offices: at least a sea port, a road border, an airport and a postal
  // centre; codes <CODE><kind digit><serial>, e.g. EE4002 (an airport).
  const size_t office_count = 6 + rng.Index(5);
  std::vector<double> office_weights;
  for (size_t i = 0; i < office_count; ++i) {
    static constexpr OfficeKind kFirst[] = {OfficeKind::kSeaPort, OfficeKind::kRoadBorder,
                                            OfficeKind::kAirport, OfficeKind::kPostal};
    const OfficeKind kind = i < 4 ? kFirst[i] : static_cast<OfficeKind>(1 + rng.Index(6));
    Office office;
    char serial[24];
    std::snprintf(serial, sizeof serial, "%03zu", i + 1);
    office.code = absl::StrCat(code, static_cast<int>(kind), serial);
    std::vector<double> shares;
    for (const ModeShare& m : ModesOf(kind)) {
      shares.push_back(m.share);
      office.mode_codes.push_back(m.mode);
    }
    office.modes = Discrete(shares);
    p.offices.push_back(std::move(office));
    office_weights.push_back(rng.LogNormal(1, 0.8) * (kind == OfficeKind::kPostal ? 0.4 : 1.0));
  }
  p.office_mix = Discrete(office_weights);

  // Declarants (customs brokers) and importers, both Zipf-popular.
  const size_t declarant_count = std::clamp<size_t>(rows / 400, 8, 200);
  const uint64_t declarant_salt = rng.Index(9000);
  for (size_t i = 0; i < declarant_count; ++i) {
    p.declarants.push_back(absl::StrCat(code, "D", 1000 + (i * 7919 + declarant_salt) % 9000));
  }
  p.declarant_mix = Discrete(ZipfWeights(declarant_count, 0.9));
  const size_t importer_count = std::clamp<size_t>(rows / 25, 40, 200000);
  const uint64_t importer_salt = rng.Index(900000000);
  for (size_t i = 0; i < importer_count; ++i) {
    Importer im;
    // 7^10 is coprime with 9e8: distinct i give distinct numbers.
    im.id = absl::StrCat(code, 100000000 + (i * 282475249ull + importer_salt) % 900000000);
    im.chapters = {p.chapter_mix.Sample(rng), p.chapter_mix.Sample(rng)};
    im.origin = p.origin_mix.Sample(rng);
    im.declarant = p.declarant_mix.Sample(rng);
    im.risky = false;
    p.importers.push_back(std::move(im));
  }
  p.importer_mix = Discrete(ZipfWeights(importer_count, 1.0));
  // Risky traders are busy ones, neither the giants nor the occasional; they
  // file about kRiskyTraderRows of the declarations whatever the size.
  double risky_share = 0;
  for (size_t i = 10; i < importer_count && risky_share < kRiskyTraderRows; ++i) {
    if (!rng.Bernoulli(0.1)) continue;
    p.importers[i].risky = true;
    risky_share += p.importer_mix.Share(i);
  }

  // Risk combinations: common at home (hub position mod hub count), rare
  // elsewhere.
  double total_weight = 0;
  const std::vector<RiskCombo>& combos = RiskCombos();
  std::vector<double> weights(combos.size());
  for (size_t k = 0; k < combos.size(); ++k) {
    weights[k] = hub && k % hub_count == *hub ? kComboHomeWeight : 1.0;
    total_weight += weights[k];
  }
  p.combo_share.resize(combos.size());
  for (size_t k = 0; k < combos.size(); ++k) {
    p.combo_share[k] = kComboRowShare * weights[k] / total_weight;
  }
  p.combo_pick = Discrete(weights);

  // Local smuggling route: a non-main office and a heading of a chapter the
  // administration imports a lot of (outside the shared patterns).
  p.route_office = 1 + rng.Index(office_count - 1);
  std::vector<size_t> by_weight(chapters.size());
  for (size_t i = 0; i < by_weight.size(); ++i) by_weight[i] = i;
  std::stable_sort(by_weight.begin(), by_weight.end(), [&](size_t a, size_t b) {
    return p.chapter_mix.Share(a) > p.chapter_mix.Share(b);
  });
  for (int attempt = 0; attempt < 1000; ++attempt) {
    p.route_chapter = by_weight[rng.Index(8)];
    const std::vector<int>& headings = chapters[p.route_chapter].headings;
    p.route_heading = headings[rng.Index(headings.size())];
    if (!IsComboHeading(p.route_heading) && !IsUndervaluedChapter(chapters[p.route_chapter].code)) {
      break;
    }
  }
  const double natural_route_share = p.office_mix.Share(p.route_office) *
                                     p.chapter_mix.Share(p.route_chapter) /
                                     static_cast<double>(chapters[p.route_chapter].headings.size());
  p.route_fraud = std::min(0.3, kRouteFraudRows / (kRouteRowShare + natural_route_share));
  // A declarant of middling size, wrong often enough to explain about 0.1 %
  // of the rows whatever its share.
  p.risky_declarant = std::min(declarant_count - 1, 3 + rng.Index(12));
  p.risky_declarant_fraud =
      std::min(0.3, kRiskyDeclarantRows / p.declarant_mix.Share(p.risky_declarant));
  p.fraud_scale = hub ? 1.0 : kSmallCompliance;
  return p;
}

// Proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant).
void CivilFromDays(int32_t z, int* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int>(yoe) + era * 400 + (*m <= 2);
}

void AppendFixed(std::string* out, double v, int decimals) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, decimals);
  out->append(buf, r.ptr);
}

// 2023-01-01
constexpr int32_t kFirstDay = 19358;
constexpr int32_t kDaysInYear = 365;
// 2023-10-28: the emerging scheme's first day.
constexpr int32_t kEmergingFirstDay = kFirstDay + 300;

enum class Fraud {
  kNone,
  kCombo,
  kRoute,
  kUndervaluation,
  kMisdescription,
  kRiskyDeclarant,
  kUnexplained,
  kOverInvoicing
};

// The pattern's name in the ground-truth file.
absl::string_view FraudName(Fraud fraud) {
  switch (fraud) {
    case Fraud::kCombo:
      return "risk_combination";
    case Fraud::kRoute:
      return "local_route";
    case Fraud::kUndervaluation:
      return "undervaluation";
    case Fraud::kMisdescription:
      return "misdescription";
    case Fraud::kRiskyDeclarant:
      return "risky_declarant";
    case Fraud::kUnexplained:
      return "unexplained";
    case Fraud::kOverInvoicing:
      return "over_invoicing";
    case Fraud::kNone:
      break;
  }
  return "none";
}

size_t ChapterIndex(int code) {
  const std::vector<Chapter>& chapters = Chapters();
  for (size_t c = 0; c < chapters.size(); ++c) {
    if (chapters[c].code == code) return c;
  }
  return 0;  // only called with codes from the table
}

// Streams the administration's declarations into `writer` and the ground
// truth of its frauds into `truth`; counts the positives into `*positives`.
absl::Status GenerateCsv(const Profile& p, Rng& rng, io::AtomicFileWriter* writer,
                         io::AtomicFileWriter* truth, uint64_t* positives) {
  constexpr size_t kFlushBytes = 1 << 20;
  const std::vector<Chapter>& chapters = Chapters();
  std::string out;
  out.reserve(kFlushBytes + 4096);
  out +=
      "declaration_id,date,hs_code,origin_country,office,importer,declarant,transport_mode,"
      "declared_value,gross_mass_kg,quantity,selection,control_result\n";
  std::string truth_out = "declaration_id,pattern,found\n";

  // Dates first, in order; weekends are quiet.
  std::vector<int32_t> days(p.rows);
  for (int32_t& day : days) {
    do {
      day = kFirstDay + static_cast<int32_t>(rng.Index(kDaysInYear));
      // 1970-01-01 was a Thursday: (day + 3) % 7 is 5 or 6 on weekends.
    } while ((day + 3) % 7 >= 5 && !rng.Bernoulli(0.25));
  }
  std::sort(days.begin(), days.end());

  for (size_t r = 0; r < p.rows; ++r) {
    const Importer& importer = p.importers[p.importer_mix.Sample(rng)];
    const size_t declarant = rng.Bernoulli(0.8) ? importer.declarant : p.declarant_mix.Sample(rng);
    size_t chapter =
        rng.Bernoulli(0.7) ? importer.chapters[rng.Index(2)] : p.chapter_mix.Sample(rng);
    int heading = chapters[chapter].headings[rng.Index(chapters[chapter].headings.size())];
    size_t origin = rng.Bernoulli(0.4) ? importer.origin : p.origin_mix.Sample(rng);
    size_t office = p.office_mix.Sample(rng);
    std::string importer_id = importer.id;

    // Routes that the shared and local patterns need. Draws for the emerging
    // scheme only from its first day, so the rows before it stay as they were.
    const bool emerging =
        p.emerging_scheme && days[r] >= kEmergingFirstDay && rng.Bernoulli(kEmergingRowShare);
    const double u = rng.Uniform();
    if (emerging) {
      chapter = ChapterIndex(kOverInvoicedChapters[rng.Index(kOverInvoicedChapters.size())]);
      heading = chapters[chapter].headings[rng.Index(chapters[chapter].headings.size())];
      origin = OriginIndex(kOverInvoicingOrigins[rng.Index(kOverInvoicingOrigins.size())]);
      // A company not seen before (collisions with real ones are negligible).
      importer_id = absl::StrCat(p.code, 100000000 + rng.Index(900000000));
    } else if (u < kComboRowShare) {
      const RiskCombo& combo = RiskCombos()[p.combo_pick.Sample(rng)];
      heading = combo.heading;
      origin = OriginIndex(combo.origin);
      chapter = ChapterIndex(heading / 100);
    } else if (u < kComboRowShare + kRouteRowShare) {
      office = p.route_office;
      chapter = p.route_chapter;
      heading = p.route_heading;
    }
    static constexpr const char* kSubheadings[] = {"10", "20", "90"};
    const char* subheading = kSubheadings[rng.Index(3)];
    const Chapter& ch = chapters[chapter];
    const Office& off = p.offices[office];
    const int mode = off.mode_codes[off.modes.Sample(rng)];

    // Natural values.
    const auto [mass_median, mass_sigma] = MassOfMode(mode);
    double mass = rng.LogNormal(mass_median * std::pow(ch.kg_per_unit / 5.0, 0.3), mass_sigma);
    mass = std::max(mass, 0.1);
    double quantity = std::max(1.0, std::round(mass / ch.kg_per_unit * rng.LogNormal(1, 0.35)));
    double value = mass * ch.value_per_kg * HeadingPriceFactor(heading) *
                   kOrigins[origin].price_factor * rng.LogNormal(1, 0.5);

    // Fraud: the first pattern that fires.
    Fraud fraud = Fraud::kNone;
    bool combo_match = false;
    for (const RiskCombo& c : RiskCombos()) {
      if (c.heading == heading && c.origin == kOrigins[origin].code) combo_match = true;
    }
    const double scale = p.fraud_scale;
    if (emerging) {
      fraud = Fraud::kOverInvoicing;
    } else if (combo_match && rng.Bernoulli(scale * kComboFraud)) {
      fraud = Fraud::kCombo;
    } else if (office == p.route_office && heading == p.route_heading &&
               rng.Bernoulli(scale * p.route_fraud)) {
      fraud = Fraud::kRoute;
    } else if (IsUndervaluedChapter(ch.code) &&
               rng.Bernoulli(scale * (IsUndervaluingOrigin(kOrigins[origin].code)
                                          ? kUndervaluationFraud
                                          : kUndervaluationFraudOther))) {
      fraud = Fraud::kUndervaluation;
    } else if (importer.risky && IsMisdescribedChapter(ch.code) &&
               rng.Bernoulli(scale * kRiskyTraderFraud)) {
      fraud = Fraud::kMisdescription;
    } else if (declarant == p.risky_declarant && rng.Bernoulli(scale * p.risky_declarant_fraud)) {
      fraud = Fraud::kRiskyDeclarant;
    } else if (IsMisdescribedChapter(ch.code) && rng.Bernoulli(scale * kAnyMisdescriptionFraud)) {
      fraud = Fraud::kMisdescription;
    } else if (rng.Bernoulli(scale * kUnexplainedFraud)) {
      fraud = Fraud::kUnexplained;
    }
    if (fraud == Fraud::kUndervaluation) value *= rng.Uniform(0.03, 0.12);
    if (fraud == Fraud::kOverInvoicing) value *= rng.Uniform(15, 60);
    if (fraud == Fraud::kMisdescription) quantity = std::round(quantity * rng.Uniform(8, 25));
    if (fraud == Fraud::kNone) {
      if (rng.Bernoulli(kLowValueLookalike)) value *= rng.Uniform(0.10, 0.35);
      if (rng.Bernoulli(kOddUnitsLookalike)) quantity = std::round(quantity * rng.Uniform(8, 25));
    }
    value = std::max(value, 1.0);
    const bool found = fraud != Fraud::kNone && rng.Bernoulli(kDetection);
    // How the declaration came to be controlled; not a feature (no leakage).
    const bool by_risk = rng.Bernoulli(fraud != Fraud::kNone ? 0.8 : 0.65);

    int year;
    unsigned month, day;
    CivilFromDays(days[r], &year, &month, &day);
    char date[48];
    std::snprintf(date, sizeof date, "%04d-%02u-%02u", year, month, day);
    char sequence[32];
    std::snprintf(sequence, sizeof sequence, "%010zu", r + 1);
    const std::string id = absl::StrCat(year % 100, p.code, sequence);
    absl::StrAppend(&out, id, ",", date, ",", heading / 1000, heading / 100 % 10,
                    heading % 100 / 10, heading % 10, subheading, ",", kOrigins[origin].code, ",",
                    off.code, ",", importer_id, ",", p.declarants[declarant], ",", mode, ",");
    AppendFixed(&out, value, 2);
    out += ',';
    AppendFixed(&out, mass, 1);
    out += ',';
    AppendFixed(&out, quantity, 0);
    absl::StrAppend(&out, ",", by_risk ? "risk" : "random", ",", found ? 1 : 0, "\n");
    if (found) ++*positives;
    if (fraud != Fraud::kNone) {
      absl::StrAppend(&truth_out, id, ",", FraudName(fraud), ",", found ? 1 : 0, "\n");
    }
    if (out.size() >= kFlushBytes) {
      if (absl::Status s = writer->Write(out); !s.ok()) return s;
      out.clear();
    }
    if (truth_out.size() >= kFlushBytes) {
      if (absl::Status s = truth->Write(truth_out); !s.ok()) return s;
      truth_out.clear();
    }
  }
  if (absl::Status s = truth->Write(truth_out); !s.ok()) return s;
  return writer->Write(out);
}

double SizeFactor(size_t index) {
  static constexpr double kFactors[] = {1.0, 0.6, 0.1, 0.8, 0.35, 0.2, 0.5, 0.15};
  constexpr size_t kCount = sizeof kFactors / sizeof kFactors[0];
  return index < kCount ? kFactors[index] : kFactors[1 + (index - 1) % (kCount - 1)];
}

// Large administrations are home to the shared risk combinations.
constexpr double kHubFactor = 0.3;

bool IsValidCode(const std::string& code) {
  if (code.size() < 2 || code.size() > 3) return false;
  for (char c : code) {
    if (c < 'A' || c > 'Z') return false;
  }
  return true;
}

}  // namespace

uint64_t AdministrationRows(uint64_t rows, size_t index) {
  return std::max<uint64_t>(
      10, static_cast<uint64_t>(std::llround(static_cast<double>(rows) * SizeFactor(index))));
}

v1::DeclarationSchema SyntheticDeclarationSchema() {
  v1::DeclarationSchema schema;
  auto add = [&](const char* name, v1::ColumnRole role) {
    v1::ColumnSpec* c = schema.add_columns();
    c->set_name(name);
    c->set_role(role);
    return c;
  };
  auto categorical = [&](const char* name, uint32_t buckets, uint32_t prefix = 0) {
    v1::ColumnSpec* c = add(name, v1::CATEGORICAL);
    c->set_hash_buckets(buckets);
    c->set_prefix_length(prefix);
  };
  add("declaration_id", v1::ID);
  add("date", v1::DATE);
  categorical("hs_code", 1024, 4);
  categorical("origin_country", 256);
  categorical("office", 64);
  categorical("importer", 4096);
  categorical("declarant", 256);
  categorical("transport_mode", 8);
  add("declared_value", v1::NUMERIC)->set_log1p(true);
  add("gross_mass_kg", v1::NUMERIC)->set_log1p(true);
  add("quantity", v1::NUMERIC)->set_log1p(true);
  add("selection", v1::SELECTION);
  add("control_result", v1::LABEL);
  return schema;
}

absl::Status SynthesizeDeclarations(const SynthOptions& options) {
  if (options.admins.empty()) {
    return absl::InvalidArgumentError("synth: admins is empty; give at least one code");
  }
  std::set<std::string> seen;
  for (const std::string& code : options.admins) {
    if (!IsValidCode(code)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "synth: admins: \"", code, "\" is not an administration code (2-3 letters A-Z)"));
    }
    if (!seen.insert(code).second) {
      return absl::InvalidArgumentError(absl::StrCat("synth: admins: \"", code, "\" twice"));
    }
  }
  if (options.rows < 100 || options.rows > 20'000'000) {
    return absl::InvalidArgumentError(
        absl::StrCat("synth: rows must be in [100, 20000000], found ", options.rows));
  }
  if (options.out_dir.empty()) return absl::InvalidArgumentError("synth: out_dir is empty");

  absl::StatusOr<std::string> schema_json =
      config::PrintProtoJson(SyntheticDeclarationSchema(), {.indent = true});
  if (!schema_json.ok()) {
    return absl::InternalError(absl::StrCat("synth: ", schema_json.status().message()));
  }

  size_t hub_count = 0;
  for (size_t i = 0; i < options.admins.size(); ++i) {
    if (SizeFactor(i) >= kHubFactor) ++hub_count;
  }
  size_t hubs_seen = 0;
  for (size_t i = 0; i < options.admins.size(); ++i) {
    const std::string& code = options.admins[i];
    std::optional<size_t> hub;
    if (SizeFactor(i) >= kHubFactor) hub = hubs_seen++;
    const std::string dir = (fs::path(options.out_dir) / code).string();
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return absl::InternalError(absl::StrCat(dir, ": cannot create: ", ec.message()));

    const uint64_t stream = SplitMix64(options.seed ^ SplitMix64(Fnv1a(code)));
    Rng profile_rng(stream);
    Rng row_rng(SplitMix64(stream + 1));
    Profile profile =
        BuildProfile(code, hub, hub_count, AdministrationRows(options.rows, i), profile_rng);
    profile.emerging_scheme = options.emerging_scheme;
    io::AtomicFileWriter csv;
    io::AtomicFileWriter truth;
    uint64_t positives = 0;
    if (absl::Status s = csv.Open(dir + "/declarations.csv"); !s.ok()) return s;
    if (absl::Status s = truth.Open(dir + "/" + std::string(kTruthFileName)); !s.ok()) return s;
    if (absl::Status s = GenerateCsv(profile, row_rng, &csv, &truth, &positives); !s.ok()) {
      return s;
    }
    if (absl::Status s = csv.Commit(); !s.ok()) return s;
    if (absl::Status s = truth.Commit(); !s.ok()) return s;
    if (absl::Status s = io::WriteFileAtomically(dir + "/declarations.schema.json", *schema_json);
        !s.ok()) {
      return s;
    }
    spdlog::info("synth: {}: {} declarations, {} positives ({:.2f} %)", dir, profile.rows,
                 positives, 100.0 * static_cast<double>(positives) / profile.rows);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unordered_map<std::string, FraudTruth>> ReadFraudTruth(
    const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open the ground truth"));
  std::unordered_map<std::string, FraudTruth> truth;
  std::string line;
  if (!std::getline(in, line) || line != "declaration_id,pattern,found") {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ":1: expected the header \"declaration_id,pattern,found\""));
  }
  for (size_t number = 2; std::getline(in, line); ++number) {
    const std::vector<std::string> fields = absl::StrSplit(line, ',');
    if (fields.size() != 3 || fields[0].empty() || fields[1].empty() ||
        (fields[2] != "0" && fields[2] != "1")) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ":", number, ": expected declaration_id,pattern,found with found 0 or 1"));
    }
    if (!truth.emplace(fields[0], FraudTruth{fields[1], fields[2] == "1"}).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", number, ": declaration ", fields[0], " twice"));
    }
  }
  return truth;
}

}  // namespace fedcustoms::synth
