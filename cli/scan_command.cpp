// `rcptguard scan`: the [spool] settings (defaults, or -c/-o) overridden by argv ->
// scanner::scan_options, one scanner::scan_once(), the optional store round trip
// (load_scan_state before, save_scan after), and a table or JSON Lines rendering.
// Paths, filenames and addresses come from mailboxes, i.e. from senders: tables show them
// through printable(), JSON through common/json.hpp (valid UTF-8 whatever the bytes).
#include "cli/scan_command.hpp"

#include <SQLiteCpp/Database.h>
#include <fmt/core.h>

#include <filesystem>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "cli/command_line.hpp"
#include "common/json.hpp"
#include "common/text.hpp"
#include "config/config.hpp"
#include "config/options.hpp"
#include "scanner/scanner.hpp"
#include "store/review.hpp"
#include "store/schema.hpp"
#include "store/spool.hpp"

namespace rcptguard::cli {
namespace {

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
      "d,database",
      "store scan state and evidence in this database (created if missing; default: "
      "store.path when -c or -o is given, else none)",
      cxxopts::value<std::string>())("format", "table or json (JSON Lines, one mailbox a line)",
                                     cxxopts::value<std::string>());
  add_config_options(options, "spool.window=2h or -o store.path=/tmp/rg.db");
  return options;
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
  for (const std::string& note : report.notes) fmt::print(out, "note: {}\n", printable(note));
  fmt::print(out, "{:<32} {:<7} {:>8} {:>11} {:>12}  {}\n", "MAILBOX", "KIND", "MESSAGES",
             "ATTACHMENTS", "BYTES_READ", "RECIPIENTS");
  for (const scanner::file_report& f : report.files) {
    std::string recipients;
    for (const auto& r : f.recipients) recipients += (recipients.empty() ? "" : ",") + printable(r);
    fmt::print(out, "{:<32} {:<7} {:>8} {:>11} {:>12}  {}\n", printable(f.path),
               f.kind == scanner::mailbox_kind::mbox ? "mbox" : "maildir", f.messages,
               f.attachments, f.bytes_read, recipients);
    if (!f.refused.empty()) fmt::print(out, "  refused: {}\n", printable(f.refused));
    if (!f.warning.empty()) fmt::print(out, "  warning: {}\n", printable(f.warning));
    if (!f.restarted.empty()) fmt::print(out, "  read again from the start: {}\n", f.restarted);
    if (f.writer_active) fmt::print(out, "  a writer is active: the last message waits\n");
    if (f.time_budget_hit) fmt::print(out, "  time budget exhausted: resumes next scan\n");
    for (const auto& s : f.skipped) {
      fmt::print(out, "  skipped {}: {}\n",
                 s.file.empty() ? "at offset " + std::to_string(s.offset) : printable(s.file),
                 scanner::to_string(s.reason));
    }
    const scanner::recipient_report* evidence = evidence_of(report, f.path);
    if (evidence == nullptr) continue;
    for (const auto& r : evidence->evidence.repeats) {
      std::string names;
      for (const auto& n : r.filenames) names += (names.empty() ? "" : ", ") + printable(n);
      fmt::print(out, "  repeated: sha256:{} stored {}x ({} bytes) from {} to {}  {}\n",
                 r.sha256.substr(0, 16), r.count, r.size, utc(r.first_stored), utc(r.last_stored),
                 names);
    }
    for (const auto& n : evidence->evidence.near_duplicates) {
      fmt::print(out, "  near-duplicate: {} ({} bytes) {} copies, {} different hashes\n",
                 printable(n.filename), n.size, n.copies, n.distinct_hashes);
    }
  }
}

void print_json(const scanner::scan_report& report, std::FILE* out) {
  for (const scanner::file_report& f : report.files) {
    json skipped = json::array();
    for (const scanner::skipped_message& m : f.skipped) {
      skipped.push_back({{"offset", m.offset}, {"file", m.file}, {"reason", to_string(m.reason)}});
    }
    json repeats = json::array();
    if (const auto* evidence = evidence_of(report, f.path)) {
      for (const scanner::repeated_attachment& r : evidence->evidence.repeats) {
        repeats.push_back({{"sha256", r.sha256},
                           {"count", r.count},
                           {"size", r.size},
                           {"first_stored", utc(r.first_stored)},
                           {"last_stored", utc(r.last_stored)},
                           {"filenames", r.filenames}});
      }
    }
    const auto text_or_null = [](const std::string& text) {
      return text.empty() ? json(nullptr) : json(text);
    };
    const json line = {{"mailbox", f.path},
                       {"kind", f.kind == scanner::mailbox_kind::mbox ? "mbox" : "maildir"},
                       {"recipients", f.recipients},
                       {"messages", f.messages},
                       {"attachments", f.attachments},
                       {"bytes_read", f.bytes_read},
                       {"offset", f.offset},
                       {"refused", text_or_null(f.refused)},
                       {"restarted", text_or_null(f.restarted)},
                       {"writer_active", f.writer_active},
                       {"time_budget_hit", f.time_budget_hit},
                       {"skipped", std::move(skipped)},
                       {"repeats", std::move(repeats)},
                       {"scanned_at", utc(report.at)}};
    fmt::print(out, "{}\n", dump_json(line));
  }
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
      if (!entry)
        throw usage_error{"--map '" + printable(m) + "' is not USER=ADDRESS or /PATH=ADDRESS"};
      options.mapping.push_back(std::move(*entry));
    }
  }
  return options;
}

int scan(const cxxopts::ParseResult& parsed, const scan_io& io) {
  const std::optional<config> settings =
      load_or_report(config_source_from(parsed), "rcptguard scan", io.err);
  if (!settings) return exit_failure;
  const scanner::scan_options options = options_of(parsed, *settings);
  const std::string database = database_of(parsed, *settings);
  const std::string format =
      parsed.count("format") != 0 ? parsed["format"].as<std::string>() : "table";
  if (format != "table" && format != "json") {
    throw usage_error{"--format must be table or json, not '" + printable(format) + "'"};
  }
  if (options.domains.empty() && options.mapping.empty()) {
    fmt::print(io.err,
               "rcptguard scan: no --domain or --map (nor spool.domains, spool.map): recipients "
               "are bare user names\n");
  }
  const time_point now = io.now.value_or(wall_clock_now());
  scanner::scan_state state;
  std::optional<SQLite::Database> db;
  try {
    if (!database.empty()) {
      db.emplace(store::open_read_write(store::open_options{database}));
      state = store::load_scan_state(*db, now, options.retention);
    }
    const scanner::scan_report report = scanner::scan_once(options, state, now);
    if (db) store::save_scan(*db, report, state);
    if (format == "json") {
      print_json(report, io.out);
    } else {
      print_table(report, io.out);
    }
  } catch (const std::exception& e) {
    fmt::print(io.err, "rcptguard scan: {}{}\n",
               database.empty() ? "" : "database " + printable(database) + ": ",
               printable(e.what()));
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
  cxxopts::Options options = scan_options_parser();
  return run_command(options, argc, argv, "rcptguard scan", io.out, io.err,
                     [&](const cxxopts::ParseResult& parsed) { return scan(parsed, io); });
}

int command_scan(int argc, char** argv) {
  return command_scan(argc, argv, scan_io{});
}

}  // namespace rcptguard::cli
