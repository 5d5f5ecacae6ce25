// The report document (see document.hpp): overview, per-recipient sections, then the notes.
// Tables are built row by row from escaped cells; a cell's markup never contains a value that
// did not pass through escape().
#include "cli/report/document.hpp"

#include <algorithm>
#include <map>
#include <span>
#include <string_view>

#include "cli/report/charts.hpp"
#include "cli/report/html.hpp"

namespace rcptguard::report {
namespace {

constexpr const char* style = R"css(
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: #1f2933; background: #fff; margin: 0 auto; max-width: 1240px; padding: 20px 28px 40px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 36px 0 8px; padding-top: 12px; border-top: 2px solid #d9e2ec; }
h3 { font-size: 15px; margin: 22px 0 6px; color: #334e68; }
p { margin: 6px 0; }
.muted, .empty { color: #627d98; }
.empty { font-style: italic; }
.addr, code { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 13px;
              overflow-wrap: break-word; }
td { overflow-wrap: break-word; word-break: normal; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 12px 0; }
.card { border: 1px solid #d9e2ec; border-radius: 6px; padding: 8px 14px; min-width: 120px; }
.card b { display: block; font-size: 20px; }
table { border-collapse: collapse; margin: 6px 0 10px; width: 100%; }
th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid #e4e7eb; vertical-align: top; }
th { background: #f0f4f8; font-weight: 600; font-size: 12px; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.when { white-space: nowrap; }
tr.flagged td:first-child { border-left: 3px solid #c62828; }
ul.reasons { margin: 0; padding-left: 16px; }
.badge { display: inline-block; font-size: 11px; font-weight: 600; padding: 1px 7px;
         border-radius: 9px; vertical-align: middle; margin-left: 6px; color: #fff; }
.badge.defer { background: #c62828; } .badge.warn { background: #d98200; }
.badge.named { background: #486581; } .badge.open { background: #7b3fb5; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 24px; }
.legend { font-size: 12px; color: #486581; margin: 2px 0 8px; }
.legend span { display: inline-block; margin-right: 14px; }
.legend i { display: inline-block; width: 12px; height: 10px; margin-right: 4px; vertical-align: -1px; }
.sw-bar { background: #4a7ab5; } .sw-base { background: #111; height: 2px !important; vertical-align: 3px !important; }
.sw-episode { background: rgba(229, 72, 77, .22); } .sw-defer { background: #c62828; }
.sw-flag { background: #7b3fb5; } .sw-warn { background: #e89b0c; }
svg.chart { width: 100%; height: auto; display: block; }
.chart text { font-size: 11px; fill: #52606d; }
.chart text.count { font-size: 11px; fill: #1f2933; font-weight: 600; }
.chart .grid line { stroke: #e4e7eb; }
.chart .days line { stroke: #bcccdc; stroke-dasharray: 2 3; }
.chart .bar { fill: #4a7ab5; }
.chart .baseline { fill: none; stroke: #111; stroke-width: 1.5; stroke-linejoin: round; }
.chart .episode.defer { fill: #e5484d; fill-opacity: .16; }
.chart .episode.warn { fill: #f5a524; fill-opacity: .2; }
.chart .defer { fill: #c62828; } .chart .warn { fill: #e89b0c; } .chart .flag { fill: #7b3fb5; }
.chart .episode.defer, .chart .episode.warn { stroke: none; }
footer { margin-top: 40px; font-size: 12px; color: #627d98; border-top: 1px solid #d9e2ec; padding-top: 8px; }
)css";

std::string period_text(const report_data& d) {
  return utc_minute(d.since) + " to " + utc_minute(d.until) + " UTC";
}

std::string between(const report_data& d) {
  return "between " + utc_minute(d.since) + " and " + utc_minute(d.until) + " UTC";
}

/// A table: header cells (a trailing '#' marks a numeric column) then rows of ready cells.
class table {
 public:
  explicit table(std::initializer_list<std::string_view> header)
      : table(std::span<const std::string_view>(header.begin(), header.size())) {}

  explicit table(std::span<const std::string_view> header) {
    for (std::string_view h : header) {
      const bool numeric = !h.empty() && h.back() == '#';
      numeric_.push_back(numeric);
      head_ += numeric ? "<th class=\"num\">" : "<th>";
      head_ += numeric ? h.substr(0, h.size() - 1) : h;
      head_ += "</th>";
    }
  }

  /// `cells` are markup (escaped by the caller); `row_class` is ours.
  void row(const std::vector<std::string>& cells, std::string_view row_class = {}) {
    body_ += row_class.empty() ? "<tr>" : "<tr class=\"" + std::string{row_class} + "\">";
    for (std::size_t i = 0; i < cells.size(); ++i) {
      const bool numeric = i < numeric_.size() && numeric_[i];
      body_ += numeric ? "<td class=\"num\">" : "<td>";
      body_ += cells[i];
      body_ += "</td>";
    }
    body_ += "</tr>";
  }

  std::string str() const {
    return "<table><thead><tr>" + head_ + "</tr></thead><tbody>" + body_ + "</tbody></table>";
  }

 private:
  std::string head_;
  std::string body_;
  std::vector<bool> numeric_;
};

std::string addr(std::string_view untrusted) {
  if (untrusted.empty()) return "<span class=\"addr\">&lt;&gt;</span>";  // the null sender
  return "<span class=\"addr\">" + escape(untrusted) + "</span>";
}

std::string when(std::int64_t t) {
  return utc_minute(t);
}

std::string level_badge(std::string_view level) {
  const bool defer = level == "defer";
  return std::string{"<span class=\"badge "} + (defer ? "defer" : "warn") + "\">" + escape(level) +
         "</span>";
}

std::string empty(const std::string& sentence) {
  return "<p class=\"empty\">" + sentence + "</p>";
}

/// Read from several nodes' databases: the episode and explanation tables name the nodes.
bool several_nodes(const report_data& d) {
  return d.sources.size() > 1;
}

std::string nodes_text(const std::vector<std::string>& nodes) {
  std::string s;
  for (const std::string& node : nodes) s += (s.empty() ? "" : ", ") + escape(node);
  return s;
}

std::string episodes_table(const std::vector<episode>& episodes,
                           const std::map<std::string, std::string, std::less<>>& anchors,
                           bool with_recipient, bool with_nodes) {
  std::vector<std::string_view> header{"Started (UTC)",
                                       with_recipient ? "Recipient" : "Ended (UTC)"};
  if (with_nodes) header.insert(header.end(), {"Nodes", "Flood"});
  header.insert(header.end(), {"Duration#", "State", "Peak", "Score#", "Window", "Observed#",
                               "Baseline#", "Verdicts#", "Summary"});
  table t(header);
  for (const episode& e : episodes) {
    std::vector<std::string> cells{"<span class=\"when\">" + when(e.started) + "</span>"};
    if (with_recipient) {
      const auto anchor = anchors.find(e.recipient);
      cells.push_back(anchor == anchors.end()
                          ? addr(e.recipient)
                          : "<a href=\"#" + anchor->second + "\">" + addr(e.recipient) + "</a>");
    } else {
      cells.push_back(e.open ? "(open)" : when(e.ended));
    }
    if (with_nodes) {
      cells.insert(cells.end(), {nodes_text(e.nodes), "<code>" + escape(e.flood) + "</code>"});
    }
    cells.insert(cells.end(),
                 {span_text(e.ended - e.started), e.open ? "open" : "closed",
                  level_badge(e.peak_level), fixed(e.peak_score, 2), escape(e.peak_window),
                  short_number(e.peak_observed), short_number(e.peak_baseline),
                  std::to_string(e.verdicts), escape(e.summary, limits::max_text)});
    t.row(cells);
  }
  return t.str();
}

void overview(std::string& out, const report_data& d,
              const std::map<std::string, std::string, std::less<>>& anchors) {
  std::int64_t warn = 0;
  std::int64_t defer = 0;
  for (const episode& e : d.episodes) (e.peak_level == "defer" ? defer : warn) += 1;
  out += "<section id=\"overview\"><h2>Overview</h2><div class=\"cards\">";
  const auto card = [&](const std::string& value, const char* label) {
    out += "<div class=\"card\"><b>" + value + "</b>" + label + "</div>";
  };
  card(std::to_string(d.messages), "messages");
  card(std::to_string(d.recipients), "recipients with mail");
  card(std::to_string(d.episodes.size()), "alert episodes");
  card(std::to_string(defer) + " / " + std::to_string(warn), "peaked at defer / warn");
  card(std::to_string(d.flagged_requests), "flagged requests");
  out += "</div>";

  out += "<h3>Alert episodes per day</h3>";
  std::int64_t started_in_period = 0;
  for (const day_summary& day : d.days) started_in_period += day.warn_episodes + day.defer_episodes;
  if (started_in_period == 0) {
    out += empty("No alert episode started " + between(d) + ".");
  } else {
    out +=
        "<div class=\"legend\"><span><i class=\"sw-defer\"></i>peaked at defer</span>"
        "<span><i class=\"sw-warn\"></i>peaked at warn</span></div>";
    out += episodes_per_day_svg(d.days);
  }

  out += "<h3>Episodes</h3>";
  if (d.episodes.empty()) {
    out += empty("No alert episodes " + between(d) + ".");
  } else {
    out += episodes_table(d.episodes, anchors, true, several_nodes(d));
  }

  out += "<h3>Top deviating recipients</h3>";
  if (d.deviations.empty()) {
    out += empty("No mail recorded " + between(d) + ".");
  } else {
    out +=
        "<p class=\"muted\">Recipients by how far their busiest hour rose above what their "
        "baseline expected for it (an expectation below one message counts as one). A "
        "deviation is not an alert: the detector also allows for each recipient's usual "
        "bursts (a ticket inbox's storms, a newsletter's copies). Flagged ones, marked red, "
        "have an episode in the period.</p>";
    table t{"Recipient", "Messages#", "Peak hour (UTC)", "Observed#",
            "Expected#", "Ratio#",    "Episodes#"};
    for (const deviation& r : d.deviations) {
      const std::string name =
          r.anchor.empty() ? addr(r.recipient)
                           : "<a href=\"#" + escape(r.anchor) + "\">" + addr(r.recipient) + "</a>";
      const double ratio = static_cast<double>(r.peak_observed) / std::max(1.0, r.peak_expected);
      t.row({name, std::to_string(r.volume), when(r.peak_hour), std::to_string(r.peak_observed),
             short_number(r.peak_expected), fixed(ratio, 1) + "&#215;", std::to_string(r.episodes)},
            r.episodes > 0 ? "flagged" : "");
    }
    out += t.str();
  }
  out += "</section>";
}

std::string reasons_list(const std::vector<reason>& reasons) {
  if (reasons.empty()) return "<span class=\"muted\">(none stored)</span>";
  std::string s = "<ul class=\"reasons\">";
  for (const reason& r : reasons) {
    s += "<li><b>" + escape(r.name) + "</b> " + fixed(r.weight, 2) + ": " +
         short_number(r.observed) + " against " + short_number(r.baseline);
    if (!r.detail.empty()) s += " (" + escape(r.detail, limits::max_text) + ")";
    s += "</li>";
  }
  return s + "</ul>";
}

std::string parties_table(const char* heading, const std::vector<party_count>& parties,
                          const char* none) {
  std::string s = "<div><h3>" + std::string{heading} + "</h3>";
  if (parties.empty()) return s + empty(none) + "</div>";
  table t{"", "Requests#"};
  for (const party_count& p : parties) t.row({addr(p.text), std::to_string(p.requests)});
  return s + t.str() + "</div>";
}

void recipient(std::string& out, const report_data& d, const recipient_section& r) {
  std::int64_t flagged = 0;
  bool any_mail = false;
  for (const hour_point& h : r.hours) {
    flagged += h.warn + h.defer + h.flag;
    any_mail = any_mail || h.observed > 0;
  }
  std::string peak;
  for (const episode& e : r.episodes) {
    if (peak != "defer") peak = e.peak_level;
  }
  out += "<section class=\"recipient\" id=\"" + escape(r.anchor) + "\" data-recipient=\"" +
         escape(r.recipient) + "\" data-episodes=\"" + std::to_string(r.episodes.size()) +
         "\"><h2>" + addr(r.recipient);
  if (!peak.empty()) out += level_badge(peak);
  if (r.named) out += "<span class=\"badge named\">asked for</span>";
  out += "</h2><p class=\"muted\">" + std::to_string(r.episodes.size()) +
         " episode(s) in the period, " + std::to_string(flagged) + " flagged request(s), " +
         std::to_string(r.correspondents) + " known correspondent(s).</p>";

  out += "<h3>Hourly volume against the baseline</h3>";
  if (!any_mail) out += empty("No mail recorded for this recipient " + between(d) + ".");
  out +=
      "<div class=\"legend\"><span><i class=\"sw-bar\"></i>messages per hour</span>"
      "<span><i class=\"sw-base\"></i>expected (learned baseline)</span>"
      "<span><i class=\"sw-episode\"></i>alert episode</span>"
      "<span><i class=\"sw-defer\"></i>hour with DEFER verdicts</span>"
      "<span><i class=\"sw-flag\"></i>flag header</span>"
      "<span><i class=\"sw-warn\"></i>WARN</span></div>";
  out += hourly_svg(r, d.since, d.until);

  const std::map<std::string, std::string, std::less<>> none;
  out += "<h3>Episodes</h3>";
  out += r.episodes.empty() ? empty("No alert episodes in the period.")
                            : episodes_table(r.episodes, none, false, several_nodes(d));

  out += "<h3>Why: the reasons at each escalation</h3>";
  if (r.explanations.empty()) {
    out += empty("No verdict explanations stored in the period.");
  } else {
    if (r.explanations_total > static_cast<std::int64_t>(r.explanations.size())) {
      out += "<p class=\"muted\">The first " + std::to_string(r.explanations.size()) + " of " +
             std::to_string(r.explanations_total) + " explanations.</p>";
    }
    std::vector<std::string_view> header{"At (UTC)", "Verdict", "Score#",
                                         "Reasons",  "Answer",  "Request from / client"};
    if (several_nodes(d)) header.insert(header.begin() + 1, "Node");
    table t(header);
    for (const explanation& x : r.explanations) {
      std::string verdict = level_badge(x.level);
      if (x.monitor_only) verdict += " <span class=\"muted\">(monitor: warned only)</span>";
      std::vector<std::string> cells{when(x.at),
                                     verdict,
                                     fixed(x.score, 2),
                                     reasons_list(x.reasons),
                                     "<code>" + escape(x.action_text, limits::max_text) + "</code>",
                                     addr(x.sender) + "<br>" + addr(x.client)};
      if (several_nodes(d)) cells.insert(cells.begin() + 1, escape(x.node));
      t.row(cells);
    }
    out += t.str();
  }

  out += "<div class=\"pair\">";
  out += parties_table("Top senders of flagged requests", r.senders, "No flagged requests.");
  out += parties_table("Top clients of flagged requests", r.clients, "No flagged requests.");
  out += "</div>";

  out += "<h3>Repeated attachments in the mailbox</h3>";
  if (r.attachments.empty()) {
    out += empty("The spool scanner found no attachment stored again and again in the period.");
  } else {
    table t{"SHA-256",           "Copies#", "Size#", "File names", "First stored (UTC)",
            "Last stored (UTC)", "Mailbox"};
    for (const attachment& a : r.attachments) {
      t.row({"<code>" + escape(a.sha256.substr(0, 16)) + "</code>", std::to_string(a.repeats),
             std::to_string(a.size), escape(a.filenames, limits::max_text), when(a.first_stored),
             when(a.last_stored), addr(a.mailbox)});
    }
    out += t.str();
  }
  out += "</section>";
}

/// The databases read, as given; with several, each with its node.
std::string sources_text(const report_data& d) {
  std::string s;
  for (const source& from : d.sources) {
    if (!s.empty()) s += ", ";
    s += "<span class=\"addr\">" + escape(from.database, limits::max_text) + "</span>";
    if (several_nodes(d)) s += " (" + escape(from.node) + ")";
  }
  return s;
}

}  // namespace

std::string render_html(const report_data& d) {
  std::map<std::string, std::string, std::less<>> anchors;
  for (const recipient_section& r : d.sections) anchors.emplace(r.recipient, r.anchor);

  std::string out;
  out.reserve(64 * 1024);
  out +=
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"";
  out += content_security_policy;
  out +=
      "\"><meta name=\"referrer\" content=\"no-referrer\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<title>rcptguard report " +
      utc_date(d.since) + " to " + utc_date(d.until) + "</title><style>";
  out += style;
  out += "</style></head>\n<body data-since=\"" + std::to_string(d.since) + "\" data-until=\"" +
         std::to_string(d.until) + "\">";
  out += "<header><h1>rcptguard report</h1><p>" + period_text(d) +
         ". <span class=\"muted\">All times are UTC.</span></p>";
  if (several_nodes(d)) {
    std::vector<std::string> nodes;
    for (const source& s : d.sources) nodes.push_back(s.node);
    out += "<p id=\"nodes\" data-nodes=\"" + std::to_string(nodes.size()) + "\">Nodes: <b>" +
           nodes_text(nodes) +
           "</b>. <span class=\"muted\">Their databases are read together: volumes are the "
           "cluster's (each node's own RCPTs, summed), and a flood their episodes share is one "
           "episode naming its nodes.</span></p>";
  }
  out += "</header>\n";

  overview(out, d, anchors);
  out += "\n<h2 id=\"recipients\">Flagged and requested recipients</h2>";
  if (d.sections.empty()) {
    out += empty("No recipient had an alert episode in the period, and none was asked for.");
  } else {
    out += "<p class=\"muted\">Every recipient with an episode in the period";
    if (d.sections_left_out > 0) {
      out += " (the " + std::to_string(d.sections.size()) + " with the most verdicts; " +
             std::to_string(d.sections_left_out) +
             " more are left out, name them with --recipient)";
    }
    out += ", and those asked for with --recipient.</p>";
  }
  for (const recipient_section& r : d.sections) {
    out += "\n";
    recipient(out, d, r);
  }
  out += "\n<footer><p>Generated by rcptguard " + escape(d.version) + " at " +
         utc_minute(d.generated) + " UTC from " + sources_text(d) +
         ".</p><p>Expected is the learned baseline the detector judged each hour against: "
         "half the median of the same hour of the week over the last 4 weeks plus half the median "
         "of the same hour of the day over the last 7 days, plus their median absolute deviation; "
         "hours inside an alert episode are not learned from. The counts are RCPTs (the larger of "
         "attempted and accepted). This file has no scripts and loads nothing.</p></footer>\n"
         "</body></html>\n";
  return out;
}

}  // namespace rcptguard::report
