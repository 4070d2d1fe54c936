#pragma once

#include <cstddef>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

// The global risk indicator: fuses the probabilities several indicators (our
// models, external intelligence, detection dogs, scanners, cameras…) give for
// each category of illegal goods, each weighted by the officers' trust in that
// indicator for that category, into one number compared with a threshold.
//
// For indicator i and category j, with probability I_ij in [0, 1] and trust
// s_ij in [0, 10], the weight is w_ij = s_ij / 10 and
//   I_j = 1 - prod_i (1 - w_ij * I_ij)   (an indicator silent on j: factor 1)
//   I_G = 1 - prod_j (1 - I_j)
//   c_j = sum_i w_ij * I_ij / sum_k sum_i w_ik * I_ik   (the expected split)
// and intrusive inspection is recommended when I_G >= threshold.
//
// Input file (JSON; every field required, no others allowed, keys unique,
// nesting at most 16 deep):
//   {
//     "threshold": 0.5,
//     "categories": ["narcotics", "tobacco", "currency"],
//     "indicators": [
//       {"name": "risk_model",
//        "probability": {"narcotics": 0.30, "tobacco": 0.05},
//        "trust": {"narcotics": 8, "tobacco": 6}},
//       {"name": "detection_dog",
//        "probability": {"narcotics": 0.9}, "trust": {"narcotics": 7}}
//     ]
//   }
// `categories` is the data's own list (no category is built in); an
// indicator names only the categories it covers, with both a probability and
// a trust score for each. Trust may be fractional (7.5).
namespace fedcustoms::fusion {

// At most this many categories and indicators: far above any real panel, and
// it keeps the leave-one-out recomputation (indicators x covered pairs) small
// for any input the 16 MiB file cap lets through.
inline constexpr size_t kMaxCategories = 1024;
inline constexpr size_t kMaxIndicators = 256;

// The largest input file LoadFusionInput reads.
inline constexpr size_t kMaxFusionInputBytes = size_t{16} << 20;

struct IndicatorInput {
  std::string name;
  // Keyed by category name, only for the categories this indicator covers;
  // the two maps must have the same keys. Probability in [0, 1], trust in
  // [0, 10].
  std::map<std::string, double> probability;
  std::map<std::string, double> trust;
};

struct FusionInput {
  std::vector<std::string> categories;
  std::vector<IndicatorInput> indicators;
  // I_S in [0, 1].
  double threshold = 0.5;
};

struct CategoryResult {
  std::string name;
  double indicator = 0;  // I_j
  double share = 0;      // c_j; 0 for every category when FusionResult::has_evidence is false
  double evidence = 0;   // sum_i w_ij * I_ij, the unnormalised share
};

// One covered (indicator, category) pair.
struct Contribution {
  size_t indicator_index = 0;  // into FusionInput::indicators and FusionResult::leave_one_out
  size_t category_index = 0;   // into FusionInput::categories and FusionResult::categories
  std::string indicator;
  std::string category;
  double probability = 0;   // I_ij
  double trust = 0;         // s_ij
  double weight = 0;        // w_ij = s_ij / 10
  double contribution = 0;  // w_ij * I_ij
};

struct LeaveOneOut {
  std::string indicator;
  // I_G computed as if this indicator were absent from the input (bit for bit
  // what Fuse gives for that input; 0 when it is the only indicator), and I_G
  // minus it, which is never negative: the indicators whose removal drops I_G
  // most are those the decision hinges on.
  double global_without = 0;
  double effect = 0;
};

struct FusionResult {
  // In the order of FusionInput::categories.
  std::vector<CategoryResult> categories;
  // Every covered pair, by indicator in input order, then by category in the
  // order of FusionInput::categories.
  std::vector<Contribution> contributions;
  double global_indicator = 0;        // I_G
  double threshold = 0;               // I_S, as given
  bool recommend_inspection = false;  // I_G >= I_S
  // False when every category's evidence is 0 (all probabilities or all
  // trust 0): the split is undefined, so every share is 0.
  bool has_evidence = false;
  // Indices into `contributions`, contribution descending, ties in the order
  // of `contributions`.
  std::vector<size_t> drivers;
  // Indices into `categories`, I_j descending, ties in input order.
  std::vector<size_t> category_ranking;
  // One per indicator, in input order.
  std::vector<LeaveOneOut> leave_one_out;
};

// Checks `input` (the same rules, field paths and messages as
// ParseFusionInput, with the source named "input", e.g. "input:
// indicators[1].probability.narcotics: 1.3 is outside [0, 1]"; NaN and
// infinities are refused) and computes the result. InvalidArgument on a bad
// input. Pure and thread-safe; the result owns copies of the names.
absl::StatusOr<FusionResult> Fuse(const FusionInput& input);

// Parses and checks an input document (format above). Every error is
// InvalidArgument and reads "<source_name>: <field path>: <what>", e.g.
// "f.json: indicators[0].trust.tobacco: 11 is outside [0, 10]" or
// "f.json: threshold: missing (a number in [0, 1])"; malformed JSON gives
// nlohmann's byte offset and line. The returned input passes Fuse's checks.
absl::StatusOr<FusionInput> ParseFusionInput(std::string_view json, std::string_view source_name);

// Reads and parses the file at `path` (at most kMaxFusionInputBytes); errors
// name the path. NotFound when it cannot be opened, InvalidArgument for a
// directory, an oversized file or bad content, DataLoss for a read error.
absl::StatusOr<FusionInput> LoadFusionInput(const std::string& path);

// The result for `fedcustoms fuse` (include <nlohmann/json.hpp> to use it).
// Field names are stable; lists come most important first:
//   {"global_indicator": I_G, "threshold": I_S, "recommend_inspection": bool,
//    "has_evidence": bool,
//    "categories": [{"name", "indicator": I_j, "share": c_j, "evidence"}],
//        (by I_j descending, ties in input order)
//    "drivers": [{"indicator", "category", "probability", "trust", "weight",
//                 "contribution"}],   (every covered pair, as `drivers`)
//    "leave_one_out": [{"indicator", "global_without", "effect"}]}
//        (by effect descending, ties in input order)
nlohmann::json FusionResultToJson(const FusionResult& result);

// A few lines for the terminal: one per category (by I_j descending: I_j,
// share, strongest indicator) and one with I_G against I_S, the
// recommendation and the indicator the result hinges on most (and whether
// dropping it would flip the recommendation). Names are shown with control
// bytes escaped and clipped to 80 bytes. Ends in '\n'.
std::string FusionSummary(const FusionResult& result);

}  // namespace fedcustoms::fusion
