// `rcptguard review`: argv parsing, the read-only queries of store/review.hpp, and two renderings.
// Everything printed from the database is untrusted (recipient addresses, senders and client
// names come from the network): tables show it through sanitize_for_log(), JSON through
// json_quote(), so neither a terminal nor a SIEM can be fed control sequences or broken lines.
#include "server/review_command.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <exception>
#include <filesystem>
#include <system_error>
#include <utility>
#include <vector>

#include "common/text.hpp"
#include "config/config.hpp"
#include "config/duration.hpp"
#include "decision/keys.hpp"
#include "server/cxxopts.hpp"
#include "server/daemon.hpp"
#include "store/review.hpp"
#include "store/schema.hpp"

namespace rcptguard::server {
namespace {

constexpr int exit_ok = 0;
constexpr int exit_failure = 1;
constexpr int exit_usage = 2;

constexpr const char* default_config_path = "/etc/rcptguard/rcptguard.toml";

// MITRE ATT&CK technique T1667 (Email Bombing) and its analytic AN1009, tagged on every alert
// line so a SIEM can file it without a lookup table of its own.
constexpr const char* attack_tags = R"(["T1667","AN1009"])";

// Generous caps for the table: the longest valid address is 254 bytes.
constexpr std::size_t max_address = 320;
constexpr std::size_t max_text = 2000;

constexpr const char* review_usage =
    "usage: rcptguard review SUBCOMMAND [options]\n"
    "\n"
    "subcommands:\n"
    "  alerts             alert episodes, open and closed, newest first (default --since 7d)\n"
    "  recipient ADDRESS  one recipient's hourly counts, verdicts with reasons, episodes and\n"
    "                     known correspondents (default --since 2d)\n"
    "  top                recipients by accepted messages (default --since 24h)\n"
    "\n"
    "The database (-d, else store.path of the settings) is opened read-only.\n"
    "Run 'rcptguard review SUBCOMMAND --help' for the options of a subcommand.\n"
    "Exit codes: 0 success, 1 failure (database missing or unreadable, invalid configuration),\n"
    "2 usage error.\n";

// ---------------------------------------------------------------------------------------------
// Rendering helpers.

std::string safe(std::string_view untrusted, std::size_t max_bytes = max_address) {
  return sanitize_for_log(untrusted, max_bytes);
}

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

std::string number_text(double v) {
  return fmt::format("{:g}", v);
}

std::string score_text(double v) {
  return fmt::format("{:.2f}", v);
}

/// Columns padded to their widest cell (all cells are ASCII after safe()); the last column is
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

  void print(std::FILE* out, std::string_view indent = "") const {
    std::vector<std::size_t> width(header_.size(), 0);
    for (std::size_t c = 0; c < header_.size(); ++c) {
      width[c] = header_[c].size();
      for (const auto& row : rows_) width[c] = std::max(width[c], row[c].size());
    }
    print_row(out, indent, header_, width);
    for (const auto& row : rows_) print_row(out, indent, row, width);
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
};

/// One JSON object built key by key; keys are our own literals, values are escaped.
class json_object {
 public:
  json_object& text(std::string_view key, std::string_view value) {
    return raw(key, json_quote(value));
  }
  json_object& integer(std::string_view key, std::int64_t value) {
    return raw(key, std::to_string(value));
  }
  json_object& real(std::string_view key, double value) {
    // JSON has no NaN or infinity.
    return raw(key, std::isfinite(value) ? fmt::format("{}", value) : std::string{"null"});
  }
  json_object& boolean(std::string_view key, bool value) {
    return raw(key, value ? "true" : "false");
  }
  json_object& time(std::string_view key, std::optional<std::int64_t> unix_seconds) {
    return raw(key, unix_seconds ? json_quote(store::format_utc(*unix_seconds)) : "null");
  }
  json_object& raw(std::string_view key, std::string_view json_value) {
    body_ += body_.empty() ? "{" : ",";
    body_ += json_quote(key);
    body_ += ':';
    body_ += json_value;
    return *this;
  }
  std::string str() const { return body_.empty() ? "{}" : body_ + "}"; }

 private:
  std::string body_;
};

// ---------------------------------------------------------------------------------------------
// The three views.

const char* state_of(const store::alert_row& a) {
  return a.ended_at ? "closed" : "open";
}

std::int64_t duration_of(const store::alert_row& a) {
  return a.ended_at.value_or(a.updated) - a.started;
}

std::string episode_json(const store::alert_row& a) {
  return json_object{}
      .text("type", "episode")
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
      .raw("attack", attack_tags)
      .time("updated", a.updated)
      .time("ended", a.ended_at)
      .integer("duration_s", duration_of(a))
      .integer("verdicts", a.verdicts)
      .integer("id", a.id)
      .str();
}

void print_episode_table(std::FILE* out, const std::vector<store::alert_row>& alerts,
                         bool with_recipient, std::string_view indent = "") {
  std::vector<std::string> header{"STARTED (UTC)"};
  if (with_recipient) header.emplace_back("RECIPIENT");
  for (const char* h : {"STATE", "DURATION", "LEVEL", "SCORE", "WINDOW", "OBSERVED", "BASELINE",
                        "VERDICTS", "SOURCE", "SUMMARY"}) {
    header.emplace_back(h);
  }
  std::vector<bool> right(header.size(), false);
  const std::size_t numbers_from = with_recipient ? 3 : 2;  // DURATION
  for (std::size_t c :
       {numbers_from, numbers_from + 2, numbers_from + 4, numbers_from + 5, numbers_from + 6}) {
    right[c] = true;
  }
  table t(std::move(header), std::move(right));
  for (const store::alert_row& a : alerts) {
    std::vector<std::string> row{readable_utc(a.started)};
    if (with_recipient) row.push_back(safe(a.recipient));
    row.insert(row.end(), {state_of(a), span_text(duration_of(a)), safe(a.peak_level),
                           score_text(a.peak_score), safe(a.peak_window),
                           number_text(a.peak_observed), number_text(a.peak_baseline),
                           std::to_string(a.verdicts), safe(a.source), safe(a.summary, max_text)});
    t.add(std::move(row));
  }
  t.print(out, indent);
}

void show_alerts(SQLite::Database& db, const review_args& args, time_point since, std::FILE* out) {
  const std::vector<store::alert_row> alerts = store::list_alerts(db, since, args.limit);
  if (args.format == review_format::json) {
    for (const store::alert_row& a : alerts) fmt::print(out, "{}\n", episode_json(a));
    return;
  }
  if (alerts.empty()) {
    fmt::print(out, "No alert episodes since {} UTC.\n", readable_utc(to_unix_seconds(since)));
    return;
  }
  print_episode_table(out, alerts, true);
}

std::string reasons_text(const store::verdict_row& v) {
  std::string text;
  for (const store::reason_row& r : v.reasons) {
    if (!text.empty()) text += "; ";
    text += fmt::format("{}={:.2f}", r.name, r.weight);
    if (!r.detail.empty()) text += fmt::format(" ({})", r.detail);
  }
  return text;
}

std::string verdict_json(const store::verdict_row& v) {
  std::string details = "[";
  for (const store::reason_row& r : v.reasons) {
    if (details.size() > 1) details += ',';
    details += json_object{}
                   .text("name", r.name)
                   .real("weight", r.weight)
                   .real("observed", r.observed)
                   .real("baseline", r.baseline)
                   .text("detail", r.detail)
                   .str();
  }
  details += ']';
  return json_object{}
      .text("type", "verdict")
      .time("time", v.at)
      .text("recipient", v.recipient)
      .text("sender", v.sender)
      .text("client", v.client)
      .text("verdict", v.level)
      .boolean("monitor_only", v.monitor_only)
      .real("score", v.score)
      .text("action", v.action_text)
      .text("reasons", reasons_text(v))
      .raw("reason_details", details)
      .text("source", v.source)
      .raw("attack", attack_tags)
      .integer("id", v.id)
      .str();
}

void show_recipient(SQLite::Database& db, const review_args& args, time_point since,
                    std::FILE* out) {
  const store::recipient_report r = store::recipient_detail(db, args.recipient, since, args.limit);
  const std::int64_t from = to_unix_seconds(since);
  if (args.format == review_format::json) {
    fmt::print(out, "{}\n",
               json_object{}
                   .text("type", "recipient")
                   .text("recipient", r.recipient)
                   .time("since", from)
                   .integer("correspondents", r.correspondents)
                   .integer("hours", static_cast<std::int64_t>(r.hours.size()))
                   .integer("verdicts", static_cast<std::int64_t>(r.verdicts.size()))
                   .integer("episodes", static_cast<std::int64_t>(r.episodes.size()))
                   .str());
    for (const store::hourly_row& h : r.hours) {
      fmt::print(out, "{}\n",
                 json_object{}
                     .text("type", "hour")
                     .time("time", h.hour_start)
                     .text("recipient", r.recipient)
                     .integer("accepted", h.accepted)
                     .integer("attempted", h.attempted)
                     .integer("distinct_senders", h.distinct_senders)
                     .integer("bytes", h.bytes)
                     .str());
    }
    for (const store::verdict_row& v : r.verdicts) fmt::print(out, "{}\n", verdict_json(v));
    for (const store::alert_row& a : r.episodes) fmt::print(out, "{}\n", episode_json(a));
    return;
  }

  fmt::print(out, "Recipient:              {}\n", safe(r.recipient));
  fmt::print(out, "Since:                  {} UTC\n", readable_utc(from));
  fmt::print(out, "Known correspondents:   {}\n", r.correspondents);

  fmt::print(out, "\nHourly history, hours with mail only ({})\n", r.hours.size());
  if (!r.hours.empty()) {
    table t({"HOUR (UTC)", "ACCEPTED", "ATTEMPTED", "SENDERS", "BYTES"},
            {false, true, true, true, true});
    for (const store::hourly_row& h : r.hours) {
      t.add({readable_utc(h.hour_start), std::to_string(h.accepted), std::to_string(h.attempted),
             std::to_string(h.distinct_senders), std::to_string(h.bytes)});
    }
    t.print(out, "  ");
  }

  fmt::print(out, "\nVerdicts, newest first ({})\n", r.verdicts.size());
  for (const store::verdict_row& v : r.verdicts) {
    fmt::print(out, "  {}  {}{}  score {}  {}  from {}  client {}\n", readable_utc(v.at),
               safe(v.level), v.monitor_only ? " (monitor: warned only)" : "", score_text(v.score),
               safe(v.source), safe(v.sender.empty() ? "<>" : v.sender), safe(v.client));
    fmt::print(out, "    action: {}\n", safe(v.action_text, max_text));
    if (v.reasons.empty()) continue;
    table reasons({"REASON", "WEIGHT", "OBSERVED", "BASELINE", "DETAIL"},
                  {false, true, true, true, false});
    for (const store::reason_row& reason : v.reasons) {
      reasons.add({safe(reason.name), score_text(reason.weight), number_text(reason.observed),
                   number_text(reason.baseline), safe(reason.detail, max_text)});
    }
    reasons.print(out, "    ");
  }

  fmt::print(out, "\nEpisodes ({})\n", r.episodes.size());
  if (!r.episodes.empty()) print_episode_table(out, r.episodes, false, "  ");
}

void show_top(SQLite::Database& db, const review_args& args, time_point since, std::FILE* out) {
  const std::vector<store::top_recipient_row> top = store::top_recipients(db, since, args.limit);
  const std::int64_t from = to_unix_seconds(since);
  if (args.format == review_format::json) {
    for (const store::top_recipient_row& row : top) {
      fmt::print(out, "{}\n",
                 json_object{}
                     .text("type", "top")
                     .time("since", from)
                     .text("recipient", row.recipient)
                     .integer("accepted", row.accepted)
                     .integer("attempted", row.attempted)
                     .integer("bytes", row.bytes)
                     .integer("peak_hourly_senders", row.peak_hourly_senders)
                     .integer("active_hours", row.active_hours)
                     .integer("verdicts", row.verdicts)
                     .str());
    }
    return;
  }
  if (top.empty()) {
    fmt::print(out, "No mail recorded since {} UTC.\n", readable_utc(from));
    return;
  }
  table t(
      {"RECIPIENT", "ACCEPTED", "ATTEMPTED", "BYTES", "PEAK SENDERS/H", "ACTIVE HOURS", "VERDICTS"},
      {false, true, true, true, true, true, true});
  for (const store::top_recipient_row& row : top) {
    t.add({safe(row.recipient), std::to_string(row.accepted), std::to_string(row.attempted),
           std::to_string(row.bytes), std::to_string(row.peak_hourly_senders),
           std::to_string(row.active_hours), std::to_string(row.verdicts)});
  }
  t.print(out);
}

// ---------------------------------------------------------------------------------------------
// argv.

struct usage_error {
  std::string message;
};

struct subcommand {
  review_view view;
  const char* name;
  const char* description;
  const char* default_since;
  int default_limit;
  const char* limit_help;
};

constexpr std::array<subcommand, 3> subcommands{{
    {review_view::alerts, "alerts", "Alert episodes, open and closed, newest first.", "7d", 50,
     "most episodes shown"},
    {review_view::recipient, "recipient",
     "One recipient's hourly counts, verdicts with their reasons, episodes and known "
     "correspondents.",
     "2d", 100, "most verdicts shown"},
    {review_view::top, "top", "Recipients by accepted messages.", "24h", 20,
     "most recipients shown"},
}};

cxxopts::Options options_for(const subcommand& sub) {
  cxxopts::Options options(std::string{"rcptguard review "} + sub.name, sub.description);
  options.add_options()("d,database", "database file (default: store.path of the settings)",
                        cxxopts::value<std::string>())("c,config",
                                                       "settings file for store.path (default " +
                                                           std::string(default_config_path) +
                                                           " if it exists, else built-in defaults)",
                                                       cxxopts::value<std::string>())(
      "o,option", "override one setting, e.g. -o store.path=/var/lib/rcptguard/rcptguard.db",
      cxxopts::value<std::vector<std::string>>())(
      "since", std::string{"how far back, e.g. 7d, 24h, 90m (default "} + sub.default_since + ")",
      cxxopts::value<std::string>())(
      "limit", std::string{sub.limit_help} + " (default " + std::to_string(sub.default_limit) + ")",
      cxxopts::value<int>())("format", "table or json (JSON Lines, one object a line)",
                             cxxopts::value<std::string>())("h,help", "show this help");
  if (sub.view == review_view::recipient) {
    options.add_options()("delimiters",
                          "recipient_delimiter characters cut from the local part (default +)",
                          cxxopts::value<std::string>())("address", "the recipient address",
                                                         cxxopts::value<std::string>());
    options.parse_positional({"address"});
    options.positional_help("ADDRESS");
  }
  return options;
}

std::string database_from_settings(const cxxopts::ParseResult& parsed, std::FILE* err, bool& ok) {
  daemon_options choice;
  if (parsed.count("config") != 0) {
    choice.config_file = parsed["config"].as<std::string>();
  } else if (std::error_code ec; std::filesystem::exists(default_config_path, ec)) {
    choice.config_file = default_config_path;
  }
  if (parsed.count("option") != 0) {
    choice.overrides = parsed["option"].as<std::vector<std::string>>();
  }
  load_result loaded = load_settings(choice);
  for (const auto& error : loaded.errors) fmt::print(err, "rcptguard review: {}\n", error);
  if (!loaded.ok()) {
    fmt::print(err, "rcptguard review: configuration {} is invalid\n",
               choice.config_file.empty() ? std::string("defaults") : choice.config_file.string());
    ok = false;
    return {};
  }
  ok = true;
  return loaded.settings->store.path;
}

// Fills `args` from the subcommand's options; throws usage_error or a cxxopts exception.
// Returns false (after printing) when the settings could not be loaded.
bool parse_review(const subcommand& sub, const cxxopts::ParseResult& parsed, review_args& args,
                  std::FILE* err) {
  if (!parsed.unmatched().empty()) {
    throw usage_error{"unexpected argument '" + safe(parsed.unmatched().front()) + "'"};
  }
  args.view = sub.view;

  const std::string since_text =
      parsed.count("since") != 0 ? parsed["since"].as<std::string>() : sub.default_since;
  const auto since = parse_duration(since_text);
  if (!since) {
    throw usage_error{"--since '" + safe(since_text) +
                      "' is not a duration like 7d, 24h, 90m or 30s"};
  }
  args.since = std::chrono::duration_cast<std::chrono::seconds>(*since);

  const int limit = parsed.count("limit") != 0 ? parsed["limit"].as<int>() : sub.default_limit;
  if (limit < 1) throw usage_error{"--limit must be at least 1"};
  args.limit = static_cast<std::size_t>(limit);

  const std::string format =
      parsed.count("format") != 0 ? parsed["format"].as<std::string>() : "table";
  if (format == "table") {
    args.format = review_format::table;
  } else if (format == "json") {
    args.format = review_format::json;
  } else {
    throw usage_error{"--format must be table or json, not '" + safe(format) + "'"};
  }

  if (sub.view == review_view::recipient) {
    if (parsed.count("address") == 0) throw usage_error{"missing ADDRESS"};
    std::string_view address = parsed["address"].as<std::string>();
    if (address.size() >= 2 && address.front() == '<' && address.back() == '>') {
      address = address.substr(1, address.size() - 2);
    }
    const std::string delimiters =
        parsed.count("delimiters") != 0 ? parsed["delimiters"].as<std::string>() : "+";
    decision::normalise_address(address, delimiters, args.recipient);
    if (args.recipient.empty()) throw usage_error{"ADDRESS is empty"};
  }

  if (parsed.count("database") != 0) {
    args.database = parsed["database"].as<std::string>();
    return true;
  }
  bool ok = false;
  args.database = database_from_settings(parsed, err, ok);
  return ok;
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
    fmt::print(io.err, "rcptguard review: unknown subcommand '{}'\n{}", safe(name), review_usage);
    return exit_usage;
  }
  cxxopts::Options options = options_for(*sub);
  options.allow_unrecognised_options();  // reported below as a usage error, without a throw
  review_args args;
  try {
    // The subcommand parses argv from its own name on.
    const cxxopts::ParseResult parsed = options.parse(argc - 1, argv + 1);
    if (parsed.count("help") != 0) {
      fmt::print(io.out, "{}", options.help());
      return exit_ok;
    }
    if (!parse_review(*sub, parsed, args, io.err)) return exit_failure;
  } catch (const usage_error& e) {
    fmt::print(io.err, "rcptguard review {}: {}\n(see 'rcptguard review {} --help')\n", sub->name,
               e.message, sub->name);
    return exit_usage;
  } catch (const cxxopts::exceptions::exception& e) {
    fmt::print(io.err, "rcptguard review {}: {}\n(see 'rcptguard review {} --help')\n", sub->name,
               sanitize_for_reply(e.what(), max_text), sub->name);
    return exit_usage;
  }
  args.now =
      io.now.value_or(std::chrono::time_point_cast<std::chrono::microseconds>(clock_type::now()));
  return run_review(args, io.out, io.err);
}

}  // namespace

std::string json_quote(std::string_view untrusted) {
  std::string out;
  out.reserve(untrusted.size() + 2);
  out.push_back('"');
  std::size_t i = 0;
  while (i < untrusted.size()) {
    const auto c = static_cast<unsigned char>(untrusted[i]);
    if (c >= 0x80) {
      // A run of non-ASCII bytes: valid UTF-8 sequences never contain ASCII bytes, so the run
      // holds whole sequences; sanitize_for_reply() keeps the valid ones and turns each bad
      // byte into '?', never growing the text (so its length cap never cuts).
      std::size_t end = i;
      while (end < untrusted.size() && static_cast<unsigned char>(untrusted[end]) >= 0x80) ++end;
      out += sanitize_for_reply(untrusted.substr(i, end - i), end - i);
      i = end;
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        // DEL is legal JSON, but escaped too so a terminal showing the line stays sane.
        if (c < 0x20 || c == 0x7f) {
          out += fmt::format("\\u{:04x}", c);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out.push_back('"');
  return out;
}

int run_review(const review_args& args, std::FILE* out, std::FILE* err) {
  std::error_code ec;
  const auto status = std::filesystem::symlink_status(args.database, ec);
  if (args.database.empty() || status.type() == std::filesystem::file_type::not_found) {
    fmt::print(err,
               "rcptguard review: database {} does not exist (give -d PATH or set store.path)\n",
               args.database.empty() ? std::string{"(empty path)"} : safe(args.database, max_text));
    return exit_failure;
  }
  // `now - since`, clamped to the epoch so a huge --since cannot overflow.
  const std::int64_t now_s = to_unix_seconds(args.now);
  const std::int64_t back =
      std::min<std::int64_t>(args.since.count(), std::max<std::int64_t>(now_s, 0));
  const time_point since = from_unix_seconds(now_s - back);
  try {
    SQLite::Database db = store::open_read_only(args.database);
    switch (args.view) {
      case review_view::alerts:
        show_alerts(db, args, since, out);
        break;
      case review_view::recipient:
        show_recipient(db, args, since, out);
        break;
      case review_view::top:
        show_top(db, args, since, out);
        break;
    }
  } catch (const std::exception& e) {
    fmt::print(err, "rcptguard review: cannot read database {}: {}\n",
               safe(args.database, max_text), safe(e.what(), max_text));
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
    fmt::print(io.err, "rcptguard review: {}\n", safe(e.what(), max_text));
    return exit_failure;
  }
}

int command_review(int argc, char** argv) {
  return command_review(argc, argv, review_io{});
}

}  // namespace rcptguard::server
