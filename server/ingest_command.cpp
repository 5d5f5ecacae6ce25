// `rcptguard ingest`: log lines -> parser -> queue-id joiner -> log feed -> engine -> store and
// alert file. Replay runs as fast as the disk allows; baselines are refreshed from the store at
// every new hour of log time, as the daemon does every hour of wall time, so three weeks of
// replayed logs end with the baselines three weeks of live traffic would have built.
#include "server/ingest_command.hpp"

#include <fmt/core.h>

#include <atomic>
#include <csignal>
#include <exception>
#include <filesystem>
#include <memory>
#include <random>
#include <thread>

#include "common/text.hpp"
#include "decision/engine.hpp"
#include "decision/log_feed.hpp"
#include "ingest/follower.hpp"
#include "ingest/reader.hpp"
#include "ingest/timestamp.hpp"
#include "server/alert_log.hpp"
#include "server/cxxopts.hpp"
#include "server/daemon.hpp"
#include "server/log_events.hpp"
#include "store/ingest_positions.hpp"
#include "store/schema.hpp"
#include "store/store.hpp"

namespace rcptguard::server {

namespace {

constexpr int exit_ok = 0;
constexpr int exit_failure = 1;
constexpr int exit_usage = 2;
constexpr const char* default_config_path = "/etc/rcptguard/rcptguard.toml";

// Engine records are written in batches of about this many deliveries during a replay.
constexpr std::size_t flush_deliveries = 20'000;

std::atomic<bool> stop_requested{false};

extern "C" void on_stop_signal(int /*signal*/) {
  stop_requested.store(true);
}

time_point wall_now() {
  return std::chrono::time_point_cast<std::chrono::microseconds>(clock_type::now());
}

std::uint64_t random_seed() {
  std::random_device device;
  return (std::uint64_t{device()} << 32U) ^ device();
}

decision::settings log_detection(decision::settings detection) {
  // What a log shows was delivered: verdicts are what would have been answered, and every
  // message counts as accepted (enforce mode would count a deferred one as refused).
  detection.mode = decision::detection_mode::monitor;
  return detection;
}

// The whole path from a line to the store, for one run.
class pipeline {
 public:
  pipeline(const config& settings, const ingest_options& options, time_point reference)
      : settings_(settings),
        engine_(log_detection(settings.detection), random_seed()),
        feed_(engine_),
        parser_(ingest::timestamp_options{options.year, reference, options.utc_offset}),
        joiner_(options.joiner) {
    store::store_options store_options;
    store_options.database.path = settings.store.path;
    store_options.history_weeks = static_cast<int>(settings.store.history_weeks);
    store_ = std::make_unique<store::store>(store_options);
    // A second connection for history reads and positions: the store keeps its own private.
    positions_db_ = std::make_unique<SQLite::Database>(
        store::open_read_write(store::open_options{.path = settings.store.path}));
    positions_ = std::make_unique<store::ingest_positions>(*positions_db_);
    if (!options.alerts_file.empty()) alerts_ = std::make_unique<alert_log>(options.alerts_file);
  }

  void line(std::string_view text) {
    ingest::syslog_line envelope;
    ingest::mail_line mail;
    if (parser_.parse(text, envelope, mail) != ingest::line_result::mail) return;
    joiner_.add(envelope.time, envelope.host, mail, events_);
    for (const ingest::message_event& e : events_) deliver(e);
    events_.clear();
  }

  /// Alerts out, then the records into the database.
  void flush() {
    decision::outbox& batch = engine_.pending();
    if (batch.empty()) return;
    verdicts_ += batch.verdicts.size();
    if (alerts_) alerts_->write(batch.episodes);
    store_->apply(batch);
    batch.clear();
  }

  std::optional<ingest::follow_position> saved_position(const std::string& path) {
    const auto saved = positions_->load(path);
    if (!saved) return std::nullopt;
    return ingest::follow_position{saved->device, saved->inode, saved->offset};
  }

  void save_position(const std::string& path, const ingest::follow_position& p, time_point now) {
    positions_->save(path, store::ingest_position{p.device, p.inode, p.offset}, now);
  }

  void fill(ingest_summary& s) const {
    s.lines = parser_.counts();
    s.joiner = joiner_.stats();
    s.verdicts = verdicts_;
    s.alerts = alerts_ ? alerts_->lines() : 0;
  }

 private:
  void deliver(const ingest::message_event& e) {
    const std::int64_t hour = to_unix_seconds(e.time) / 3600;
    if (!restored_) {
      // The engine resumes from what the store knows as of the first event of the log.
      engine_.restore(store_->load_snapshot(e.time), e.time);
      restored_ = true;
      hour_ = hour;
    } else if (hour > hour_) {
      hour_ = hour;
      flush();
      const auto histories = store::load_histories(*positions_db_, e.time,
                                                   static_cast<int>(settings_.store.history_weeks));
      engine_.update_histories(histories, e.time);
    }
    feed_.tick(e.time);
    feed_.feed(to_log_message(e));
    if (engine_.pending().deliveries.size() >= flush_deliveries) flush();
  }

  const config& settings_;
  decision::engine engine_;
  decision::log_feed feed_;
  ingest::line_parser parser_;
  ingest::joiner joiner_;
  std::unique_ptr<store::store> store_;
  std::unique_ptr<SQLite::Database> positions_db_;
  std::unique_ptr<store::ingest_positions> positions_;
  std::unique_ptr<alert_log> alerts_;
  std::vector<ingest::message_event> events_;
  bool restored_ = false;
  std::int64_t hour_ = 0;
  std::uint64_t verdicts_ = 0;
};

void print_summary(std::FILE* out, const ingest_summary& s) {
  const double rate = s.seconds > 0 ? static_cast<double>(s.lines.lines) / s.seconds : 0.0;
  fmt::print(out, "rcptguard ingest: {} lines in {:.3f} s ({:.0f} lines/s)\n", s.lines.lines,
             s.seconds, rate);
  fmt::print(out,
             "  parsed {} (mail {}, other mail-program lines {}); skipped {} (other programs {}, "
             "blank {}, no timestamp {}, malformed {}); long lines cut {}\n",
             s.lines.parsed(), s.lines.mail, s.lines.mail_other, s.lines.skipped(),
             s.lines.other_program, s.lines.blank, s.lines.no_timestamp, s.lines.malformed,
             s.long_lines);
  fmt::print(out,
             "  messages {} (completed {}, expired {}, evicted {}, still open {}); deliveries "
             "counted {} (orphans {}), relayed {}, repeated {}, not selected {}; rejects {}\n",
             s.joiner.messages_opened, s.joiner.messages_removed, s.joiner.messages_expired,
             s.joiner.messages_evicted, s.joiner.open_messages, s.joiner.events,
             s.joiner.orphan_deliveries, s.joiner.relayed, s.joiner.repeated, s.joiner.filtered,
             s.joiner.rejects);
  fmt::print(out, "  verdicts {}, alerts written {}", s.verdicts, s.alerts);
  if (s.rotations != 0 || s.truncations != 0) {
    fmt::print(out, ", rotations {}, truncations {}", s.rotations, s.truncations);
  }
  fmt::print(out, "\n");
}

int replay(pipeline& p, const ingest_options& options, ingest_summary& s) {
  for (const std::string& path : options.files) {
    ingest::line_reader reader(path);
    std::string_view text;
    while (reader.next(text)) p.line(text);
    s.long_lines += reader.long_lines();
  }
  p.flush();
  return exit_ok;
}

int follow(pipeline& p, const ingest_options& options, const follow_control& control,
           ingest_summary& s) {
  std::vector<std::unique_ptr<ingest::follower>> followers;
  for (const std::string& path : options.files) {
    // Positions are keyed by the absolute path, so a relative path names the same log.
    std::error_code ec;
    const std::string key = std::filesystem::absolute(path, ec).lexically_normal().string();
    followers.push_back(std::make_unique<ingest::follower>(ec ? path : key));
    followers.back()->start(p.saved_position(followers.back()->path()), options.from_start);
  }
  const auto on_line = [&](std::string_view text) { p.line(text); };
  while (true) {
    for (auto& f : followers) f->poll(on_line);
    // Records first, then positions: a crash in between re-reads a batch rather than losing it.
    p.flush();
    const time_point now = control.clock();
    for (auto& f : followers) p.save_position(f->path(), f->position(), now);
    if (control.stop()) break;
    control.sleep(options.poll_interval);
  }
  for (const auto& f : followers) {
    s.long_lines += f->stats().long_lines;
    s.rotations += f->stats().rotations;
    s.truncations += f->stats().truncations;
  }
  return exit_ok;
}

struct usage_error {
  std::string message;
};

ingest_options parse_options(const cxxopts::ParseResult& args) {
  ingest_options o;
  if (args.count("files") != 0) o.files = args["files"].as<std::vector<std::string>>();
  if (o.files.empty()) throw usage_error{"no log file given (use - for standard input)"};
  o.follow = args.count("follow") != 0;
  o.from_start = args.count("from-start") != 0;
  if (args.count("year") != 0) {
    const int year = args["year"].as<int>();
    if (year < 1970 || year > 9999) throw usage_error{"--year must be between 1970 and 9999"};
    o.year = year;
  }
  if (args.count("utc-offset") != 0) {
    const std::string text = args["utc-offset"].as<std::string>();
    o.utc_offset = ingest::parse_utc_offset(text);
    if (!o.utc_offset) {
      throw usage_error{"--utc-offset must look like +01:00, -0500 or Z, not '" +
                        sanitize_for_log(text) + "'"};
    }
  }
  if (args.count("alerts") != 0) o.alerts_file = args["alerts"].as<std::string>();
  if (args.count("instance") != 0) {
    o.joiner.instances = args["instance"].as<std::vector<std::string>>();
  }
  if (args.count("host") != 0) o.joiner.hosts = args["host"].as<std::vector<std::string>>();
  if (args.count("delivery-agent") != 0) {
    o.joiner.delivery_agents = args["delivery-agent"].as<std::vector<std::string>>();
  }
  if (o.follow) {
    for (const std::string& f : o.files) {
      if (f == "-") throw usage_error{"--follow needs files, not standard input"};
    }
  }
  return o;
}

}  // namespace

int run_ingest(const config& settings, const ingest_options& options, std::FILE* out,
               std::FILE* err, const follow_control& control, ingest_summary* summary) {
  follow_control c = control;
  if (!c.clock) c.clock = wall_now;
  if (!c.sleep) c.sleep = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
  if (!c.stop) c.stop = [] { return stop_requested.load(); };

  ingest_summary s;
  int code = exit_ok;
  const auto started = std::chrono::steady_clock::now();
  try {
    pipeline p(settings, options, c.clock());
    code = options.follow ? follow(p, options, c, s) : replay(p, options, s);
    p.fill(s);
  } catch (const std::exception& e) {
    fmt::print(err, "rcptguard ingest: {}\n", sanitize_for_log(e.what(), 400));
    code = exit_failure;
  }
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (code == exit_ok) print_summary(out, s);
  if (summary != nullptr) *summary = s;
  return code;
}

int command_ingest(int argc, char** argv) {
  cxxopts::Options options(
      "rcptguard ingest",
      "Replay Postfix/Sendmail logs (plain, gzip, - for stdin) through the detection engine "
      "into the database, or follow live logs with --follow.");
  options.add_options()("f,follow",
                        "follow the files like tail -F (rotation-safe; resumes "
                        "at the stored position)")(
      "from-start", "follow mode: read from the beginning, not the stored position or the end")(
      "year", "year of the first line of classic syslog files (default: inferred from now)",
      cxxopts::value<int>())("utc-offset",
                             "offset of timestamps without one, e.g. +01:00 (default: the "
                             "system time zone, TZ)",
                             cxxopts::value<std::string>())(
      "alerts", "append alert episodes as JSON Lines to this file", cxxopts::value<std::string>())(
      "instance",
      "count only messages received by this Postfix syslog name (postfix, "
      "postfix/submission, postfix-out) or Sendmail program; repeatable. List the instances the "
      "policy hook does not cover so no message is counted twice",
      cxxopts::value<std::vector<std::string>>())(
      "host", "count only messages logged by this syslog host; repeatable",
      cxxopts::value<std::vector<std::string>>())(
      "delivery-agent",
      "Postfix daemon or Sendmail mailer whose deliveries count as inbound; repeatable, "
      "replaces the default local, virtual, lmtp, pipe, cyrus, cyrusv2, procmail",
      cxxopts::value<std::vector<std::string>>())(
      "c,config",
      "settings file (default " + std::string(default_config_path) +
          " if it exists, else built-in defaults)",
      cxxopts::value<std::string>())("o,option",
                                     "override one setting, e.g. -o store.path=/tmp/replay.db "
                                     "(repeatable)",
                                     cxxopts::value<std::vector<std::string>>())(
      "files", "log files", cxxopts::value<std::vector<std::string>>())("h,help", "show this help");
  options.parse_positional({"files"});
  options.positional_help("FILE...");

  ingest_options parsed;
  daemon_options choice;
  try {
    const auto args = options.parse(argc, argv);
    if (args.count("help") != 0) {
      fmt::print("{}", options.help());
      return exit_ok;
    }
    parsed = parse_options(args);
    if (args.count("config") != 0) {
      choice.config_file = args["config"].as<std::string>();
    } else if (std::error_code ec; std::filesystem::exists(default_config_path, ec)) {
      choice.config_file = default_config_path;
    }
    if (args.count("option") != 0) choice.overrides = args["option"].as<std::vector<std::string>>();
  } catch (const usage_error& e) {
    fmt::print(stderr, "rcptguard ingest: {}\n(see 'rcptguard ingest --help')\n", e.message);
    return exit_usage;
  } catch (const cxxopts::exceptions::exception& e) {
    fmt::print(stderr, "rcptguard ingest: {}\n(see 'rcptguard ingest --help')\n",
               sanitize_for_log(e.what(), 400));
    return exit_usage;
  }

  load_result loaded = load_settings(choice);
  for (const auto& error : loaded.errors) fmt::print(stderr, "rcptguard ingest: {}\n", error);
  if (!loaded.ok()) {
    fmt::print(stderr, "rcptguard ingest: configuration {} is invalid\n",
               choice.config_file.empty() ? std::string("defaults") : choice.config_file.string());
    return exit_failure;
  }
  if (parsed.follow) {
    std::signal(SIGINT, on_stop_signal);
    std::signal(SIGTERM, on_stop_signal);
  }
  return run_ingest(*loaded.settings, parsed, stdout, stderr);
}

}  // namespace rcptguard::server
