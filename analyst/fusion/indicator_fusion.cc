#include "analyst/fusion/indicator_fusion.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/config/proto_json.h"
#include "common/io/small_file.h"

namespace fedcustoms::fusion {
namespace {

using nlohmann::json;

constexpr double kMaxProbability = 1;
constexpr double kMaxTrust = 10;
// Names and keys come from the input; a message or a terminal line shows at
// most this much of one so a hostile file cannot flood the log.
constexpr size_t kMaxShownBytes = 80;

// Shortest text that reads back as the same double, so "1.0000001 is outside
// [0, 1]" never prints as "1 is outside [0, 1]".
std::string Number(double x) {
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), x);
  return ec == std::errc() ? std::string(buf, end) : "?";
}

// Input text fit for a message or a terminal: control bytes escaped (a name
// with a newline cannot forge a log line), clipped without cutting a UTF-8
// sequence.
std::string Shown(std::string_view s, size_t max_bytes = kMaxShownBytes) {
  bool clipped = false;
  if (s.size() > max_bytes) {
    size_t cut = max_bytes;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
    s = s.substr(0, cut);
    clipped = true;
  }
  std::string out;
  out.reserve(s.size() + 3);
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) {
      char esc[5];
      std::snprintf(esc, sizeof(esc), "\\x%02X", u);
      out += esc;
    } else {
      out += c;
    }
  }
  if (clipped) out += "…";
  return out;
}

std::string Join(const std::vector<std::string>& names) {
  constexpr size_t kMaxListed = 20;
  std::string out;
  for (size_t i = 0; i < names.size() && i < kMaxListed; ++i) {
    absl::StrAppend(&out, i == 0 ? "" : ", ", Shown(names[i]));
  }
  if (names.size() > kMaxListed) absl::StrAppend(&out, " and ", names.size() - kMaxListed, " more");
  return out;
}

// Every message reads "<source>: <field path>: <what>".
absl::Status Bad(const std::string& source, const std::string& path, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": ", path, ": ", what));
}

absl::Status CheckRange(const std::string& source, const std::string& path, double value,
                        double max) {
  const std::string range = absl::StrCat("[0, ", Number(max), "]");
  if (!std::isfinite(value)) {
    return Bad(source, path, absl::StrCat(Number(value), " is not a finite number in ", range));
  }
  if (value < 0 || value > max) {
    return Bad(source, path, absl::StrCat(Number(value), " is outside ", range));
  }
  return absl::OkStatus();
}

// The checks shared by the file and the struct API, so both give the same
// message for the same mistake.
absl::Status Validate(const FusionInput& in, const std::string& source) {
  if (absl::Status s = CheckRange(source, "threshold", in.threshold, kMaxProbability); !s.ok()) {
    return s;
  }
  if (in.categories.empty()) return Bad(source, "categories", "empty (name at least one category)");
  if (in.categories.size() > kMaxCategories) {
    return Bad(source, "categories",
               absl::StrCat(in.categories.size(), " categories; at most ", kMaxCategories));
  }
  std::unordered_map<std::string_view, size_t> category_index;
  for (size_t j = 0; j < in.categories.size(); ++j) {
    const std::string path = absl::StrCat("categories[", j, "]");
    if (in.categories[j].empty()) return Bad(source, path, "empty name");
    const auto [it, inserted] = category_index.emplace(in.categories[j], j);
    if (!inserted) {
      return Bad(source, path,
                 absl::StrCat("duplicate category ", Shown(in.categories[j]), " (also categories[",
                              it->second, "])"));
    }
  }
  if (in.indicators.empty()) {
    return Bad(source, "indicators", "empty (give at least one indicator)");
  }
  if (in.indicators.size() > kMaxIndicators) {
    return Bad(source, "indicators",
               absl::StrCat(in.indicators.size(), " indicators; at most ", kMaxIndicators));
  }
  std::unordered_map<std::string_view, size_t> indicator_index;
  for (size_t i = 0; i < in.indicators.size(); ++i) {
    const IndicatorInput& indicator = in.indicators[i];
    const std::string path = absl::StrCat("indicators[", i, "]");
    if (indicator.name.empty()) {
      return Bad(source, path + ".name", "empty (every indicator needs a name)");
    }
    const auto [it, inserted] = indicator_index.emplace(indicator.name, i);
    if (!inserted) {
      return Bad(source, path + ".name",
                 absl::StrCat("duplicate indicator ", Shown(indicator.name), " (also indicators[",
                              it->second, "].name)"));
    }
    if (indicator.probability.empty() && indicator.trust.empty()) {
      return Bad(source, path, "covers no category (probability and trust are both empty)");
    }
    // Each map is checked against the other so a category with a probability
    // but no trust (or the reverse) cannot silently drop out of the fusion.
    struct Side {
      const char* field;
      const std::map<std::string, double>* values;
      double max;
      const char* other_field;
      const std::map<std::string, double>* other;
      const char* missing;
    };
    const Side sides[] = {
        {"probability", &indicator.probability, kMaxProbability, "trust", &indicator.trust,
         "no trust score for this category"},
        {"trust", &indicator.trust, kMaxTrust, "probability", &indicator.probability,
         "no probability for this category"},
    };
    for (const Side& side : sides) {
      for (const auto& [category, value] : *side.values) {
        const std::string entry = absl::StrCat(path, ".", side.field, ".", Shown(category));
        if (!category_index.contains(category)) {
          return Bad(source, entry,
                     absl::StrCat("unknown category (categories are ", Join(in.categories), ")"));
        }
        if (absl::Status s = CheckRange(source, entry, value, side.max); !s.ok()) return s;
        if (!side.other->contains(category)) {
          return Bad(source, entry,
                     absl::StrCat(side.missing, " (add ", path, ".", side.other_field, ".",
                                  Shown(category), ")"));
        }
      }
    }
  }
  return absl::OkStatus();
}

// One covered pair, ready to multiply.
struct Term {
  size_t category;
  double factor;  // 1 - w_ij * I_ij
};

// prod_i (1 - w_ij * I_ij) per category, over the indicators in input order
// except `skip`. Leaving one out by skipping it in the same loop makes the
// leave-one-out I_G bit-identical to fusing the input without that indicator,
// and never larger than the full I_G: rounded multiplication by a factor in
// [0, 1] is monotone, so inserting one more factor can only lower a product.
std::vector<double> CategoryProducts(const std::vector<std::vector<Term>>& terms,
                                     size_t num_categories, size_t skip) {
  std::vector<double> products(num_categories, 1.0);
  for (size_t i = 0; i < terms.size(); ++i) {
    if (i == skip) continue;
    for (const Term& t : terms[i]) products[t.category] *= t.factor;
  }
  return products;
}

// 1 - prod_j (1 - I_j), taking the products themselves rather than 1 - I_j,
// which would round twice. A factor of exactly 0 (probability 1, trust 10)
// makes I_G exactly 1.
double Global(const std::vector<double>& products) {
  double product = 1.0;
  for (const double p : products) product *= p;
  return 1.0 - product;
}

FusionResult Compute(const FusionInput& in) {
  const size_t m = in.categories.size();
  std::unordered_map<std::string_view, size_t> category_index;
  for (size_t j = 0; j < m; ++j) category_index.emplace(in.categories[j], j);

  FusionResult r;
  // Adding +0.0 turns a -0 from the input into 0, so no "-0" reaches the
  // report.
  r.threshold = in.threshold + 0.0;
  std::vector<std::vector<Term>> terms(in.indicators.size());
  for (size_t i = 0; i < in.indicators.size(); ++i) {
    const IndicatorInput& indicator = in.indicators[i];
    std::vector<Contribution> pairs;
    for (const auto& [category, probability] : indicator.probability) {
      Contribution c;
      c.indicator_index = i;
      c.category_index = category_index.at(category);
      c.indicator = indicator.name;
      c.category = category;
      c.probability = probability + 0.0;
      c.trust = indicator.trust.at(category) + 0.0;
      // A division, not s * 0.1: 0.1 is inexact, s / 10 is correctly rounded
      // and exact for s = 5 or 10.
      c.weight = c.trust / 10;
      c.contribution = c.weight * c.probability;
      pairs.push_back(std::move(c));
    }
    std::sort(pairs.begin(), pairs.end(), [](const Contribution& a, const Contribution& b) {
      return a.category_index < b.category_index;
    });
    for (Contribution& c : pairs) {
      terms[i].push_back({c.category_index, 1.0 - c.contribution});
      r.contributions.push_back(std::move(c));
    }
  }

  const std::vector<double> products = CategoryProducts(terms, m, terms.size());
  r.global_indicator = Global(products);
  r.recommend_inspection = r.global_indicator >= r.threshold;

  r.categories.resize(m);
  for (size_t j = 0; j < m; ++j) {
    r.categories[j].name = in.categories[j];
    r.categories[j].indicator = 1.0 - products[j];
  }
  for (const Contribution& c : r.contributions) {
    r.categories[c.category_index].evidence += c.contribution;
  }
  double total = 0;
  for (const CategoryResult& c : r.categories) total += c.evidence;
  // Contributions are >= 0, so the total is 0 exactly when no category has
  // evidence; then the split is undefined and every share stays 0.
  r.has_evidence = total > 0;
  if (r.has_evidence) {
    for (CategoryResult& c : r.categories) c.share = c.evidence / total;
  }

  r.drivers.resize(r.contributions.size());
  for (size_t k = 0; k < r.drivers.size(); ++k) r.drivers[k] = k;
  std::stable_sort(r.drivers.begin(), r.drivers.end(), [&r](size_t a, size_t b) {
    return r.contributions[a].contribution > r.contributions[b].contribution;
  });
  r.category_ranking.resize(m);
  for (size_t j = 0; j < m; ++j) r.category_ranking[j] = j;
  std::stable_sort(r.category_ranking.begin(), r.category_ranking.end(), [&r](size_t a, size_t b) {
    return r.categories[a].indicator > r.categories[b].indicator;
  });

  for (size_t i = 0; i < in.indicators.size(); ++i) {
    LeaveOneOut l;
    l.indicator = in.indicators[i].name;
    l.global_without = Global(CategoryProducts(terms, m, i));
    l.effect = r.global_indicator - l.global_without;
    r.leave_one_out.push_back(std::move(l));
  }
  return r;
}

// Thrown from the parser callback: a mistake found while parsing, by path.
struct StructureError {
  std::string path;
  std::string what;
};

// The deepest nesting read. The format nests 4 deep (the top object, the
// indicators, an indicator, its probabilities); without a cap, 16 MiB of "["
// would make millions of frames, each holding a longer path.
constexpr size_t kMaxDepth = 16;

// Tracks where the parser is so that a key repeated within one object (which
// nlohmann would resolve silently to its last value) or a document nested too
// deeply is reported by its field path, as soon as it is read.
class StructureChecker {
 public:
  bool operator()(int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (frames_.size() >= kMaxDepth) {
          throw StructureError{Position(),
                               absl::StrCat("nested deeper than ", kMaxDepth, " levels")};
        }
        frames_.push_back({event == json::parse_event_t::object_start, Position(), {}, {}, 0});
        break;
      case json::parse_event_t::key: {
        Frame& top = frames_.back();
        top.key = parsed.get_ref<const std::string&>();
        if (!top.keys.insert(top.key).second) {
          throw StructureError{Position(), "duplicate key (an object may name it only once)"};
        }
        break;
      }
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        frames_.pop_back();
        Advance();
        break;
      case json::parse_event_t::value:
        Advance();
        break;
    }
    return true;
  }

 private:
  struct Frame {
    bool is_object;
    std::string path;
    std::set<std::string> keys;
    std::string key;
    size_t index;
  };

  // The path of the value the parser is at.
  std::string Position() const {
    if (frames_.empty()) return "";
    const Frame& top = frames_.back();
    if (!top.is_object) return absl::StrCat(top.path, "[", top.index, "]");
    return top.path.empty() ? Shown(top.key) : absl::StrCat(top.path, ".", Shown(top.key));
  }

  void Advance() {
    if (!frames_.empty() && !frames_.back().is_object) ++frames_.back().index;
  }

  std::vector<Frame> frames_;
};

std::string Describe(const json& value) {
  switch (value.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::object:
      return "an object";
    case json::value_t::array:
      return "a list";
    case json::value_t::string:
      return "a string";
    case json::value_t::boolean:
      return "a boolean";
    default:
      return "a number";
  }
}

// Checks that `object` has only the keys in `allowed`; `what` names the
// object in the message.
absl::Status CheckFields(const std::string& source, const std::string& prefix, const json& object,
                         const std::vector<std::string>& allowed, const char* what) {
  for (const auto& [key, value] : object.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      return Bad(source, prefix + Shown(key),
                 absl::StrCat("unknown field (", what, " has ", Join(allowed), ")"));
    }
  }
  return absl::OkStatus();
}

// Reads {"category": number, ...} into `out`; ranges are Validate's job.
absl::Status ReadNumberMap(const std::string& source, const std::string& path, const json& parent,
                           const char* field, const char* range,
                           std::map<std::string, double>* out) {
  const std::string field_path = absl::StrCat(path, ".", field);
  const std::string expected =
      absl::StrCat("an object mapping category names to numbers in ", range);
  if (!parent.contains(field)) {
    return Bad(source, field_path, absl::StrCat("missing (", expected, ")"));
  }
  const json& object = parent.at(field);
  if (!object.is_object()) {
    return Bad(source, field_path,
               absl::StrCat("expected ", expected, ", found ", Describe(object)));
  }
  for (const auto& [category, value] : object.items()) {
    if (!value.is_number()) {
      return Bad(source, absl::StrCat(field_path, ".", Shown(category)),
                 absl::StrCat("expected a number in ", range, ", found ", Describe(value)));
    }
    (*out)[category] = value.get<double>();
  }
  return absl::OkStatus();
}

absl::StatusOr<FusionInput> FromDocument(const json& doc, const std::string& source) {
  if (!doc.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source,
                     ": expected a JSON object (threshold, categories, indicators) at the "
                     "top level, found ",
                     Describe(doc)));
  }
  if (absl::Status s =
          CheckFields(source, "", doc, {"threshold", "categories", "indicators"}, "the top level");
      !s.ok()) {
    return s;
  }
  FusionInput in;
  if (!doc.contains("threshold")) return Bad(source, "threshold", "missing (a number in [0, 1])");
  const json& threshold = doc.at("threshold");
  if (!threshold.is_number()) {
    return Bad(source, "threshold",
               absl::StrCat("expected a number in [0, 1], found ", Describe(threshold)));
  }
  in.threshold = threshold.get<double>();

  if (!doc.contains("categories")) {
    return Bad(source, "categories", "missing (a non-empty list of category names)");
  }
  const json& categories = doc.at("categories");
  if (!categories.is_array()) {
    return Bad(source, "categories",
               absl::StrCat("expected a list of category names, found ", Describe(categories)));
  }
  for (size_t j = 0; j < categories.size(); ++j) {
    if (!categories[j].is_string()) {
      return Bad(
          source, absl::StrCat("categories[", j, "]"),
          absl::StrCat("expected a category name (a string), found ", Describe(categories[j])));
    }
    in.categories.push_back(categories[j].get<std::string>());
  }

  if (!doc.contains("indicators")) {
    return Bad(source, "indicators", "missing (a non-empty list of indicators)");
  }
  const json& indicators = doc.at("indicators");
  if (!indicators.is_array()) {
    return Bad(source, "indicators",
               absl::StrCat("expected a list of indicators, found ", Describe(indicators)));
  }
  for (size_t i = 0; i < indicators.size(); ++i) {
    const json& item = indicators[i];
    const std::string path = absl::StrCat("indicators[", i, "]");
    if (!item.is_object()) {
      return Bad(source, path,
                 absl::StrCat("expected an object with name, probability and trust, found ",
                              Describe(item)));
    }
    if (absl::Status s =
            CheckFields(source, path + ".", item, {"name", "probability", "trust"}, "an indicator");
        !s.ok()) {
      return s;
    }
    IndicatorInput indicator;
    if (!item.contains("name")) return Bad(source, path + ".name", "missing (a non-empty string)");
    if (!item.at("name").is_string()) {
      return Bad(source, path + ".name",
                 absl::StrCat("expected a string, found ", Describe(item.at("name"))));
    }
    indicator.name = item.at("name").get<std::string>();
    if (absl::Status s =
            ReadNumberMap(source, path, item, "probability", "[0, 1]", &indicator.probability);
        !s.ok()) {
      return s;
    }
    if (absl::Status s = ReadNumberMap(source, path, item, "trust", "[0, 10]", &indicator.trust);
        !s.ok()) {
      return s;
    }
    in.indicators.push_back(std::move(indicator));
  }
  if (absl::Status s = Validate(in, source); !s.ok()) return s;
  return in;
}

// nlohmann's message without its "[json.exception.parse_error.101] parse
// error at " prefix, clipped: the "last read" part can quote a whole
// unterminated string.
std::string ParseErrorText(std::string_view what) {
  if (const size_t at = what.find("parse error at "); at != std::string_view::npos) {
    what.remove_prefix(at + 15);
  } else if (const size_t bracket = what.find("] "); bracket != std::string_view::npos) {
    what.remove_prefix(bracket + 2);
  }
  return Shown(what, 200);
}

}  // namespace

absl::StatusOr<FusionResult> Fuse(const FusionInput& input) {
  if (absl::Status s = Validate(input, "input"); !s.ok()) return s;
  return Compute(input);
}

absl::StatusOr<FusionInput> ParseFusionInput(std::string_view text, std::string_view source_name) {
  const std::string source(source_name);
  StructureChecker checker;
  json doc;
  try {
    doc = json::parse(text.begin(), text.end(),
                      [&checker](int depth, json::parse_event_t event, json& parsed) {
                        return checker(depth, event, parsed);
                      });
  } catch (const StructureError& e) {
    return Bad(source, e.path, e.what);
  } catch (const json::parse_error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": malformed JSON at byte ", e.byte, ": ", ParseErrorText(e.what())));
  } catch (const json::exception& e) {
    // E.g. out_of_range.406 for 1e400, which no double holds.
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": malformed JSON: ", ParseErrorText(e.what())));
  }
  return FromDocument(doc, source);
}

absl::StatusOr<FusionInput> LoadFusionInput(const std::string& path) {
  auto text = io::ReadSmallFile(path, kMaxFusionInputBytes, "a fusion input");
  if (!text.ok()) return text.status();
  return ParseFusionInput(*text, path);
}

nlohmann::json FusionResultToJson(const FusionResult& r) {
  json out = json::object();
  out["global_indicator"] = r.global_indicator;
  out["threshold"] = r.threshold;
  out["recommend_inspection"] = r.recommend_inspection;
  out["has_evidence"] = r.has_evidence;
  json categories = json::array();
  for (const size_t j : r.category_ranking) {
    const CategoryResult& c = r.categories[j];
    categories.push_back({{"name", c.name},
                          {"indicator", c.indicator},
                          {"share", c.share},
                          {"evidence", c.evidence}});
  }
  out["categories"] = std::move(categories);
  json drivers = json::array();
  for (const size_t k : r.drivers) {
    const Contribution& c = r.contributions[k];
    drivers.push_back({{"indicator", c.indicator},
                       {"category", c.category},
                       {"probability", c.probability},
                       {"trust", c.trust},
                       {"weight", c.weight},
                       {"contribution", c.contribution}});
  }
  out["drivers"] = std::move(drivers);
  std::vector<size_t> order(r.leave_one_out.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&r](size_t a, size_t b) {
    return r.leave_one_out[a].effect > r.leave_one_out[b].effect;
  });
  json leave_one_out = json::array();
  for (const size_t i : order) {
    const LeaveOneOut& l = r.leave_one_out[i];
    leave_one_out.push_back(
        {{"indicator", l.indicator}, {"global_without", l.global_without}, {"effect", l.effect}});
  }
  out["leave_one_out"] = std::move(leave_one_out);
  return out;
}

namespace {

std::string Fixed(double x, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, x);
  return buf;
}

// I_G and I_S at 4 decimals, or as many more as it takes for two different
// values not to print alike ("0.5000 < 0.5000" would contradict itself).
std::pair<std::string, std::string> Comparable(double a, double b) {
  for (int digits = 4; digits <= 17; ++digits) {
    std::string x = Fixed(a, digits), y = Fixed(b, digits);
    if (a == b || x != y) return {std::move(x), std::move(y)};
  }
  return {Number(a), Number(b)};
}

}  // namespace

std::string FusionSummary(const FusionResult& r) {
  size_t width = 0;
  for (const CategoryResult& c : r.categories) width = std::max(width, Shown(c.name).size());
  std::string out;
  for (const size_t j : r.category_ranking) {
    const CategoryResult& c = r.categories[j];
    std::string name = Shown(c.name);
    name.resize(width, ' ');
    absl::StrAppend(&out, name, "  I_j ", Fixed(c.indicator, 4), "  share ");
    if (r.has_evidence) {
      char share[16];
      std::snprintf(share, sizeof(share), "%5.1f %%", 100 * c.share);
      absl::StrAppend(&out, share);
    } else {
      absl::StrAppend(&out, "    -  ");
    }
    // Drivers are sorted, so the first one in this category is its strongest.
    const Contribution* strongest = nullptr;
    for (const size_t k : r.drivers) {
      if (r.contributions[k].category_index == j) {
        strongest = &r.contributions[k];
        break;
      }
    }
    if (strongest != nullptr && strongest->contribution > 0) {
      absl::StrAppend(&out, "  strongest ", Shown(strongest->indicator), " (w*I ",
                      Fixed(strongest->contribution, 3), ")");
    } else {
      absl::StrAppend(&out, "  no evidence");
    }
    out += '\n';
  }
  const auto [global, threshold] = Comparable(r.global_indicator, r.threshold);
  absl::StrAppend(&out, "I_G ", global, r.recommend_inspection ? " >= " : " < ", "I_S ", threshold,
                  r.recommend_inspection ? ": intrusive inspection recommended"
                                         : ": no intrusive inspection recommended");
  if (!r.has_evidence) {
    absl::StrAppend(&out, "; no indicator gives evidence for any category");
  } else {
    const LeaveOneOut* hinge = nullptr;
    for (const LeaveOneOut& l : r.leave_one_out) {
      if (l.effect > 0 && (hinge == nullptr || l.effect > hinge->effect)) hinge = &l;
    }
    if (hinge != nullptr) {
      // Whether dropping it would flip the decision is what an officer asks.
      const bool flips = (hinge->global_without >= r.threshold) != r.recommend_inspection;
      absl::StrAppend(&out, "; hinges most on ", Shown(hinge->indicator), " (without it I_G ",
                      Fixed(hinge->global_without, 4),
                      flips ? ", and the recommendation would flip)" : ")");
    }
  }
  out += '\n';
  return out;
}

}  // namespace fedcustoms::fusion
