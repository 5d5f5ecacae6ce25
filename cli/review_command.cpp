// `rcptguard review`: argv parsing, the read-only queries of store/review.hpp, the baseline
// model of cli/review_baseline.hpp, and three renderings of the same records. Each view builds
// its rows once as JSON objects; the JSON output prints them, CSV prints their fields, and the
// table formats the same fields for people, so the three cannot disagree.
// Everything printed from the database is untrusted (recipient addresses, senders and client
// names come from the network): tables show it through sanitize_for_log(), JSON through
// common/json.hpp, CSV through csv_text(), so neither a terminal, a SIEM nor a spreadsheet can be
// fed control sequences, broken lines or formulas.
#include "cli/review_command.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <exception>
#include <functional>
#include <queue>
#include <set>
#include <span>
#include <utility>
#include <vector>

#include "cli/command_line.hpp"
#include "cli/node_databases.hpp"
#include "cli/review_baseline.hpp"
#include "cli/time_argument.hpp"
#include "common/json.hpp"
#include "common/text.hpp"
#include "config/config.hpp"
#include "decision/keys.hpp"
#include "store/operator_actions.hpp"
#include "store/review.hpp"

namespace rcptguard::cli {
namespace {

constexpr std::int64_t hour_seconds = 3600;

// MITRE ATT&CK technique T1667 (Email Bombing) and its analytic AN1009, tagged on every alert
// line so a SIEM can file it without a lookup table of its own.
json attack_tags() {
  return json::array({"T1667", "AN1009"});
}

// Summaries, reasons and action texts are ours but quote addresses; they may be long.
constexpr std::size_t max_text = 2000;

constexpr const char* review_usage =
    "usage: rcptguard review SUBCOMMAND [options]\n"
    "\n"
    "subcommands:\n"
    "  alerts           alert episodes in the window, open and closed, newest first\n"
    "                   (default --since 7d)\n"
    "  top              recipients ranked by how far their volume is from their learned\n"
    "                   baseline (--by volume: by accepted messages) (default --since 24h)\n"
    "  explain ADDRESS  one recipient's story: hourly volume against its baseline, episodes,\n"
    "                   how the verdicts developed and why, top senders and clients, spool\n"
    "                   evidence, known correspondents (default --since 2d); 'recipient' is\n"
    "                   the same subcommand\n"
    "  actions          the operators' audit log: allow, unallow, reset, release and status\n"
    "                   through the control socket, and refused callers; who (the unix user\n"
    "                   of the connection), when, what, why, with what result; newest first\n"
    "                   (default --since 30d; --address ADDR: only those acting on it)\n"
    "\n"
    "Every subcommand takes:\n"
    "  --since WHEN, --until WHEN  the window [since, until); WHEN is a duration back from now\n"
    "                   (7d, 24h, 90m, 30s) or a time: 2026-10-01, 2026-10-01T14:00,\n"
    "                   2026-10-01T14:00:30 or '2026-10-01 14:00', in the local time zone (TZ)\n"
    "                   unless it ends in Z or an offset like +02:00. --until defaults to now.\n"
    "                   Hourly counts are whole hours: the hours containing since and until\n"
    "                   count in full. Times printed are UTC.\n"
    "  --format FORMAT  table (default), json (JSON Lines: one object a line, the last a\n"
    "                   summary with total and truncated) or csv (RFC 4180, a header row)\n"
    "  --limit N        rows shown (explain: of each list); 0 shows all. The default limit\n"
    "                   applies to tables only, which say when they are cut; json and csv\n"
    "                   list everything unless --limit is given.\n"
    "\n"
    "Deviation (top, explain): the window's RCPTs, per hour the larger of attempted and\n"
    "accepted, divided by what the recipient's learned baseline expected for those hours (per\n"
    "hour: the baseline model's hourly value plus baseline_spread_weight times its spread, from\n"
    "the history before that hour; the server-wide prior for a recipient without history), at\n"
    "least 1 message: 1.0 is a usual window, 20 a flood.\n"
    "\n"
    "The database (-d, else store.path of the settings) is opened read-only; top and explain\n"
    "read the detection settings (-c/-o, as for serve) for the baseline model, explain and\n"
    "actions --address for the address's normal form.\n"
    "Run 'rcptguard review SUBCOMMAND --help' for the options of a subcommand.\n"
    "Exit codes: 0 success, 1 failure (database missing or unreadable, invalid configuration),\n"
    "2 usage error.\n";

// ---------------------------------------------------------------------------------------------
// Rendering helpers.

/// "2024-03-04 10:00:00", for tables (the column headers say UTC).
std::string readable_utc(std::int64_t unix_seconds) {
  std::string s = store::format_utc(unix_seconds);
  std::replace(s.begin(), s.end(), 'T', ' ');
  if (!s.empty() && s.back() == 'Z') s.pop_back();
  return s;
}

/// "2h05m", "4m10s", "12s".
std::string span_text(std::int64_t seconds) {
  seconds = std::max<std::int64_t>(seconds, 0);
  if (seconds >= 3600) return fmt::format("{}h{:02}m", seconds / 3600, seconds % 3600 / 60);
  if (seconds >= 60) return fmt::format("{}m{:02}s", seconds / 60, seconds % 60);
  return fmt::format("{}s", seconds);
}

/// Counts whole, averages (windows over hours, baselines) to what a reader uses: "61", "60.8",
/// "0.08". JSON and CSV keep the full value.
std::string number_text(double v) {
  if (v == std::floor(v) && std::abs(v) < 1e15) return fmt::format("{:.0f}", v);
  return fmt::format("{:.{}f}", v, std::abs(v) < 1.0 ? 2 : 1);
}

std::string score_text(double v) {
  return fmt::format("{:.2f}", v);
}

std::string expected_text(double v) {
  return fmt::format("{:.1f}", v);
}

/// Columns padded to their widest cell (all cells are ASCII after printable()); the last column is
/// not padded, so a long summary does not leave trailing blanks.
class table {
 public:
  table(std::vector<std::string> header, std::vector<bool> right_aligned)
      : header_(std::move(header)), right_(std::move(right_aligned)) {
    right_.resize(header_.size(), false);
  }

  void add(std::vector<std::string> row) {
    row.resize(header_.size());
    rows_.push_back(std::move(row));
  }

  /// A line of its own between rows (a note such as "3 hours without mail"), not aligned.
  void note(std::string text) { notes_.emplace_back(rows_.size(), std::move(text)); }

  void print(std::FILE* out, std::string_view indent = "") const {
    std::vector<std::size_t> width(header_.size(), 0);
    for (std::size_t c = 0; c < header_.size(); ++c) {
      width[c] = header_[c].size();
      for (const auto& row : rows_) width[c] = std::max(width[c], row[c].size());
    }
    print_row(out, indent, header_, width);
    auto note = notes_.begin();
    for (std::size_t r = 0; r <= rows_.size(); ++r) {
      for (; note != notes_.end() && note->first == r; ++note) {
        fmt::print(out, "{}{}\n", indent, note->second);
      }
      if (r < rows_.size()) print_row(out, indent, rows_[r], width);
    }
  }

 private:
  void print_row(std::FILE* out, std::string_view indent, const std::vector<std::string>& row,
                 const std::vector<std::size_t>& width) const {
    std::string line{indent};
    for (std::size_t c = 0; c < row.size(); ++c) {
      const bool last = c + 1 == row.size();
      if (c != 0) line += "  ";
      if (right_[c]) {
        line += fmt::format("{:>{}}", row[c], width[c]);
      } else if (last) {
        line += row[c];
      } else {
        line += fmt::format("{:<{}}", row[c], width[c]);
      }
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    fmt::print(out, "{}\n", line);
  }

  std::vector<std::string> header_;
  std::vector<bool> right_;
  std::vector<std::vector<std::string>> rows_;
  std::vector<std::pair<std::size_t, std::string>> notes_;  ///< before row index
};

/// One JSON object built key by key, in order, over common/json.hpp.
class json_object {
 public:
  json_object& text(std::string_view key, std::string_view value) {
    return value_of(key, std::string{value});
  }
  json_object& integer(std::string_view key, std::int64_t value) { return value_of(key, value); }
  json_object& real(std::string_view key, double value) { return value_of(key, value); }
  json_object& boolean(std::string_view key, bool value) { return value_of(key, value); }
  json_object& time(std::string_view key, std::optional<std::int64_t> unix_seconds) {
    return value_of(key, unix_seconds ? json(store::format_utc(*unix_seconds)) : json(nullptr));
  }
  json_object& value_of(std::string_view key, json value) {
    body_[std::string{key}] = std::move(value);
    return *this;
  }
  [[nodiscard]] json value() const { return body_; }

 private:
  json body_ = json::object();
};

// ---------------------------------------------------------------------------------------------
// CSV (RFC 4180): CRLF line ends, a field quoted when it holds a comma, quote, CR or LF, quotes
// inside doubled. Text from the database is made printable first (control bytes, C1 controls
// and invalid UTF-8 become '?', valid UTF-8 stays), and a text cell that a spreadsheet would
// take for a formula (= + - @ first) gets a leading apostrophe.

std::string csv_quoted(std::string_view cell) {
  if (cell.find_first_of(",\"\r\n") == std::string_view::npos) return std::string{cell};
  std::string out = "\"";
  for (const char c : cell) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string csv_text(std::string_view untrusted) {
  constexpr std::size_t max_cell = std::size_t{64} * 1024;
  std::string s = sanitize_for_reply(untrusted, max_cell);
  // U+0080..U+009F are valid UTF-8 but C1 controls (0x9b is a CSI to some terminals).
  for (std::size_t i = 0; i + 1 < s.size(); ++i) {
    const auto lead = static_cast<unsigned char>(s[i]);
    const auto next = static_cast<unsigned char>(s[i + 1]);
    if (lead == 0xc2 && next >= 0x80 && next <= 0x9f) s.replace(i, 2, "?");
  }
  if (!s.empty() && std::string_view{"=+-@"}.find(s.front()) != std::string_view::npos) {
    s.insert(s.begin(), '\'');
  }
  return s;
}

/// Numbers and booleans as JSON writes them, null empty, lists and objects as their JSON text.
std::string csv_cell(const json& v) {
  if (v.is_null()) return {};
  if (v.is_string()) return csv_quoted(csv_text(v.get<std::string>()));
  if (v.is_structured()) return csv_quoted(csv_text(dump_json(v)));
  return dump_json(v);
}

void print_csv(std::FILE* out, std::span<const std::string_view> keys,
               const std::vector<json>& records) {
  std::string line;
  for (const std::string_view key : keys) {
    if (!line.empty()) line += ',';
    line += key;
  }
  fmt::print(out, "{}\r\n", line);
  for (const json& record : records) {
    line.clear();
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (i != 0) line += ',';
      const auto it = record.find(std::string{keys[i]});
      if (it != record.end()) line += csv_cell(*it);
    }
    fmt::print(out, "{}\r\n", line);
  }
}

// ---------------------------------------------------------------------------------------------
// Listings: alerts and top, one record a row.

enum class shown_as : std::uint8_t { text, long_text, integer, number, score, ratio, utc, span };

/// A table column: which field of the record, its header and how it is written.
struct column {
  std::string_view key;
  std::string_view header;
  shown_as as;
};

bool right_aligned(shown_as as) {
  return as != shown_as::text && as != shown_as::long_text && as != shown_as::utc;
}

std::string table_cell(const json& v, shown_as as) {
  if (v.is_null()) return "-";
  switch (as) {
    case shown_as::text:
      return printable(v.get<std::string>());
    case shown_as::long_text:
      return sanitize_for_log(v.get<std::string>(), max_text);
    case shown_as::integer:
      return std::to_string(v.get<std::int64_t>());
    case shown_as::number:
      return number_text(v.get<double>());
    case shown_as::score:
      return score_text(v.get<double>());
    case shown_as::ratio:
      return fmt::format("{:.2f}", v.get<double>());
    case shown_as::utc: {
      std::string s = v.get<std::string>();  // ISO 8601 as format_utc() wrote it
      std::replace(s.begin(), s.end(), 'T', ' ');
      if (!s.empty() && s.back() == 'Z') s.pop_back();
      return s;
    }
    case shown_as::span:
      return span_text(v.get<std::int64_t>());
  }
  return {};
}

void print_table(std::FILE* out, std::span<const column> columns, const std::vector<json>& records,
                 std::string_view indent = "") {
  std::vector<std::string> header;
  std::vector<bool> right;
  for (const column& c : columns) {
    header.emplace_back(c.header);
    right.push_back(right_aligned(c.as));
  }
  table t(std::move(header), std::move(right));
  for (const json& record : records) {
    std::vector<std::string> row;
    for (const column& c : columns) row.push_back(table_cell(record.at(std::string{c.key}), c.as));
    t.add(std::move(row));
  }
  t.print(out, indent);
}

std::string window_text(const review_args& args) {
  return fmt::format("from {} to {} UTC", readable_utc(args.since), readable_utc(args.until));
}

std::string truncation_text(std::size_t shown, std::int64_t total, std::string_view noun) {
  return fmt::format("showing {} of {} {}; --limit 0 shows all, or narrow --since/--until", shown,
                     total, noun);
}

/// The limit a query gets: tables always apply one, json and csv only a given one.
std::size_t effective_limit(const review_args& args) {
  return args.format == review_format::table || args.limit_given ? args.limit : 0;
}

json limit_json(const review_args& args) {
  const std::size_t limit = effective_limit(args);
  return limit == 0 ? json(nullptr) : json(limit);
}

/// A listing in the chosen format. `summary` is the JSON summary line, to which the counts are
/// added; a CSV cut by an explicit --limit says so on stderr (never inside the CSV).
struct listing {
  std::string_view noun;  ///< "alert episodes"
  std::string empty_text;
  std::span<const std::string_view> keys;  ///< JSON keys, in CSV order
  std::span<const column> columns;         ///< the table
  std::vector<json> records;
  std::int64_t total = 0;
  json_object summary;
};

void print_listing(std::FILE* out, std::FILE* err, const review_args& args, listing& l) {
  const bool truncated = static_cast<std::int64_t>(l.records.size()) < l.total;
  switch (args.format) {
    case review_format::json:
      for (const json& record : l.records) fmt::print(out, "{}\n", dump_json(record));
      fmt::print(out, "{}\n",
                 dump_json(l.summary.integer("total", l.total)
                               .integer("shown", static_cast<std::int64_t>(l.records.size()))
                               .boolean("truncated", truncated)
                               .value_of("limit", limit_json(args))
                               .value()));
      return;
    case review_format::csv:
      print_csv(out, l.keys, l.records);
      if (truncated) {
        fmt::print(err, "rcptguard review: {}\n",
                   truncation_text(l.records.size(), l.total, l.noun));
      }
      return;
    case review_format::table:
      if (l.records.empty()) {
        fmt::print(out, "{}\n", l.empty_text);
        return;
      }
      print_table(out, l.columns, l.records);
      if (truncated) fmt::print(out, "{}\n", truncation_text(l.records.size(), l.total, l.noun));
      return;
  }
}

json_object summary_of(std::string_view view, const review_args& args) {
  json_object s;
  s.text("type", "summary").text("view", view).time("since", args.since).time("until", args.until);
  return s;
}

// ---------------------------------------------------------------------------------------------
// alerts

const char* state_of(const store::alert_row& a) {
  return a.ended_at ? "closed" : "open";
}

std::int64_t duration_of(const store::alert_row& a) {
  return a.ended_at.value_or(a.updated) - a.started;
}

/// The SIEM shape of an episode (the fields README "Alerts out" lists).
json_object episode_record(const store::alert_row& a) {
  json_object o;
  o.text("type", "episode")
      .time("time", a.started)
      .text("recipient", a.recipient)
      .text("state", state_of(a))
      .text("verdict", a.peak_level)
      .real("score", a.peak_score)
      .text("window", a.peak_window)
      .real("observed", a.peak_observed)
      .real("baseline", a.peak_baseline)
      .text("reasons", a.summary)
      .text("source", a.source)
      .value_of("attack", attack_tags())
      .time("updated", a.updated)
      .time("ended", a.ended_at)
      .value_of("closed_by", a.closed_by.empty() ? json(nullptr) : json(a.closed_by))
      .value_of("cluster_id", a.cluster_id.empty() ? json(nullptr) : json(a.cluster_id))
      .integer("duration_s", duration_of(a))
      .integer("verdicts", a.verdicts)
      .integer("id", a.id);
  return o;
}

constexpr auto episode_keys = std::to_array<std::string_view>(
    {"type",      "time",       "recipient",  "state",    "verdict", "score",   "window",
     "observed",  "baseline",   "reasons",    "source",   "attack",  "updated", "ended",
     "closed_by", "cluster_id", "duration_s", "verdicts", "id",      "node"});

constexpr std::array<column, 13> alert_columns{{
    {"time", "STARTED (UTC)", shown_as::utc},
    {"recipient", "RECIPIENT", shown_as::text},
    {"state", "STATE", shown_as::text},
    {"duration_s", "DURATION", shown_as::span},
    {"verdict", "LEVEL", shown_as::text},
    {"score", "SCORE", shown_as::score},
    {"window", "WINDOW", shown_as::text},
    {"observed", "OBSERVED", shown_as::number},
    {"baseline", "BASELINE", shown_as::number},
    {"verdicts", "VERDICTS", shown_as::integer},
    {"closed_by", "ENDED BY", shown_as::text},
    {"source", "SOURCE", shown_as::text},
    {"reasons", "SUMMARY", shown_as::long_text},
}};

/// Several nodes' listings as one, in the order `before` says, cut at `limit` (0: all): each row
/// comes from its node's own cut listing, so no row that belongs in the result is missing.
template <class Row, class Before>
std::vector<std::pair<const node_database*, Row>> merged(const std::vector<node_database>& dbs,
                                                         std::vector<store::page<Row>>& pages,
                                                         std::size_t limit, Before before) {
  std::vector<std::pair<const node_database*, Row>> rows;
  for (std::size_t k = 0; k < dbs.size(); ++k) {
    for (Row& row : pages[k].rows) rows.emplace_back(&dbs[k], std::move(row));
  }
  std::stable_sort(rows.begin(), rows.end(),
                   [&](const auto& a, const auto& b) { return before(a.second, b.second); });
  if (limit != 0 && rows.size() > limit) rows.resize(limit);
  return rows;
}

/// With several databases a table names each row's node, and the flood's id across them.
std::vector<column> columns_for(std::span<const column> base, bool several,
                                std::initializer_list<column> extra) {
  std::vector<column> columns(base.begin(), base.end());
  if (several) columns.insert(columns.begin() + 1, extra);
  return columns;
}

void show_alerts(std::vector<node_database>& dbs, const review_args& args, std::FILE* out,
                 std::FILE* err) {
  std::vector<store::page<store::alert_row>> pages;
  std::int64_t total = 0;
  for (node_database& d : dbs) {
    pages.push_back(store::list_alerts(d.db, {args.since, args.until}, effective_limit(args)));
    total += pages.back().total;
  }
  const auto rows = merged(dbs, pages, effective_limit(args),
                           [](const store::alert_row& a, const store::alert_row& b) {
                             return std::tie(a.started, a.id) > std::tie(b.started, b.id);
                           });
  const std::vector<column> columns =
      columns_for(alert_columns, dbs.size() > 1,
                  {{"node", "NODE", shown_as::text}, {"cluster_id", "FLOOD", shown_as::text}});
  listing l{"alert episodes",
            "No alert episodes " + window_text(args) + ".",
            episode_keys,
            columns,
            {},
            total,
            summary_of("alerts", args)};
  for (const auto& [from, a] : rows) {
    l.records.push_back(episode_record(a).text("node", from->node).value());
  }
  print_listing(out, err, args, l);
}

// ---------------------------------------------------------------------------------------------
// actions: the operators' audit log

json action_record(const store::operator_action& a) {
  // The epoch stands for "for good" (allow) and "not an allow".
  json until =
      a.until == time_point{} ? json(nullptr) : json(store::format_utc(to_unix_seconds(a.until)));
  return json_object{}
      .text("type", "operator_action")
      .time("time", to_unix_seconds(a.at))
      .text("user", a.user)
      .integer("uid", a.uid)
      .text("command", a.command)
      .text("kind", a.kind)
      .text("address", a.address)
      .value_of("allowed_until", std::move(until))
      .text("reason", a.reason)
      .text("result", a.result)
      .text("detail", a.detail)
      .integer("id", a.id)
      .value();
}

constexpr auto action_keys =
    std::to_array<std::string_view>({"type", "time", "user", "uid", "command", "kind", "address",
                                     "allowed_until", "reason", "result", "detail", "id", "node"});

constexpr std::array<column, 10> action_columns{{
    {"time", "TIME (UTC)", shown_as::utc},
    {"user", "USER", shown_as::text},
    {"uid", "UID", shown_as::integer},
    {"command", "COMMAND", shown_as::text},
    {"kind", "KIND", shown_as::text},
    {"address", "ADDRESS", shown_as::text},
    {"allowed_until", "UNTIL (UTC)", shown_as::utc},
    {"result", "RESULT", shown_as::text},
    {"reason", "REASON", shown_as::long_text},
    {"detail", "DETAIL", shown_as::long_text},
}};

void show_actions(std::vector<node_database>& dbs, const review_args& args, std::FILE* out,
                  std::FILE* err) {
  std::vector<store::page<store::operator_action>> pages;
  std::int64_t total = 0;
  for (node_database& d : dbs) {
    pages.push_back(store::list_operator_actions(d.db, {args.since, args.until}, args.recipient,
                                                 effective_limit(args)));
    total += pages.back().total;
  }
  const auto rows = merged(dbs, pages, effective_limit(args),
                           [](const store::operator_action& a, const store::operator_action& b) {
                             return std::tie(a.at, a.id) > std::tie(b.at, b.id);
                           });
  const std::vector<column> columns =
      columns_for(action_columns, dbs.size() > 1, {{"node", "NODE", shown_as::text}});
  const std::string about = args.recipient.empty() ? "" : " on " + printable(args.recipient);
  listing l{"operator actions",
            "No operator actions" + about + " " + window_text(args) + ".",
            action_keys,
            columns,
            {},
            total,
            summary_of("actions", args)};
  if (!args.recipient.empty()) l.summary.text("address", args.recipient);
  for (const auto& [from, a] : rows) {
    json record = action_record(a);
    record["node"] = from->node;
    l.records.push_back(std::move(record));
  }
  print_listing(out, err, args, l);
}

// ---------------------------------------------------------------------------------------------
// The baseline model over the window's whole hours.

struct window_hours {
  std::int64_t first = 0;  ///< hour containing since
  std::size_t count = 0;   ///< up to the hour containing until - 1

  [[nodiscard]] std::int64_t end() const {
    return first + static_cast<std::int64_t>(count) * hour_seconds;
  }
};

window_hours hours_of(const review_args& args) {
  window_hours w;
  const std::int64_t rem = ((args.since % hour_seconds) + hour_seconds) % hour_seconds;
  w.first = args.since - rem;
  if (args.until > w.first) {
    w.count = static_cast<std::size_t>((args.until - w.first + hour_seconds - 1) / hour_seconds);
  }
  return w;
}

double sum_of(const std::vector<double>& values) {
  double total = 0.0;
  for (const double v : values) total += v;
  return total;
}

// ---------------------------------------------------------------------------------------------
// top

struct ranked_recipient {
  store::top_recipient_row row;
  double expected = 0.0;
  double deviation = 0.0;
};

/// Most unusual first; equal ones by volume, then by name.
bool ranks_before(const ranked_recipient& a, const ranked_recipient& b) {
  if (a.deviation != b.deviation) return a.deviation > b.deviation;
  if (a.row.observed != b.row.observed) return a.row.observed > b.row.observed;
  return a.row.recipient < b.row.recipient;
}

constexpr auto top_keys = std::to_array<std::string_view>(
    {"type", "recipient", "deviation", "observed", "expected", "accepted", "attempted", "bytes",
     "peak_hourly_senders", "active_hours", "verdicts", "class", "since", "until"});

constexpr std::array<column, 11> top_columns{{
    {"recipient", "RECIPIENT", shown_as::text},
    {"deviation", "DEVIATION", shown_as::ratio},
    {"observed", "RCPTS", shown_as::integer},
    {"expected", "EXPECTED", shown_as::score},
    {"accepted", "ACCEPTED", shown_as::integer},
    {"attempted", "ATTEMPTED", shown_as::integer},
    {"bytes", "BYTES", shown_as::integer},
    {"peak_hourly_senders", "PEAK SENDERS/H", shown_as::integer},
    {"active_hours", "ACTIVE HOURS", shown_as::integer},
    {"verdicts", "VERDICTS", shown_as::integer},
    {"class", "CLASS", shown_as::text},
}};

void show_top(SQLite::Database& db, const review_args& args, std::FILE* out, std::FILE* err) {
  const window_hours hours = hours_of(args);
  const expectation_model model(args.detection,
                                review_prior(db, hours.first, args.detection.baseline));
  store::hourly_reader history(db);
  const auto rank = [&](store::top_recipient_row row) {
    ranked_recipient r;
    const std::vector<store::hourly_row> rows =
        history.read(row.recipient, hours.first - model.history_seconds(), hours.end());
    r.expected = sum_of(model.expected(row.recipient, rows, hours.first, hours.count));
    r.deviation = deviation(static_cast<double>(row.observed), r.expected);
    r.row = std::move(row);
    return r;
  };

  const std::size_t limit = effective_limit(args);
  std::vector<ranked_recipient> ranked;
  std::int64_t total = 0;
  if (args.order == top_order::volume) {
    store::page<store::top_recipient_row> page =
        store::top_recipients(db, {args.since, args.until}, limit);
    total = page.total;
    for (store::top_recipient_row& row : page.rows) ranked.push_back(rank(std::move(row)));
  } else {
    store::page<store::top_recipient_row> page =
        store::top_recipients(db, {args.since, args.until}, 0);
    total = page.total;
    // A window's expectation is at least one message, so no recipient deviates more than its
    // volume: in descending volume, once a volume is at most the limit-th best deviation so far,
    // no later recipient can enter the list.
    std::sort(page.rows.begin(), page.rows.end(), [](const auto& a, const auto& b) {
      return a.observed != b.observed ? a.observed > b.observed : a.recipient < b.recipient;
    });
    std::priority_queue<double, std::vector<double>, std::greater<>> best;  // the limit best
    for (store::top_recipient_row& row : page.rows) {
      if (limit != 0 && best.size() == limit && static_cast<double>(row.observed) <= best.top()) {
        break;
      }
      ranked.push_back(rank(std::move(row)));
      if (limit == 0) continue;
      best.push(ranked.back().deviation);
      if (best.size() > limit) best.pop();
    }
    std::sort(ranked.begin(), ranked.end(), ranks_before);
    if (limit != 0 && ranked.size() > limit) ranked.resize(limit);
  }

  listing l{"recipients",
            "No mail recorded " + window_text(args) + ".",
            top_keys,
            top_columns,
            {},
            total,
            summary_of("top", args)};
  l.summary.text("ranked_by", args.order == top_order::volume ? "volume" : "deviation");
  for (const ranked_recipient& r : ranked) {
    l.records.push_back(json_object{}
                            .text("type", "top")
                            .text("recipient", r.row.recipient)
                            .real("deviation", r.deviation)
                            .integer("observed", r.row.observed)
                            .real("expected", r.expected)
                            .integer("accepted", r.row.accepted)
                            .integer("attempted", r.row.attempted)
                            .integer("bytes", r.row.bytes)
                            .integer("peak_hourly_senders", r.row.peak_hourly_senders)
                            .integer("active_hours", r.row.active_hours)
                            .integer("verdicts", r.row.verdicts)
                            .text("class", model.class_name(r.row.recipient))
                            .time("since", args.since)
                            .time("until", args.until)
                            .value());
  }
  print_listing(out, err, args, l);
}

// ---------------------------------------------------------------------------------------------
// explain

std::string reasons_text(std::span<const store::reason_row> reasons) {
  std::string text;
  for (const store::reason_row& r : reasons) {
    if (!text.empty()) text += "; ";
    text += fmt::format("{}={:.2f}", r.name, r.weight);
    if (!r.detail.empty()) text += fmt::format(" ({})", r.detail);
  }
  return text;
}

int level_rank(std::string_view level) {
  return level == "defer" ? 2 : level == "warn" ? 1 : 0;
}

/// The episode an instant lies in, or nullptr.
const store::episode_report* episode_at(std::span<const store::episode_report> episodes,
                                        std::int64_t at) {
  for (const store::episode_report& e : episodes) {
    if (at >= e.episode.started && at <= e.episode.ended_at.value_or(e.episode.updated)) return &e;
  }
  return nullptr;
}

/// What an explanation changed against the one before it: "opened", "escalated to defer",
/// "lowered to warn", "new peak", "reasons changed" or "restated"; reasons that came or went
/// follow in brackets ("escalated to defer (+new_senders)").
std::string change_of(const store::explanation_row* before, const store::explanation_row& now,
                      std::span<const store::episode_report> episodes) {
  if (before == nullptr || episode_at(episodes, before->at) != episode_at(episodes, now.at)) {
    return "opened";
  }
  std::set<std::string> old_names;
  std::set<std::string> new_names;
  for (const store::reason_row& r : before->reasons) old_names.insert(r.name);
  for (const store::reason_row& r : now.reasons) new_names.insert(r.name);
  std::string diff;
  for (const std::string& name : new_names) {
    if (!old_names.contains(name)) diff += (diff.empty() ? "+" : ", +") + name;
  }
  for (const std::string& name : old_names) {
    if (!new_names.contains(name)) diff += (diff.empty() ? "-" : ", -") + name;
  }
  std::string change;
  if (level_rank(now.level) > level_rank(before->level)) {
    change = "escalated to " + now.level;
  } else if (level_rank(now.level) < level_rank(before->level)) {
    change = "lowered to " + now.level;
  } else if (!diff.empty()) {
    return "reasons changed (" + diff + ")";
  } else if (now.score > before->score) {
    change = "new peak";
  } else {
    change = "restated";
  }
  return diff.empty() ? change : change + " (" + diff + ")";
}

json counts_json(json_object o, const store::action_counts& c) {
  return o.integer("requests", c.requests)
      .integer("warned", c.warned)
      .integer("deferred", c.deferred)
      .integer("flagged", c.flagged)
      .integer("would_defer", c.would_defer)
      .value();
}

/// "50 flagged requests: 20 warned, 30 deferred"; monitor mode and the flag header when used.
std::string counts_text(const store::action_counts& c) {
  if (c.requests == 0) return "no flagged requests";
  std::string text = fmt::format("{} flagged request{}: {} warned, {} deferred", c.requests,
                                 c.requests == 1 ? "" : "s", c.warned, c.deferred);
  if (c.flagged != 0) text += fmt::format(", {} delivered with the flag header", c.flagged);
  if (c.would_defer != 0) {
    text +=
        fmt::format(" ({} of the warned would have been deferred in enforce mode)", c.would_defer);
  }
  return text;
}

/// Every key an explain record may carry, in CSV column order: the union of the record types',
/// `type` first.
// clang-format off
constexpr auto explain_keys = std::to_array<std::string_view>({
    "type", "recipient", "class", "since", "until", "observed", "accepted", "expected",
    "deviation", "history_hours", "episodes", "explanations", "flagged_requests",
    "correspondents",                                                       // recipient
    "time", "attempted", "distinct_senders", "bytes", "in_episode",         // hour
    "state", "verdict", "score", "window", "baseline", "reasons", "source", "attack", "updated",
    "ended", "closed_by", "cluster_id", "duration_s", "verdicts", "id", "peak_at", "requests", "warned",
    "deferred",
    "flagged", "would_defer",                                               // episode
    "change", "monitor_only", "action", "reason_details", "sender", "client",  // explanation
    "first", "last",                                                        // sender, client
    "mailbox", "sha256", "repeats", "size", "filenames", "first_stored", "last_stored",
    "scanned",                                                              // spool_evidence
    "messages",                                                             // correspondent
    "user", "uid", "command", "kind", "address", "allowed_until", "reason", "result",
    "detail"});                                                             // operator_action
// clang-format on

/// A section's truncation line (tables), when it is cut.
template <class Row>
void print_cut(std::FILE* out, const store::page<Row>& page, std::string_view noun) {
  if (page.truncated()) {
    fmt::print(out, "  {}\n", truncation_text(page.rows.size(), page.total, noun));
  }
}

/// '#' for the hour's volume and '|' where its expectation lies, on a common scale.
std::string hour_bar(double observed, double expected, double scale) {
  constexpr double width = 40.0;
  if (scale <= 0.0) return "|";
  const auto length = static_cast<std::size_t>(std::lround(observed / scale * width));
  const auto mark = static_cast<std::size_t>(std::lround(expected / scale * width));
  std::string bar(std::max(length, mark + 1), ' ');
  std::fill_n(bar.begin(), length, '#');
  bar[mark] = '|';
  while (!bar.empty() && bar.back() == ' ') bar.pop_back();
  return bar;
}

/// "alice (uid 1000)", or "uid 1000" for a uid without a name.
std::string who_acted(const store::operator_action& a) {
  const std::string uid = "uid " + std::to_string(a.uid);
  return a.user.empty() ? uid : a.user + " (" + uid + ")";
}

/// Why an episode ended, in words; a release names the operator, from the audit row of the
/// release that ended it (the last successful one inside the episode).
std::string ending_text(const store::alert_row& a,
                        std::span<const store::operator_action> actions_oldest_first) {
  if (a.closed_by == "cool_down") return "cooled down: the volume stayed back near its baseline";
  if (a.closed_by == "evicted") return "no longer tracked (detection.max_recipients reached)";
  if (a.closed_by == "stale")
    return "closed at start-up: it had gone quiet while the daemon was down";
  if (a.closed_by != "operator") return printable(a.closed_by);
  const store::operator_action* release = nullptr;
  for (const store::operator_action& x : actions_oldest_first) {
    const std::int64_t at = to_unix_seconds(x.at);
    if (x.command == "release" && x.result == "ok" && at >= a.started &&
        at <= a.ended_at.value_or(a.updated) + 1) {
      release = &x;
    }
  }
  if (release == nullptr) return "released by an operator";
  return fmt::format("released by {} at {} UTC: {}", printable(who_acted(*release)),
                     readable_utc(to_unix_seconds(release->at)),
                     sanitize_for_log(release->reason, max_text));
}

void show_explain(SQLite::Database& db, const review_args& args, std::FILE* out, std::FILE* err) {
  const window_hours hours = hours_of(args);
  const expectation_model model(args.detection,
                                review_prior(db, hours.first, args.detection.baseline));
  store::hourly_reader history(db);
  const std::vector<store::hourly_row> rows =
      history.read(args.recipient, hours.first - model.history_seconds(), hours.end());
  const std::vector<double> expected =
      model.expected(args.recipient, rows, hours.first, hours.count);
  const store::explain_report r =
      store::explain_recipient(db, args.recipient, {args.since, args.until}, effective_limit(args));
  store::page<store::operator_action> actions = store::list_operator_actions(
      db, {args.since, args.until}, args.recipient, effective_limit(args));
  std::reverse(actions.rows.begin(), actions.rows.end());  // story order

  // Every hour of the window, with mail or not.
  struct hour {
    std::int64_t start = 0;
    store::hourly_row counts;
    double expected = 0.0;
  };
  std::vector<hour> all_hours(hours.count);
  for (std::size_t k = 0; k < hours.count; ++k) {
    all_hours[k].start = hours.first + static_cast<std::int64_t>(k) * hour_seconds;
    all_hours[k].counts.hour_start = all_hours[k].start;
    all_hours[k].expected = expected[k];
  }
  std::int64_t observed = 0;
  std::int64_t accepted = 0;
  std::int64_t history_hours = 0;
  for (const store::hourly_row& h : rows) {
    if (h.hour_start < hours.first) {
      ++history_hours;
      continue;
    }
    if (h.hour_start >= hours.end()) continue;
    all_hours[static_cast<std::size_t>((h.hour_start - hours.first) / hour_seconds)].counts = h;
    observed += std::max(h.attempted, h.accepted);
    accepted += h.accepted;
  }
  const double expected_total = sum_of(expected);
  const std::string recipient_class = model.class_name(args.recipient);

  // The records, in story order.
  std::vector<json> records;
  records.push_back(json_object{}
                        .text("type", "recipient")
                        .text("recipient", r.recipient)
                        .text("class", recipient_class)
                        .time("since", args.since)
                        .time("until", args.until)
                        .integer("observed", observed)
                        .integer("accepted", accepted)
                        .real("expected", expected_total)
                        .real("deviation", deviation(static_cast<double>(observed), expected_total))
                        .integer("history_hours", history_hours)
                        .integer("episodes", static_cast<std::int64_t>(r.episodes.size()))
                        .integer("explanations", r.explanations.total)
                        .integer("flagged_requests", r.done.requests)
                        .integer("correspondents", r.correspondents.total)
                        .value());
  for (const hour& h : all_hours) {
    records.push_back(json_object{}
                          .text("type", "hour")
                          .time("time", h.start)
                          .text("recipient", r.recipient)
                          .integer("observed", std::max(h.counts.attempted, h.counts.accepted))
                          .integer("accepted", h.counts.accepted)
                          .integer("attempted", h.counts.attempted)
                          .real("expected", h.expected)
                          .integer("distinct_senders", h.counts.distinct_senders)
                          .integer("bytes", h.counts.bytes)
                          .boolean("in_episode", h.counts.in_episode)
                          .value());
  }
  for (const store::episode_report& e : r.episodes) {
    json_object o = episode_record(e.episode);
    o.time("peak_at", e.peak_at);
    records.push_back(counts_json(std::move(o), e.done));
  }
  std::vector<std::string> changes;
  const store::explanation_row* before = nullptr;
  for (const store::explanation_row& x : r.explanations.rows) {
    changes.push_back(change_of(before, x, r.episodes));
    before = &x;
    json details = json::array();
    for (const store::reason_row& reason : x.reasons) {
      details.push_back(json_object{}
                            .text("name", reason.name)
                            .real("weight", reason.weight)
                            .real("observed", reason.observed)
                            .real("baseline", reason.baseline)
                            .text("detail", reason.detail)
                            .value());
    }
    records.push_back(json_object{}
                          .text("type", "explanation")
                          .time("time", x.at)
                          .text("recipient", r.recipient)
                          .text("change", changes.back())
                          .text("verdict", x.level)
                          .boolean("monitor_only", x.monitor_only)
                          .real("score", x.score)
                          .text("action", x.action_text)
                          .text("reasons", reasons_text(x.reasons))
                          .value_of("reason_details", std::move(details))
                          .text("source", x.source)
                          .text("sender", x.sender)
                          .text("client", x.client)
                          .integer("id", x.id)
                          .value());
  }
  for (const auto& [kind, list] : {std::pair{"sender", &r.senders}, {"client", &r.clients}}) {
    for (const store::party_row& p : list->rows) {
      json_object o;
      o.text("type", kind).text("recipient", r.recipient).text(kind, p.text);
      json record = counts_json(std::move(o), p.done);
      record["first"] = store::format_utc(p.first_at);
      record["last"] = store::format_utc(p.last_at);
      records.push_back(std::move(record));
    }
  }
  for (const store::evidence_row& e : r.evidence.rows) {
    records.push_back(json_object{}
                          .text("type", "spool_evidence")
                          .text("recipient", r.recipient)
                          .text("mailbox", e.mailbox)
                          .text("sha256", e.sha256)
                          .integer("repeats", e.repeats)
                          .integer("size", e.size)
                          .text("filenames", e.filenames)
                          .time("first_stored", e.first_stored)
                          .time("last_stored", e.last_stored)
                          .time("scanned", e.scanned_at)
                          .value());
  }
  for (const store::correspondent_row& c : r.correspondents.rows) {
    records.push_back(json_object{}
                          .text("type", "correspondent")
                          .text("recipient", r.recipient)
                          .text("sender", c.sender)
                          .integer("messages", c.messages)
                          .time("first", c.first_seen)
                          .time("last", c.last_seen)
                          .value());
  }
  for (const store::operator_action& a : actions.rows) records.push_back(action_record(a));

  if (args.format == review_format::json || args.format == review_format::csv) {
    const auto counts = [&](bool shown) {
      const auto n = [&](const auto& page) {
        return shown ? static_cast<std::int64_t>(page.rows.size()) : page.total;
      };
      return json_object{}
          .integer("explanations", n(r.explanations))
          .integer("senders", n(r.senders))
          .integer("clients", n(r.clients))
          .integer("spool_evidence", n(r.evidence))
          .integer("correspondents", n(r.correspondents))
          .integer("operator_actions", n(actions))
          .value();
    };
    const bool truncated = r.explanations.truncated() || r.senders.truncated() ||
                           r.clients.truncated() || r.evidence.truncated() ||
                           r.correspondents.truncated() || actions.truncated();
    if (args.format == review_format::csv) {
      print_csv(out, explain_keys, records);
      if (truncated) {
        fmt::print(err,
                   "rcptguard review: lists cut at --limit {}; --limit 0 shows all, or narrow "
                   "--since/--until\n",
                   args.limit);
      }
      return;
    }
    for (const json& record : records) fmt::print(out, "{}\n", dump_json(record));
    fmt::print(out, "{}\n",
               dump_json(summary_of("explain", args)
                             .text("recipient", r.recipient)
                             .value_of("total", counts(false))
                             .value_of("shown", counts(true))
                             .boolean("truncated", truncated)
                             .value_of("limit", limit_json(args))
                             .value()));
    return;
  }

  // The table: a story, top to bottom.
  fmt::print(out, "{} {} ({})\n", printable(r.recipient), window_text(args),
             span_text(args.until - args.since));
  if (history_hours == 0) {
    fmt::print(out,
               "Class {}; no mail in the {} weeks before the window: compared to the server-wide "
               "prior.\n",
               printable(recipient_class), args.detection.baseline.weeks);
  } else {
    fmt::print(out,
               "Class {}; {} hours with mail in the {} weeks before the window: the baseline is "
               "learned from them.\n",
               printable(recipient_class), history_hours, args.detection.baseline.weeks);
  }
  fmt::print(out,
             "In these hours: {} RCPTs, {} accepted; the baseline expected {}: {} times as "
             "many.\n",
             observed, accepted, expected_text(expected_total),
             fmt::format("{:.1f}", deviation(static_cast<double>(observed), expected_total)));
  fmt::print(out, "Answered in the window: {}.\n", counts_text(r.done));

  fmt::print(out,
             "\nHourly volume against the baseline ('#' RCPTs, '|' expected, '*' inside an "
             "alert episode)\n");
  double scale = 0.0;
  for (const hour& h : all_hours) {
    scale = std::max(
        {scale, static_cast<double>(std::max(h.counts.attempted, h.counts.accepted)), h.expected});
  }
  table hourly({"HOUR (UTC)", "RCPTS", "ACCEPTED", "EXPECTED", "SENDERS", "BYTES", ""},
               {false, true, true, true, true, true, false});
  for (std::size_t k = 0; k < all_hours.size();) {
    // Runs of two or more hours without mail are one line.
    std::size_t quiet = k;
    double quiet_expected = 0.0;
    while (quiet < all_hours.size() && all_hours[quiet].counts.attempted == 0 &&
           all_hours[quiet].counts.accepted == 0) {
      quiet_expected += all_hours[quiet].expected;
      ++quiet;
    }
    if (quiet - k >= 2) {
      hourly.note(fmt::format("({} hours without mail from {}, {} expected in all)", quiet - k,
                              readable_utc(all_hours[k].start), expected_text(quiet_expected)));
      k = quiet;
      continue;
    }
    const hour& h = all_hours[k++];
    const std::int64_t volume = std::max(h.counts.attempted, h.counts.accepted);
    hourly.add({readable_utc(h.start), std::to_string(volume), std::to_string(h.counts.accepted),
                expected_text(h.expected), std::to_string(h.counts.distinct_senders),
                std::to_string(h.counts.bytes),
                hour_bar(static_cast<double>(volume), h.expected, scale) +
                    (h.counts.in_episode ? " *" : "")});
  }
  hourly.print(out, "  ");

  fmt::print(out, "\nAlert episodes ({})\n", r.episodes.size());
  for (const store::episode_report& e : r.episodes) {
    const store::alert_row& a = e.episode;
    fmt::print(out, "  {} to {} UTC ({}), {}, from {}\n", readable_utc(a.started),
               a.ended_at ? readable_utc(*a.ended_at) : std::string{"now (open)"},
               span_text(duration_of(a)), state_of(a), printable(a.source));
    fmt::print(out, "    peak: {}, score {}{}; {} window: {} against a baseline of {}\n",
               printable(a.peak_level), score_text(a.peak_score),
               e.peak_at ? " at " + readable_utc(*e.peak_at) : std::string{},
               printable(a.peak_window), number_text(a.peak_observed),
               number_text(a.peak_baseline));
    fmt::print(out, "    answered: {}\n", counts_text(e.done));
    fmt::print(out, "    summary: {}\n", sanitize_for_log(a.summary, max_text));
    if (!a.closed_by.empty()) fmt::print(out, "    ended: {}\n", ending_text(a, actions.rows));
  }

  fmt::print(out, "\nHow the verdicts developed ({} stored explanations)\n", r.explanations.total);
  for (std::size_t i = 0; i < r.explanations.rows.size(); ++i) {
    const store::explanation_row& x = r.explanations.rows[i];
    fmt::print(out, "  {}  {}: {}{}, score {}  ({} from {} via {})\n", readable_utc(x.at),
               printable(changes[i]), printable(x.level),
               x.monitor_only ? " (monitor: warned only)" : "", score_text(x.score),
               printable(x.source), printable(x.sender.empty() ? "<>" : x.sender),
               printable(x.client));
    fmt::print(out, "    action: {}\n", sanitize_for_log(x.action_text, max_text));
    if (x.reasons.empty()) continue;
    table reasons({"REASON", "WEIGHT", "OBSERVED", "BASELINE", "DETAIL"},
                  {false, true, true, true, false});
    for (const store::reason_row& reason : x.reasons) {
      reasons.add({printable(reason.name), score_text(reason.weight), number_text(reason.observed),
                   number_text(reason.baseline), sanitize_for_log(reason.detail, max_text)});
    }
    reasons.print(out, "    ");
  }
  print_cut(out, r.explanations, "explanations");

  for (const auto& [title, noun, list] :
       {std::tuple{"Senders of flagged requests", "senders", &r.senders},
        {"Clients of flagged requests", "clients", &r.clients}}) {
    fmt::print(out, "\n{} ({}, most requests first)\n", title, list->total);
    if (list->rows.empty()) continue;
    table t({noun == std::string_view{"senders"} ? "SENDER" : "CLIENT", "REQUESTS", "WARNED",
             "DEFERRED", "FLAGGED", "FIRST (UTC)", "LAST (UTC)"},
            {false, true, true, true, true, false, false});
    for (const store::party_row& p : list->rows) {
      t.add({printable(p.text.empty() ? "<>" : p.text), std::to_string(p.done.requests),
             std::to_string(p.done.warned), std::to_string(p.done.deferred),
             std::to_string(p.done.flagged), readable_utc(p.first_at), readable_utc(p.last_at)});
    }
    t.print(out, "  ");
    print_cut(out, *list, noun);
  }

  fmt::print(out, "\nSpool evidence: the same attachment stored again and again ({})\n",
             r.evidence.total);
  if (!r.evidence.rows.empty()) {
    table t({"FIRST STORED (UTC)", "LAST STORED (UTC)", "COPIES", "SIZE", "SHA256", "MAILBOX",
             "FILENAMES"},
            {false, false, true, true, false, false, false});
    for (const store::evidence_row& e : r.evidence.rows) {
      t.add({readable_utc(e.first_stored), readable_utc(e.last_stored), std::to_string(e.repeats),
             std::to_string(e.size), printable(e.sha256.substr(0, 12)), printable(e.mailbox),
             sanitize_for_log(e.filenames, max_text)});
    }
    t.print(out, "  ");
    print_cut(out, r.evidence, "spool evidence rows");
  }

  fmt::print(out,
             "\nKnown correspondents ({}, most messages first; one known an hour before an episode "
             "started is not deferred in it)\n",
             r.correspondents.total);
  if (!r.correspondents.rows.empty()) {
    table t({"SENDER", "MESSAGES", "FIRST SEEN (UTC)", "LAST SEEN (UTC)"},
            {false, true, false, false});
    for (const store::correspondent_row& c : r.correspondents.rows) {
      t.add({printable(c.sender), std::to_string(c.messages), readable_utc(c.first_seen),
             readable_utc(c.last_seen)});
    }
    t.print(out, "  ");
    print_cut(out, r.correspondents, "correspondents");
  }

  fmt::print(out, "\nOperator actions on this address ({}; 'rcptguard review actions' lists all)\n",
             actions.total);
  if (!actions.rows.empty()) {
    table t({"TIME (UTC)", "USER", "COMMAND", "RESULT", "REASON", "DETAIL"},
            {false, false, false, false, false, false});
    for (const store::operator_action& a : actions.rows) {
      t.add({readable_utc(to_unix_seconds(a.at)), printable(who_acted(a)),
             printable(a.kind.empty() ? a.command : a.command + " " + a.kind), printable(a.result),
             sanitize_for_log(a.reason, max_text), sanitize_for_log(a.detail, max_text)});
    }
    t.print(out, "  ");
    print_cut(out, actions, "operator actions");
  }
}

// ---------------------------------------------------------------------------------------------
// argv.

struct subcommand {
  review_view view;
  const char* name;
  const char* description;
  const char* default_since;
  int default_limit;
  const char* limit_help;
};

constexpr std::array<subcommand, 5> subcommands{{
    {review_view::alerts, "alerts", "Alert episodes in the window, open and closed, newest first.",
     "7d", 50, "most episodes shown"},
    {review_view::top, "top",
     "Recipients ranked by deviation: the window's RCPTs (per hour the larger of attempted\n"
     "and accepted) divided by what the recipient's learned baseline expected for those hours\n"
     "(per hour the baseline model's hourly value plus baseline_spread_weight times its spread,\n"
     "from the history before that hour, with the recipient's class; the server-wide prior for\n"
     "a recipient without history), at least 1 message. Accepted volume stays a column;\n"
     "--by volume ranks by it.",
     "24h", 20, "most recipients shown"},
    {review_view::explain, "explain",
     "One recipient's story, top to bottom: hourly volume against its baseline, the alert\n"
     "episodes with their peaks and what was answered, how the verdicts developed and why\n"
     "(the stored explanations), the senders and clients of flagged requests, spool evidence,\n"
     "known correspondents. Deviation as in 'rcptguard review top --help'.",
     "2d", 20, "most rows of each list shown"},
    {review_view::explain, "recipient", "The same as 'rcptguard review explain'.", "2d", 20,
     "most rows of each list shown"},
    {review_view::actions, "actions",
     "The operators' audit log, newest first: every allow, unallow, reset, release and status\n"
     "sent to the daemon's control socket and every refused caller, with the unix user of the\n"
     "connection (SO_PEERCRED, never what the request claimed), the reason given, the result\n"
     "and what changed.",
     "30d", 50, "most actions shown"},
}};

cxxopts::Options options_for(const subcommand& sub) {
  cxxopts::Options options(std::string{"rcptguard review "} + sub.name, sub.description);
  options.add_options()("d,database",
                        sub.view == review_view::alerts || sub.view == review_view::actions
                            ? "database file (default: store.path of the settings); repeat it "
                              "for several nodes' databases, listed together with their node"
                            : "database file (default: store.path of the settings)",
                        cxxopts::value<std::vector<std::string>>())(
      "since",
      "start of the window: " + std::string{time_argument_forms} + " (default " +
          sub.default_since + ")",
      cxxopts::value<std::string>())("until",
                                     "end of the window (excluded), as --since (default: now)",
                                     cxxopts::value<std::string>())(
      "limit",
      std::string{sub.limit_help} + ", 0 for all (default " + std::to_string(sub.default_limit) +
          " in a table; json and csv list all unless given)",
      cxxopts::value<int>())(
      "format",
      "table, json (JSON Lines: one object a line, the last a summary with total and "
      "truncated) or csv (RFC 4180 with a header row); times are UTC",
      cxxopts::value<std::string>());
  add_config_options(options, "store.path=/var/lib/rcptguard/rcptguard.db");
  if (sub.view == review_view::top) {
    options.add_options()("by", "rank by deviation (default) or volume (accepted messages)",
                          cxxopts::value<std::string>());
  }
  if (sub.view == review_view::explain) {
    options.add_options()("delimiters",
                          "recipient_delimiter characters cut from the local part (default "
                          "detection.recipient_delimiters, +)",
                          cxxopts::value<std::string>())("address", "the recipient address",
                                                         cxxopts::value<std::string>());
    options.parse_positional({"address"});
    options.positional_help("ADDRESS");
  }
  if (sub.view == review_view::actions) {
    options.add_options()("address",
                          "only the actions on this address (normalised as the control commands "
                          "store it: detection.recipient_delimiters of the settings)",
                          cxxopts::value<std::string>());
  }
  return options;
}

std::int64_t time_option(const cxxopts::ParseResult& parsed, const char* name,
                         const std::string& fallback, std::int64_t now) {
  const std::string text = parsed.count(name) != 0 ? parsed[name].as<std::string>() : fallback;
  const time_argument t = parse_time_argument(text, now);
  if (t.unix_seconds) return *t.unix_seconds;
  if (t.problem == "malformed") {
    throw usage_error{fmt::format("--{} '{}' is not a time: give {}", name, printable(text),
                                  time_argument_forms)};
  }
  throw usage_error{fmt::format("--{} '{}' {}", name, printable(text), t.problem)};
}

// Fills `args` from the subcommand's options; throws usage_error or a cxxopts exception.
// Returns false (after printing) when the settings could not be loaded.
bool parse_review(const subcommand& sub, const cxxopts::ParseResult& parsed, time_point now,
                  review_args& args, std::FILE* err) {
  args.view = sub.view;

  const std::int64_t now_s = to_unix_seconds(now);
  args.since = std::max<std::int64_t>(0, time_option(parsed, "since", sub.default_since, now_s));
  args.until = std::max<std::int64_t>(0, time_option(parsed, "until", "0s", now_s));
  if (args.since > args.until) {
    throw usage_error{fmt::format(
        "--since {} ({} UTC) is after --until {} ({} UTC)",
        printable(parsed.count("since") != 0 ? parsed["since"].as<std::string>()
                                             : sub.default_since),
        readable_utc(args.since),
        printable(parsed.count("until") != 0 ? parsed["until"].as<std::string>() : "now"),
        readable_utc(args.until))};
  }

  args.limit_given = parsed.count("limit") != 0;
  const int limit = args.limit_given ? parsed["limit"].as<int>() : sub.default_limit;
  if (limit < 0) throw usage_error{"--limit must be 0 (all) or more"};
  args.limit = static_cast<std::size_t>(limit);

  const std::string format =
      parsed.count("format") != 0 ? parsed["format"].as<std::string>() : "table";
  if (format == "table") {
    args.format = review_format::table;
  } else if (format == "json") {
    args.format = review_format::json;
  } else if (format == "csv") {
    args.format = review_format::csv;
  } else {
    throw usage_error{"--format must be table, json or csv, not '" + printable(format) + "'"};
  }

  if (sub.view == review_view::top && parsed.count("by") != 0) {
    const std::string by = parsed["by"].as<std::string>();
    if (by == "deviation") {
      args.order = top_order::deviation;
    } else if (by == "volume") {
      args.order = top_order::volume;
    } else {
      throw usage_error{"--by must be deviation or volume, not '" + printable(by) + "'"};
    }
  }

  std::string_view address;
  if (sub.view == review_view::explain && parsed.count("address") == 0) {
    throw usage_error{"missing ADDRESS"};
  }
  if (parsed.count("address") != 0) {
    address = parsed["address"].as<std::string>();
    if (address.size() >= 2 && address.front() == '<' && address.back() == '>') {
      address = address.substr(1, address.size() - 2);
    }
  }

  // The settings: for the database path without -d, and for the baseline model of top and
  // explain (-c/-o, else the default file when it exists, else the built-in defaults).
  const bool model =
      sub.view == review_view::top || sub.view == review_view::explain || !address.empty();
  if (parsed.count("database") != 0) {
    args.databases = parsed["database"].as<std::vector<std::string>>();
    if (args.databases.size() > 1 && sub.view != review_view::alerts &&
        sub.view != review_view::actions) {
      throw usage_error{std::string{sub.name} +
                        " reads one database; alerts and actions take several -d"};
    }
  }
  if (parsed.count("database") == 0 || model) {
    const std::optional<config> settings =
        load_or_report(config_source_from(parsed), "rcptguard review", err);
    if (!settings) return false;
    if (parsed.count("database") == 0) args.databases = {settings->store.path};
    args.detection = settings->detection;
  }

  if (sub.view == review_view::actions && !address.empty()) {
    // The engine's key, as the control commands store it.
    decision::normalise_address(address, args.detection.recipient_delimiters, args.recipient);
    if (args.recipient.empty()) throw usage_error{"--address is empty"};
  }
  if (sub.view == review_view::explain) {
    const std::string delimiters = parsed.count("delimiters") != 0
                                       ? parsed["delimiters"].as<std::string>()
                                       : args.detection.recipient_delimiters;
    decision::normalise_address(address, delimiters, args.recipient);
    if (args.recipient.empty()) throw usage_error{"ADDRESS is empty"};
  }
  return true;
}

int review_main(int argc, char** argv, const review_io& io) {
  if (argc < 2 || argv[1] == nullptr) {
    fmt::print(io.err, "{}", review_usage);
    return exit_usage;
  }
  const std::string_view name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    fmt::print(io.out, "{}", review_usage);
    return exit_ok;
  }
  const auto* sub = std::find_if(subcommands.begin(), subcommands.end(),
                                 [&](const subcommand& s) { return name == s.name; });
  if (sub == subcommands.end()) {
    fmt::print(io.err, "rcptguard review: unknown subcommand '{}'\n{}", printable(name),
               review_usage);
    return exit_usage;
  }
  cxxopts::Options options = options_for(*sub);
  // The subcommand parses argv from its own name on.
  return run_command(
      options, argc - 1, argv + 1, "rcptguard review " + std::string{sub->name}, io.out, io.err,
      [&](const cxxopts::ParseResult& parsed) {
        review_args args;
        if (!parse_review(*sub, parsed, io.now.value_or(wall_clock_now()), args, io.err)) {
          return exit_failure;
        }
        return run_review(args, io.out, io.err);
      });
}

}  // namespace

int run_review(const review_args& args, std::FILE* out, std::FILE* err) {
  std::optional<std::vector<node_database>> dbs =
      open_node_databases(args.databases, "rcptguard review", err);
  if (!dbs) return exit_failure;
  try {
    SQLite::Database& db = dbs->front().db;
    switch (args.view) {
      case review_view::alerts:
        show_alerts(*dbs, args, out, err);
        break;
      case review_view::top:
        show_top(db, args, out, err);
        break;
      case review_view::explain:
        show_explain(db, args, out, err);
        break;
      case review_view::actions:
        show_actions(*dbs, args, out, err);
        break;
    }
  } catch (const std::exception& e) {
    fmt::print(err, "rcptguard review: cannot read database {}: {}\n", printable(dbs->front().path),
               printable(e.what()));
    return exit_failure;
  }
  if (std::fflush(out) != 0) {
    fmt::print(err, "rcptguard review: cannot write the output\n");
    return exit_failure;
  }
  return exit_ok;
}

int command_review(int argc, char** argv, const review_io& io) {
  try {
    return review_main(argc, argv, io);
  } catch (const std::exception& e) {
    // Only the subcommand dispatch is outside run_command(): printing failed.
    fmt::print(io.err, "rcptguard review: {}\n", printable(e.what()));
    return exit_failure;
  }
}

int command_review(int argc, char** argv) {
  return command_review(argc, argv, review_io{});
}

}  // namespace rcptguard::cli
