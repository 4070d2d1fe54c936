#pragma once

#include <string>
#include <string_view>

#include "analyst/report/group_report.h"

namespace fedcustoms::report {

// What the page says about where the report came from; free text, HTML-escaped on output.
struct ReportPageInfo {
  std::string title;         // e.g. "Group report, office Antwerp"
  std::string model;         // e.g. "risk v5"
  std::string data_file;     // e.g. "declarations_2024q3.csv"
  std::string generated_at;  // e.g. "2024-10-01 14:03 UTC"; not read from a clock, for determinism
};

// `text` with &, <, >, " and ' replaced by character references, safe inside element content and
// quoted attribute values. Control characters other than tab, newline and carriage return (which
// HTML forbids) become U+FFFD. Pure function.
std::string HtmlEscape(std::string_view text);

// A self-contained HTML5 page of `report`: inline CSS, no script, no external URL (it is opened
// from a customs network share or mailed, often with no internet access). Sections, in order:
// a header (model, data file, generation time, budget, row counts); the random-control
// comparison (random vs risk-selected, the unbiased one marked), or why it is missing; a legend;
// then one table per group column with every count, rate, 95 % interval and ratio to overall.
// Ratios outside [0.8, 1.25] (the four-fifths rule) are highlighted; too-small groups are greyed
// with their reason shown. Numbers have 3 decimals, intervals read "0.123 [0.101, 0.149]".
// Every string from data or `info` is escaped with HtmlEscape. The same input gives the same bytes.
// Pure function, thread-safe.
std::string RenderGroupReportHtml(const GroupReport& report, const ReportPageInfo& info);

}  // namespace fedcustoms::report
