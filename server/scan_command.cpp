// `rcptguard scan`: the [spool] settings (defaults, or -c/-o) overridden by argv ->
// scanner::scan_options, one scanner::scan_once(), the optional store round trip
// (load_scan_state before, save_scan after), and a table or JSON Lines rendering.
// Paths, filenames and addresses come from mailboxes, i.e. from senders: tables show them
// through sanitize_for_log(), JSON through json_quote().
#include "server/scan_command.hpp"

#include <SQLiteCpp/Database.h>
#include <fmt/core.h>

#include <filesystem>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "common/text.hpp"
#include "config/config.hpp"
#include "scanner/scanner.hpp"
#include "server/cxxopts.hpp"
#include "server/daemon.hpp"
#include "server/review_command.hpp"
#include "server/spool_scheduler.hpp"
#include "store/review.hpp"
#include "store/schema.hpp"
#include "store/spool.hpp"

namespace rcptguard::server {
namespace {

constexpr int exit_ok = 0;
constexpr int exit_failure = 1;
constexpr int exit_usage = 2;
constexpr std::size_t max_text = 300;

struct usage_error {
  std::string message;
};

cxxopts::Options scan_options_parser() {
  cxxopts::Options options("rcptguard scan",
                           "Scan the mail spool once for repeated attachments (read-only).");
  options.add_options()("root", "spool directory (repeatable; replaces spool.roots)",
                        cxxopts::value<std::vector<std::string>>())(
      "domain", "local domain: mailbox bob -> bob@DOMAIN (repeatable; replaces spool.domains)",
      cxxopts::value<std::vector<std::string>>())(
      "map",
      "USER=ADDRESS or /PATH=ADDRESS for virtual mailboxes and aliases (repeatable; "
      "replaces spool.map)",
      cxxopts::value<std::vector<std::string>>())(
      "d,database", "store scan state and evidence in this database (created if missing)",
      cxxopts::value<std::string>())(
      "c,config", "settings file: its [spool] section, and store.path as the database",
      cxxopts::value<std::string>())(
      "o,option", "override one setting, e.g. -o spool.window=2h or -o store.path=/tmp/rg.db",
      cxxopts::value<std::vector<std::string>>())(
      "format", "table or json (JSON Lines, one mailbox a line)", cxxopts::value<std::string>())(
      "h,help", "show this help");
  return options;
}

std::string safe(std::string_view untrusted) {
  return sanitize_for_log(untrusted, max_text);
}

std::string utc(time_point t) {
  return store::format_utc(to_unix_seconds(t));
}

const scanner::recipient_report* evidence_of(const scanner::scan_report& report,
                                             const std::string& mailbox) {
  for (const auto& r : report.recipients) {
    if (r.mailbox == mailbox) return &r;
  }
  return nullptr;
}

void print_table(const scanner::scan_report& report, std::FILE* out) {
  for (const std::string& note : report.notes) fmt::print(out, "note: {}\n", safe(note));
  fmt::print(out, "{:<32} {:<7} {:>8} {:>11} {:>12}  {}\n", "MAILBOX", "KIND", "MESSAGES",
             "ATTACHMENTS", "BYTES_READ", "RECIPIENTS");
  for (const scanner::file_report& f : report.files) {
    std::string recipients;
    for (const auto& r : f.recipients) recipients += (recipients.empty() ? "" : ",") + safe(r);
    fmt::print(out, "{:<32} {:<7} {:>8} {:>11} {:>12}  {}\n", safe(f.path),
               f.kind == scanner::mailbox_kind::mbox ? "mbox" : "maildir", f.messages,
               f.attachments, f.bytes_read, recipients);
    if (!f.refused.empty()) fmt::print(out, "  refused: {}\n", safe(f.refused));
    if (!f.warning.empty()) fmt::print(out, "  warning: {}\n", safe(f.warning));
    if (!f.restarted.empty()) fmt::print(out, "  read again from the start: {}\n", f.restarted);
    if (f.writer_active) fmt::print(out, "  a writer is active: the last message waits\n");
    if (f.time_budget_hit) fmt::print(out, "  time budget exhausted: resumes next scan\n");
    for (const auto& s : f.skipped) {
      fmt::print(out, "  skipped {}: {}\n",
                 s.file.empty() ? "at offset " + std::to_string(s.offset) : safe(s.file),
                 scanner::to_string(s.reason));
    }
    const scanner::recipient_report* evidence = evidence_of(report, f.path);
    if (evidence == nullptr) continue;
    for (const auto& r : evidence->evidence.repeats) {
      std::string names;
      for (const auto& n : r.filenames) names += (names.empty() ? "" : ", ") + safe(n);
      fmt::print(out, "  repeated: sha256:{} stored {}x ({} bytes) from {} to {}  {}\n",
                 r.sha256.substr(0, 16), r.count, r.size, utc(r.first_stored), utc(r.last_stored),
                 names);
    }
    for (const auto& n : evidence->evidence.near_duplicates) {
      fmt::print(out, "  near-duplicate: {} ({} bytes) {} copies, {} different hashes\n",
                 safe(n.filename), n.size, n.copies, n.distinct_hashes);
    }
  }
}

void print_json(const scanner::scan_report& report, std::FILE* out) {
  for (const scanner::file_report& f : report.files) {
    std::string line = "{\"mailbox\":" + json_quote(f.path) + ",\"kind\":\"" +
                       (f.kind == scanner::mailbox_kind::mbox ? "mbox" : "maildir") +
                       "\",\"recipients\":[";
    for (std::size_t i = 0; i < f.recipients.size(); ++i) {
      line += (i ? "," : "") + json_quote(f.recipients[i]);
    }
    line += fmt::format("],\"messages\":{},\"attachments\":{},\"bytes_read\":{},\"offset\":{}",
                        f.messages, f.attachments, f.bytes_read, f.offset);
    line += ",\"refused\":" + (f.refused.empty() ? std::string("null") : json_quote(f.refused));
    line +=
        ",\"restarted\":" + (f.restarted.empty() ? std::string("null") : json_quote(f.restarted));
    line += fmt::format(",\"writer_active\":{},\"time_budget_hit\":{},\"skipped\":[",
                        f.writer_active, f.time_budget_hit);
    for (std::size_t i = 0; i < f.skipped.size(); ++i) {
      line += fmt::format("{}{{\"offset\":{},\"file\":{},\"reason\":{}}}", i ? "," : "",
                          f.skipped[i].offset, json_quote(f.skipped[i].file),
                          json_quote(scanner::to_string(f.skipped[i].reason)));
    }
    line += "],\"repeats\":[";
    if (const auto* evidence = evidence_of(report, f.path)) {
      for (std::size_t i = 0; i < evidence->evidence.repeats.size(); ++i) {
        const auto& r = evidence->evidence.repeats[i];
        std::string names;
        for (std::size_t k = 0; k < r.filenames.size(); ++k) {
          names += (k ? "," : "") + json_quote(r.filenames[k]);
        }
        line += fmt::format(
            "{}{{\"sha256\":\"{}\",\"count\":{},\"size\":{},\"first_stored\":\"{}\","
            "\"last_stored\":\"{}\",\"filenames\":[{}]}}",
            i ? "," : "", r.sha256, r.count, r.size, utc(r.first_stored), utc(r.last_stored),
            names);
      }
    }
    line += fmt::format("],\"scanned_at\":\"{}\"}}\n", utc(report.at));
    std::fputs(line.c_str(), out);
  }
}

// The settings of -c/-o, or the defaults when neither was given: the settings table is the one
// source of the scanner's defaults, for this command as for the daemon. Empty after an error,
// which is printed.
std::optional<config> settings_of(const cxxopts::ParseResult& parsed, std::FILE* err) {
  daemon_options choice;
  if (parsed.count("config") != 0) choice.config_file = parsed["config"].as<std::string>();
  if (parsed.count("option") != 0) {
    choice.overrides = parsed["option"].as<std::vector<std::string>>();
  }
  load_result loaded = load_settings(choice);
  for (const auto& error : loaded.errors) fmt::print(err, "rcptguard scan: {}\n", error);
  return std::move(loaded.settings);
}

// -d, else store.path when -c/-o were given; empty when neither (nothing is stored, rather than
// creating the default relative "rcptguard.db" wherever the command runs).
std::string database_of(const cxxopts::ParseResult& parsed, const config& settings) {
  if (parsed.count("database") != 0) return parsed["database"].as<std::string>();
  if (parsed.count("config") == 0 && parsed.count("option") == 0) return {};
  return settings.store.path;
}

// The [spool] settings with --root, --domain and --map each replacing its setting.
scanner::scan_options options_of(const cxxopts::ParseResult& parsed, const config& settings) {
  scanner::scan_options options = scan_options_from(settings.spool);
  if (parsed.count("root") != 0) {
    options.roots.clear();
    for (const auto& r : parsed["root"].as<std::vector<std::string>>())
      options.roots.emplace_back(r);
  }
  if (parsed.count("domain") != 0)
    options.domains = parsed["domain"].as<std::vector<std::string>>();
  if (parsed.count("map") != 0) {
    options.mapping.clear();
    for (const auto& m : parsed["map"].as<std::vector<std::string>>()) {
      auto entry = scanner::parse_mapping(m);
      if (!entry) throw usage_error{"--map '" + safe(m) + "' is not USER=ADDRESS or /PATH=ADDRESS"};
      options.mapping.push_back(std::move(*entry));
    }
  }
  return options;
}

int scan_main(int argc, char** argv, const scan_io& io) {
  cxxopts::Options parser = scan_options_parser();
  parser.allow_unrecognised_options();  // reported as a usage error, without a throw
  scanner::scan_options options;
  std::string database;
  bool json = false;
  try {
    const cxxopts::ParseResult parsed = parser.parse(argc, argv);
    if (parsed.count("help") != 0) {
      fmt::print(io.out, "{}", parser.help());
      return exit_ok;
    }
    if (!parsed.unmatched().empty()) {
      throw usage_error{"unexpected argument '" + safe(parsed.unmatched().front()) + "'"};
    }
    const std::optional<config> settings = settings_of(parsed, io.err);
    if (!settings) return exit_failure;
    options = options_of(parsed, *settings);
    database = database_of(parsed, *settings);
    const std::string format =
        parsed.count("format") != 0 ? parsed["format"].as<std::string>() : "table";
    if (format != "table" && format != "json") {
      throw usage_error{"--format must be table or json, not '" + safe(format) + "'"};
    }
    json = format == "json";
  } catch (const usage_error& e) {
    fmt::print(io.err, "rcptguard scan: {}\n(see 'rcptguard scan --help')\n", e.message);
    return exit_usage;
  } catch (const cxxopts::exceptions::exception& e) {
    fmt::print(io.err, "rcptguard scan: {}\n(see 'rcptguard scan --help')\n", safe(e.what()));
    return exit_usage;
  }
  if (options.domains.empty() && options.mapping.empty()) {
    fmt::print(io.err,
               "rcptguard scan: no --domain or --map (nor spool.domains, spool.map): recipients "
               "are bare user names\n");
  }
  const time_point now =
      io.now.value_or(std::chrono::time_point_cast<std::chrono::microseconds>(clock_type::now()));
  scanner::scan_state state;
  std::optional<SQLite::Database> db;
  try {
    if (!database.empty()) {
      db.emplace(store::open_read_write(store::open_options{database}));
      state = store::load_scan_state(*db, now, options.retention);
    }
    const scanner::scan_report report = scanner::scan_once(options, state, now);
    if (db) store::save_scan(*db, report, state);
    if (json) {
      print_json(report, io.out);
    } else {
      print_table(report, io.out);
    }
  } catch (const std::exception& e) {
    fmt::print(io.err, "rcptguard scan: {}{}\n",
               database.empty() ? "" : "database " + safe(database) + ": ", safe(e.what()));
    return exit_failure;
  }
  if (std::fflush(io.out) != 0) {
    fmt::print(io.err, "rcptguard scan: cannot write the output\n");
    return exit_failure;
  }
  return exit_ok;
}

}  // namespace

int command_scan(int argc, char** argv, const scan_io& io) {
  try {
    return scan_main(argc, argv, io);
  } catch (const std::exception& e) {
    fmt::print(io.err, "rcptguard scan: {}\n", safe(e.what()));
    return exit_failure;
  }
}

int command_scan(int argc, char** argv) {
  return command_scan(argc, argv, scan_io{});
}

}  // namespace rcptguard::server
