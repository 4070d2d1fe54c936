#include "analyst/report/report_html.h"

#include <charconv>
#include <optional>

#include "absl/strings/str_cat.h"

namespace fedcustoms::report {
namespace {

// The four-fifths rule: a group treated at under 4/5 (or over 5/4) of the overall rate deserves
// a look. It is a screening threshold, not a test. The slack keeps a ratio that is exactly 4/5 in
// the data (0.24 / 0.3 = 0.7999999999999999 in binary) unhighlighted, as its printed "0.800" says.
constexpr double kRatioLow = 0.8;
constexpr double kRatioHigh = 1.25;
constexpr double kRatioSlack = 1e-9;

// std::to_chars rather than printf: it ignores the process locale, so a German LC_NUMERIC
// cannot turn 0.123 into 0,123 and the page stays byte-identical.
std::string Fixed(double x, int decimals = 3) {
  char buf[64];
  const auto [end, ec] =
      std::to_chars(buf, buf + sizeof buf, x, std::chars_format::fixed, decimals);
  if (ec != std::errc()) return "?";
  return std::string(buf, end);
}

// A percentage with at most 2 decimals and no trailing zeros: "5", "2.5".
std::string Percent(double fraction) {
  std::string s = Fixed(fraction * 100, 2);
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

std::string Interval(const Proportion& p) {
  return absl::StrCat(Fixed(p.value), " [", Fixed(p.low), ", ", Fixed(p.high), "]");
}

// A rate cell with its counts on hover; "n/a" when nothing was counted.
std::string RateCell(const Proportion& p) {
  if (p.trials == 0) return "<td class=\"na\" title=\"0 of 0\">n/a</td>";
  return absl::StrCat("<td title=\"", p.successes, " of ", p.trials, "\">", Interval(p), "</td>");
}

std::string RatioCell(const std::optional<Ratio>& r) {
  if (!r) return "<td class=\"na\">n/a</td>";
  const std::string text =
      absl::StrCat(Fixed(r->value), " [", Fixed(r->low), ", ", Fixed(r->high), "]");
  // A mark as well as a colour, so the flag survives black-and-white printing.
  if (r->value < kRatioLow - kRatioSlack)
    return absl::StrCat("<td class=\"out\">&#9660; ", text, "</td>");
  if (r->value > kRatioHigh + kRatioSlack)
    return absl::StrCat("<td class=\"out\">&#9650; ", text, "</td>");
  return absl::StrCat("<td>", text, "</td>");
}

std::string GroupLabel(const std::string& value) {
  if (value.empty()) return absl::StrCat("<em>", kEmptyGroupLabel, "</em>");
  return HtmlEscape(value);
}

constexpr char kStyle[] = R"css(
body { font-family: sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.3em; }
h2 { font-size: 1.2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.5em; text-align: right; white-space: nowrap; }
th { background: #eef1f5; }
th.group, td.text, table.meta th, table.meta td { text-align: left; }
table.meta th, table.meta td { border: none; padding: 0.1em 0.8em 0.1em 0; background: none; }
tr.overall td, tr.overall th { font-weight: bold; background: #f6f6f6; }
.out { background: #ffd8a8; font-weight: bold; }
td.na { color: #888; }
tr.small td, tr.small th, .grey { color: #999; background: #f3f3f3; }
tr.small td.out { background: #f6e6d4; }
p.note { color: #8a4b00; }
.unbiased { color: #1b5e20; font-weight: bold; }
.biased { color: #8a4b00; }
)css";

void AppendSelection(const GroupReport& r, std::string& html) {
  html += "<section>\n<h2>Random-control evaluation</h2>\n";
  if (!r.selection) {
    html +=
        "<p class=\"note\">The data has no SELECTION column, so the model cannot be evaluated on "
        "randomly selected controls. Every figure below comes from controls chosen by whatever "
        "selected them, and may be biased by that selection.</p>\n</section>\n";
    return;
  }
  const SelectionComparison& s = *r.selection;
  html +=
      "<p>Randomly selected controls are an unbiased sample of all declarations: their figures "
      "estimate how the model performs on the whole flow. Risk-selected controls were chosen "
      "because they looked risky, so their figures are biased by that selection and describe "
      "the controlled sample only. Both are judged at one threshold: the score above which "
      "the top " +
      Percent(r.options.budget) +
      " % of the random controls lie, an estimate of where that budget cuts the whole "
      "flow.</p>\n";
  html +=
      "<table class=\"selection\">\n<thead><tr><th class=\"group\">Selection</th><th>Rows</th>"
      "<th>Non-compliance rate [95 % CI]</th><th>Recall at budget [95 % CI]</th>"
      "<th>Precision at budget [95 % CI]</th><th class=\"group\">Bias</th></tr></thead>\n<tbody>\n";
  auto row = [&](const std::string& name, const std::optional<SelectionEstimate>& e,
                 bool unbiased) {
    absl::StrAppend(&html, "<tr><th class=\"group\">", name, "</th>");
    if (!e) {
      html +=
          "<td>0</td><td class=\"na\">n/a</td><td class=\"na\">n/a</td>"
          "<td class=\"na\">n/a</td>";
    } else {
      absl::StrAppend(&html, "<td>", e->counts.rows, "</td>", RateCell(e->non_compliance_rate),
                      RateCell(e->recall), RateCell(e->precision));
    }
    html += unbiased ? "<td class=\"text unbiased\">unbiased</td></tr>\n"
                     : "<td class=\"text biased\">biased by the selection</td></tr>\n";
  };
  row(absl::StrCat("Random (selection &quot;", HtmlEscape(r.options.random_value), "&quot;)"),
      s.random, true);
  row("Risk-selected (any other value)", s.risk_selected, false);
  html += "</tbody>\n</table>\n";
  if (s.threshold) {
    absl::StrAppend(&html, "<p>Both rows are judged at one score threshold, ",
                    Fixed(*s.threshold, 4),
                    ": the top budget share of the random controls' scores, an estimate of "
                    "where the inspection budget cuts the whole flow.</p>\n");
  }
  if (s.unknown_rows > 0) {
    absl::StrAppend(&html,
                    "<p>Rows with an empty selection value, counted in neither: ", s.unknown_rows,
                    ".</p>\n");
  }
  if (!s.note.empty()) absl::StrAppend(&html, "<p class=\"note\">", HtmlEscape(s.note), "</p>\n");
  html += "</section>\n";
}

void AppendLegend(const GroupReport& r, std::string& html) {
  absl::StrAppend(
      &html,
      "<section>\n<h2>How to read the group tables</h2>\n<ul>\n"
      "<li><b>Flag rate</b> = flagged / rows; <b>precision</b> = true positives / flagged; "
      "<b>recall</b> = true positives / non-compliant; <b>false-positive rate</b> = flagged "
      "compliant / compliant. Brackets hold the 95 % Wilson interval.</li>\n"
      "<li><b>Ratio</b> = the group's rate / the rate over all rows; its interval is the group's "
      "interval divided by the overall rate, which is treated as fixed (fair when the group is a "
      "small part of the whole).</li>\n"
      "<li><span class=\"out\">&#9650; / &#9660; Highlighted</span> ratios lie outside [0.8, "
      "1.25]: the four-fifths rule, a "
      "screening threshold for a group treated differently from the whole, not a proof.</li>\n"
      "<li><span class=\"grey\">Greyed</span> groups are too small to judge (fewer than ",
      r.options.min_group_rows, " rows, ", r.options.min_group_positives, " non-compliant or ",
      r.options.min_group_negatives,
      " compliant); the reason is shown. They are listed, not hidden.</li>\n"
      "<li><b>n/a</b>: nothing to count (e.g. precision of a group with nothing flagged), or "
      "an overall rate of 0.</li>\n</ul>\n</section>\n");
}

void AppendRateHeaders(std::string& html) {
  for (const char* name : {"Flag rate", "Precision", "Recall", "False-positive rate"}) {
    absl::StrAppend(&html, "<th colspan=\"2\">", name, "</th>");
  }
}

void AppendColumn(const GroupReport& r, const GroupColumnReport& col, std::string& html) {
  absl::StrAppend(&html, "<section>\n<h2>By ", HtmlEscape(col.name), "</h2>\n",
                  "<table class=\"groups\">\n<thead><tr><th class=\"group\" rowspan=\"2\">",
                  HtmlEscape(col.name),
                  "</th><th rowspan=\"2\">Rows</th><th rowspan=\"2\">Non-compliant</th>"
                  "<th rowspan=\"2\">Flagged</th><th rowspan=\"2\">True positives</th>");
  AppendRateHeaders(html);
  html += "<th class=\"group\" rowspan=\"2\">Status</th></tr>\n<tr>";
  for (int i = 0; i < 4; ++i) html += "<th>rate [95 % CI]</th><th>ratio [95 % CI]</th>";
  html += "</tr></thead>\n<tbody>\n";

  const Counts& o = r.overall;
  const Rates& orates = r.overall_rates;
  absl::StrAppend(&html, "<tr class=\"overall\"><th class=\"group\">All rows</th><td>", o.rows,
                  "</td><td>", o.positives, "</td><td>", o.flagged, "</td><td>", o.true_positives,
                  "</td>");
  for (const Proportion* p :
       {&orates.flag_rate, &orates.precision, &orates.recall, &orates.false_positive_rate}) {
    absl::StrAppend(&html, RateCell(*p), "<td>1 (reference)</td>");
  }
  html += "<td class=\"text\"></td></tr>\n";

  for (const GroupStats& g : col.groups) {
    const Counts& c = g.counts;
    absl::StrAppend(&html, g.too_small ? "<tr class=\"small\">" : "<tr>", "<th class=\"group\">",
                    GroupLabel(g.value), "</th><td>", c.rows, "</td><td>", c.positives, "</td><td>",
                    c.flagged, "</td><td>", c.true_positives, "</td>", RateCell(g.rates.flag_rate),
                    RatioCell(g.ratios.flag_rate), RateCell(g.rates.precision),
                    RatioCell(g.ratios.precision), RateCell(g.rates.recall),
                    RatioCell(g.ratios.recall), RateCell(g.rates.false_positive_rate),
                    RatioCell(g.ratios.false_positive_rate), "<td class=\"text\">");
    if (g.too_small) absl::StrAppend(&html, "too small: ", HtmlEscape(g.too_small_reason));
    html += "</td></tr>\n";
  }
  html += "</tbody>\n</table>\n</section>\n";
}

}  // namespace

std::string HtmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        if ((static_cast<unsigned char>(ch) < 0x20 && ch != '\t' && ch != '\n' && ch != '\r') ||
            ch == '\x7f') {
          out += "&#xFFFD;";
        } else {
          out += ch;
        }
    }
  }
  return out;
}

std::string RenderGroupReportHtml(const GroupReport& r, const ReportPageInfo& info) {
  const std::string title = HtmlEscape(info.title);
  std::string html = absl::StrCat("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n",
                                  "<meta charset=\"utf-8\">\n<title>", title, "</title>\n<style>",
                                  kStyle, "</style>\n</head>\n<body>\n<header>\n<h1>", title,
                                  "</h1>\n<table class=\"meta\">\n");
  const Counts& o = r.overall;
  absl::StrAppend(&html, "<tr><th>Model</th><td>", HtmlEscape(info.model), "</td></tr>\n",
                  "<tr><th>Data</th><td>", HtmlEscape(info.data_file), "</td></tr>\n",
                  "<tr><th>Generated</th><td>", HtmlEscape(info.generated_at), "</td></tr>\n",
                  "<tr><th>Inspection budget</th><td>", Percent(r.options.budget),
                  " % of rows by score: the top ", o.flagged, " of ", o.rows,
                  " are flagged</td></tr>\n", "<tr><th>Rows</th><td>", o.rows, " (", o.positives,
                  " non-compliant, ", o.negatives, " compliant)</td></tr>\n");
  if (r.selection) {
    const SelectionComparison& s = *r.selection;
    absl::StrAppend(&html, "<tr><th>Selection</th><td>", s.random ? s.random->counts.rows : 0,
                    " random, ", s.risk_selected ? s.risk_selected->counts.rows : 0,
                    " risk-selected, ", s.unknown_rows, " unknown</td></tr>\n");
  }
  html += "</table>\n</header>\n";
  AppendSelection(r, html);
  AppendLegend(r, html);
  for (const GroupColumnReport& col : r.columns) AppendColumn(r, col, html);
  html += "</body>\n</html>\n";
  return html;
}

}  // namespace fedcustoms::report
