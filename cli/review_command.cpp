// `rcptguard review`: argv parsing, the read-only queries of store/review.hpp, and two renderings.
// Everything printed from the database is untrusted (recipient addresses, senders and client
// names come from the network): tables show it through sanitize_for_log(), JSON through
// common/json.hpp, so neither a terminal nor a SIEM can be fed control sequences or broken lines.
#include "cli/review_command.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <exception>
#include <filesystem>
#include <system_error>
#include <utility>
#include <vector>

#include "cli/command_line.hpp"
#include "common/json.hpp"
#include "common/text.hpp"
#include "config/config.hpp"
#include "config/duration.hpp"
#include "decision/keys.hpp"
#include "store/review.hpp"
#include "store/schema.hpp"

namespace rcptguard::cli {
namespace {

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
  json value() const { return body_; }
  std::string str() const { return dump_json(body_); }

 private:
  json body_ = json::object();
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
      .value_of("attack", attack_tags())
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
    if (with_recipient) row.push_back(printable(a.recipient));
    row.insert(
        row.end(),
        {state_of(a), span_text(duration_of(a)), printable(a.peak_level), score_text(a.peak_score),
         printable(a.peak_window), number_text(a.peak_observed), number_text(a.peak_baseline),
         std::to_string(a.verdicts), printable(a.source), sanitize_for_log(a.summary, max_text)});
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
  json details = json::array();
  for (const store::reason_row& r : v.reasons) {
    details.push_back(json_object{}
                          .text("name", r.name)
                          .real("weight", r.weight)
                          .real("observed", r.observed)
                          .real("baseline", r.baseline)
                          .text("detail", r.detail)
                          .value());
  }
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
      .value_of("reason_details", std::move(details))
      .text("source", v.source)
      .value_of("attack", attack_tags())
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

  fmt::print(out, "Recipient:              {}\n", printable(r.recipient));
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
               printable(v.level), v.monitor_only ? " (monitor: warned only)" : "",
               score_text(v.score), printable(v.source),
               printable(v.sender.empty() ? "<>" : v.sender), printable(v.client));
    fmt::print(out, "    action: {}\n", sanitize_for_log(v.action_text, max_text));
    if (v.reasons.empty()) continue;
    table reasons({"REASON", "WEIGHT", "OBSERVED", "BASELINE", "DETAIL"},
                  {false, true, true, true, false});
    for (const store::reason_row& reason : v.reasons) {
      reasons.add({printable(reason.name), score_text(reason.weight), number_text(reason.observed),
                   number_text(reason.baseline), sanitize_for_log(reason.detail, max_text)});
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
    t.add({printable(row.recipient), std::to_string(row.accepted), std::to_string(row.attempted),
           std::to_string(row.bytes), std::to_string(row.peak_hourly_senders),
           std::to_string(row.active_hours), std::to_string(row.verdicts)});
  }
  t.print(out);
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
                        cxxopts::value<std::string>())(
      "since", std::string{"how far back, e.g. 7d, 24h, 90m (default "} + sub.default_since + ")",
      cxxopts::value<std::string>())(
      "limit", std::string{sub.limit_help} + " (default " + std::to_string(sub.default_limit) + ")",
      cxxopts::value<int>())("format", "table or json (JSON Lines, one object a line)",
                             cxxopts::value<std::string>());
  add_config_options(options, "store.path=/var/lib/rcptguard/rcptguard.db");
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

// Fills `args` from the subcommand's options; throws usage_error or a cxxopts exception.
// Returns false (after printing) when the settings could not be loaded.
bool parse_review(const subcommand& sub, const cxxopts::ParseResult& parsed, review_args& args,
                  std::FILE* err) {
  args.view = sub.view;

  const std::string since_text =
      parsed.count("since") != 0 ? parsed["since"].as<std::string>() : sub.default_since;
  const auto since = parse_duration(since_text);
  if (!since) {
    throw usage_error{"--since '" + printable(since_text) +
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
    throw usage_error{"--format must be table or json, not '" + printable(format) + "'"};
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
  const std::optional<config> settings =
      load_or_report(config_source_from(parsed), "rcptguard review", err);
  if (!settings) return false;
  args.database = settings->store.path;
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
  return run_command(options, argc - 1, argv + 1, "rcptguard review " + std::string{sub->name},
                     io.out, io.err, [&](const cxxopts::ParseResult& parsed) {
                       review_args args;
                       if (!parse_review(*sub, parsed, args, io.err)) return exit_failure;
                       args.now = io.now.value_or(wall_clock_now());
                       return run_review(args, io.out, io.err);
                     });
}

}  // namespace

int run_review(const review_args& args, std::FILE* out, std::FILE* err) {
  std::error_code ec;
  const auto status = std::filesystem::symlink_status(args.database, ec);
  if (args.database.empty() || status.type() == std::filesystem::file_type::not_found) {
    fmt::print(err,
               "rcptguard review: database {} does not exist (give -d PATH or set store.path)\n",
               args.database.empty() ? std::string{"(empty path)"} : printable(args.database));
    return exit_failure;
  }
  // `now - since`, clamped to the epoch so a huge --since cannot overflow.
  const std::int64_t now_s = to_unix_seconds(args.now);
  const std::int64_t back =
      std::min<std::int64_t>(args.since.count(), std::max<std::int64_t>(now_s, 0));
  const time_point since = from_unix_seconds(now_s - back);
  try {
    SQLite::Database db = store::open_read_only(args.database);
    // Review never writes, so it cannot migrate: an older file is upgraded by the daemon, or by
    // `rcptguard ingest` / `scan -d`, which open it for writing.
    if (const int version = store::user_version(db); version < store::schema_version) {
      fmt::print(err,
                 "rcptguard review: database {} has schema version {}, older than {}: start the "
                 "daemon (or run 'rcptguard ingest' on it) once to upgrade it\n",
                 printable(args.database), version, store::schema_version);
      return exit_failure;
    }
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
    fmt::print(err, "rcptguard review: cannot read database {}: {}\n", printable(args.database),
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
