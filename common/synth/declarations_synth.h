#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fedcustoms/v1/schema.pb.h"

namespace fedcustoms::synth {

struct SynthOptions {
  // Administration codes: 2 or 3 upper-case ASCII letters, distinct. Each gets
  // out_dir/<CODE>/. The order matters: sizes and shared-pattern "homes" go by
  // position.
  std::vector<std::string> admins = {"EE", "FI", "LV"};
  // Rows of the largest (first) administration, 100 .. 20'000'000; the others
  // get AdministrationRows().
  uint64_t rows = 40000;
  // Same seed and options -> byte-identical files.
  uint64_t seed = 7;
  // Created if missing; existing files of the same names are replaced.
  std::string out_dir = "data";
  // Adds the emerging scheme (below) from 2023-10-28 on; the rows before that
  // day are the same either way.
  bool emerging_scheme = false;
};

// Rows of the administration at `index` when the largest has `rows`:
// rows x {1.0, 0.6, 0.1, 0.8, 0.35, 0.2, 0.5, 0.15}[index] (after the eighth,
// the factors from 0.6 on repeat), rounded, at least 10.
uint64_t AdministrationRows(uint64_t rows, size_t index);

// The schema every synthetic administration shares: ID declaration_id, DATE
// date, CATEGORICAL hs_code (prefix 4 -> HS heading, 1024 buckets),
// origin_country (256), office (64), importer (4096), declarant (256),
// transport_mode (8); NUMERIC with log1p declared_value, gross_mass_kg,
// quantity; SELECTION selection; LABEL control_result.
v1::DeclarationSchema SyntheticDeclarationSchema();

// Writes, for each administration, out_dir/<CODE>/declarations.csv,
// out_dir/<CODE>/declarations.schema.json and the ground truth
// out_dir/<CODE>/declarations.truth.csv (kTruthFileName; see ReadFraudTruth),
// which only evaluations read, never a node: synthetic controlled declarations
// (every row was inspected; control_result 1 = non-compliance found, 1-3 %)
// over one calendar year, in date order.
//
// The data are non-IID on purpose: each administration has its own trade mix
// (HS chapters, origins), its own offices ("<CODE>1001"…), traders
// ("<CODE>" + 9 digits, EORI-like) and declarants ("<CODE>D" + 4 digits).
// Fraud patterns, each expressed only through the schema's features:
//   shared, in every administration:
//     - undervaluation: clothing, footwear, electronics, toys, bags and
//       cosmetics from a few origins declared at 8-30 % of the normal value
//       per kg (needs declared_value vs gross_mass_kg vs HS heading);
//     - 12 high-risk (HS heading, origin) combinations (cigarettes from AE or
//       BY, footwear from TR or VN, medicaments from IN, …), each common in
//       one "home" administration (position mod 12 = combination mod count)
//       and rare in the others;
//     - misdescription by a few heavy-filing risky traders: quantity 4-12x
//       what the mass suggests (also by anyone, rarely);
//   local, one administration's own: a smuggling route (one office x one HS
//   heading) and a declarant whose declarations are often wrong;
//   plus unexplained positives (0.25 %), missed frauds (10 % not found) and
//   innocent look-alikes (samples at low value, odd packaging units);
//   emerging, with emerging_scheme, only from 2023-10-28 (inside a 20 % date hold-out, so absent
//   from the training period's control results): over-invoicing of low-value
//   bulk goods (fuel, timber, paper, ceramics, glass, steel) from AE, HK or
//   SG by companies never seen before, at 15-60x the normal value
//   (trade-based money laundering), 0.6 % of those days' rows.
// A shared pattern is therefore seen often only when the administrations'
// data are combined; the small administration (position 2) has too few
// positives to learn it alone.
//
// Deterministic: std::mt19937_64 streams per administration with hand-written
// distributions; numbers are formatted with std::to_chars. Errors name the
// option or the file: InvalidArgument for bad options, Internal for I/O.
// Files are written under a temporary name and renamed.
absl::Status SynthesizeDeclarations(const SynthOptions& options);

// Beside declarations.csv: "declaration_id,pattern,found", one line per
// fraudulent declaration, found = 1 when the control found it (its
// control_result is 1). Patterns: risk_combination, local_route,
// undervaluation, misdescription, risky_declarant, unexplained,
// over_invoicing (the emerging scheme).
inline constexpr std::string_view kTruthFileName = "declarations.truth.csv";

struct FraudTruth {
  std::string pattern;
  bool found = false;
};

// Reads a ground-truth file, keyed by declaration_id. Errors name the file and
// line: NotFound when it cannot be opened, InvalidArgument for a bad header,
// a line without three fields, a found other than 0 or 1, or an id twice.
absl::StatusOr<std::unordered_map<std::string, FraudTruth>> ReadFraudTruth(const std::string& path);

}  // namespace fedcustoms::synth
