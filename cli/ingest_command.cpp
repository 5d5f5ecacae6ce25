// `rcptguard ingest`: the mail-log pipeline (daemon/mail_log_pipeline.hpp: lines -> parser ->
// queue-id joiner -> the engine's delivery entry) at the log's own time -> store and alert file.
// Replay runs as fast as the disk allows; baselines are refreshed from the store by log time (every
// hour during the first day of the replay, as the daemon does by wall time, then daily), so three
// weeks of replayed logs end with the baselines three weeks of live traffic would have built.
#include "cli/ingest_command.hpp"

#include <fmt/core.h>

#include <atomic>
#include <csignal>
#include <exception>
#include <filesystem>
#include <memory>
#include <thread>

#include "cli/command_line.hpp"
#include "common/random.hpp"
#include "common/text.hpp"
#include "config/options.hpp"
#include "daemon/alert_file.hpp"
#include "daemon/mail_log_pipeline.hpp"
#include "decision/engine.hpp"
#include "ingest/follower.hpp"
#include "ingest/reader.hpp"
#include "ingest/timestamp.hpp"
#include "store/ingest_positions.hpp"
#include "store/schema.hpp"
#include "store/store.hpp"

namespace rcptguard::cli {

namespace {

// Engine records are written at every hour of log time, or sooner after this many deliveries,
// which bounds the memory of a log with a very busy hour.
constexpr std::size_t flush_deliveries = 200'000;
// Baselines move by the day; reloading every recipient's weeks of history each log hour cost
// the replay most of its time. Pruning by log time runs as often. Except on the replay's first
// day: a cold store learns a busy account's own volume and bursts hour by hour, as the daemon
// does, and the history is still small.
constexpr std::int64_t history_refresh_hours = 24;
constexpr std::int64_t cold_refresh_hours = 24;
// Engine housekeeping (episode cool-down, expiry) runs at most this often in log time: finer
// than any cool-down, and a replay does not pay for it per line.
constexpr std::chrono::minutes housekeeping_interval{1};

std::atomic<bool> stop_requested{false};

extern "C" void on_stop_signal(int /*signal*/) {
  stop_requested.store(true);
}

// The whole path from a line to the store, for one run.
class pipeline {
 public:
  pipeline(const config& settings, const ingest_options& options, time_point reference)
      : settings_(settings),
        engine_(settings.detection, random_hash_seed()),
        reader_(ingest::timestamp_options{options.year, reference, options.utc_offset},
                options.joiner),
        retention_(writer_options_from(settings).retention),
        spool_retention_(writer_options_from(settings).spool_retention) {
    store_ = std::make_unique<store::store>(store_options_from(settings.store));
    // Minute rows only restore the daemon's windows of the last day: older ones would be pruned
    // at its start, so a replay of weeks does not write them.
    store_->skip_minute_rows_before(reference - store::minute_rows_kept);
    if (!options.alerts_file.empty()) {
      alerts_ = std::make_unique<daemon::alert_file>(options.alerts_file);
    }
  }

  void line(std::string_view text) {
    reader_.add_line(text, deliveries_);
    for (const ingest::message_event& e : deliveries_) deliver(e);
    deliveries_.clear();
  }

  /// Alerts out, then the records into the database, in one transaction with the positions of
  /// the followed logs they take them to: a crash neither skips nor counts a line twice.
  void flush(const std::vector<store::followed_position>& positions = {}, time_point now = {}) {
    decision::outbox& batch = engine_.pending();
    if (batch.empty() && positions.empty()) return;
    if (alerts_) alerts_->write(batch.episodes);
    store_->apply(batch, positions, now);
    batch.clear();
  }

  std::optional<ingest::follow_position> saved_position(const std::string& path) {
    const auto saved = store::ingest_positions(store_->database()).load(path);
    if (!saved) return std::nullopt;
    return ingest::follow_position{saved->device, saved->inode, saved->offset};
  }

  void fill(ingest_summary& s) const {
    s.lines = reader_.line_counts();
    s.joiner = reader_.joiner_stats();
    s.verdicts = counts_.verdicts;
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
      first_hour_ = hour;
      refreshed_hour_ = hour;
    } else if (hour > hour_) {
      hour_ = hour;
      flush();
      const bool first_day = hour < first_hour_ + cold_refresh_hours;
      if (first_day || hour >= refreshed_hour_ + history_refresh_hours) {
        refreshed_hour_ = hour;
        // Rows that have aged out by log time go, as the daemon's writer prunes by wall time.
        if (!first_day) store_->prune(e.time, retention_, spool_retention_);
        const auto histories = store::load_histories(
            store_->database(), e.time, static_cast<int>(settings_.store.history_weeks));
        engine_.update_histories(histories, e.time);
      }
    }
    if (e.time >= last_tick_ + housekeeping_interval) {
      last_tick_ = e.time;
      engine_.tick(e.time);
    }
    daemon::count_delivery(engine_, e, e.time, counts_);
    if (engine_.pending().deliveries.size() >= flush_deliveries) flush();
  }

  const config& settings_;
  decision::engine engine_;
  daemon::mail_log_reader reader_;
  std::unique_ptr<store::store> store_;
  std::unique_ptr<daemon::alert_file> alerts_;
  std::vector<ingest::message_event> deliveries_;
  daemon::delivery_counts counts_;
  bool restored_ = false;
  std::int64_t hour_ = 0;
  std::int64_t refreshed_hour_ = 0;
  std::int64_t first_hour_ = 0;
  std::chrono::seconds retention_;
  std::chrono::seconds spool_retention_;
  time_point last_tick_{};
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
    std::vector<store::followed_position> positions;
    for (auto& f : followers) {
      const ingest::follow_position at = f->position();
      positions.push_back(store::followed_position{f->path(), at.device, at.inode, at.offset});
    }
    p.flush(positions, control.clock());
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
  if (!c.clock) c.clock = wall_clock_now;
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
      "alerts",
      "append alert episodes as JSON Lines to this file (the daemon's [alerts] command is not "
      "run)",
      cxxopts::value<std::string>())(
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
      cxxopts::value<std::vector<std::string>>())("files", "log files",
                                                  cxxopts::value<std::vector<std::string>>());
  add_config_options(options, "store.path=/tmp/replay.db");
  options.parse_positional({"files"});
  options.positional_help("FILE...");
  return run_command(options, argc, argv, "rcptguard ingest", stdout, stderr,
                     [](const cxxopts::ParseResult& args) {
                       const ingest_options parsed = parse_options(args);
                       const auto settings =
                           load_or_report(config_source_from(args), "rcptguard ingest", stderr);
                       if (!settings) return exit_failure;
                       if (parsed.follow) {
                         std::signal(SIGINT, on_stop_signal);
                         std::signal(SIGTERM, on_stop_signal);
                       }
                       return run_ingest(*settings, parsed, stdout, stderr);
                     });
}

}  // namespace rcptguard::cli
