// Mail logs followed inside the daemon ([ingest] files), and alert episodes written for a SIEM
// ([alerts] file). Issue 6: "can run inside the daemon (configured log files) as well as
// stand-alone"; the stand-alone path is server/ingest_command.cpp, this is the daemon's.
//
// Threads. A reader thread follows the files (ingest::follower, tail -F semantics), parses the
// lines and joins them by queue id: that is the part whose cost grows with the log, and a
// follower hands out everything appended since its last call, so a backlog (a restart after a
// long stop, a burst) is read there and never on the network thread. It queues the resulting
// message events in batches, with a bounded number of events queued (the reader waits when the
// queue is full, so memory stays bounded however far behind it is). The network thread, which
// owns the decision engine, takes at most max_events_per_poll events per poll() and feeds them
// to decision::log_feed, so the policy connections are never starved.
//
// Time. The daemon ticks the engine on wall time, and the engine counts every event into its
// current minute. So an event is fed at its log timestamp only when that is recent: one dated
// in the future (a wrong ingest.utc_offset, clock skew) is fed at `now`, and one older than
// max_event_lag is skipped and counted (stale_events, logged): counting an hour of backlog in
// one minute would look like a flood. Mail delivered while the daemon was down is therefore
// not counted, from the log as from the policy hook; old logs are replayed with
// `rcptguard ingest` before starting the daemon.
//
// Positions. A file's position is stored (table ingest_position, on this service's own
// connection) only once every event read before it has been fed to the engine AND the
// engine's records of those events have been handed to the store's writer: the daemon calls
// persistence.pump() after poll(), so the positions reached by one poll() are stored by a later
// one. They are stored at most once a second (position_save_interval), and once more at
// stop() after the writer's final flush. A crash therefore re-reads, and counts again, at most
// the lines of the last second (plus what the writer had not committed, as for policy records);
// a clean stop re-reads nothing. Lines read from a huge backlog get a stored position only once
// the follower has handed out the whole backlog (it reports positions per poll, not per line),
// so a crash during such a catch-up re-reads it; its events are stale then and skipped anyway.
// The joiner's open messages are not stored: a message whose lines straddle a restart is
// counted as an orphan delivery (without its sender) or not at all.
#pragma once

#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/text.hpp"
#include "common/time.hpp"
#include "config/config.hpp"
#include "decision/engine.hpp"
#include "ingest/follower.hpp"
#include "ingest/joiner.hpp"
#include "ingest/line_parser.hpp"
#include "ingest/timestamp.hpp"

namespace SQLite {
class Database;
}

namespace rcptguard::server {

class alert_log;

/// The [ingest] settings as joiner options; the settings table took its defaults from
/// ingest::joiner_options, so the two agree. Inline, so `rcptguard ingest` can use it without
/// linking the service.
inline ingest::joiner_options joiner_options_from(const ingest_settings& settings) {
  ingest::joiner_options options;
  options.max_open_messages = settings.max_open_messages;
  options.expiry = settings.message_expiry;
  options.delivery_agents = settings.delivery_agents;
  options.hosts = settings.hosts;
  options.instances = settings.instances;
  return options;
}

/// ingest.utc_offset as timestamp options for a live log (the year inferred from `reference`).
/// The offset was validated when the settings loaded; one that still does not parse throws
/// std::invalid_argument.
inline ingest::timestamp_options timestamp_options_from(const ingest_settings& settings,
                                                        time_point reference) {
  ingest::timestamp_options options;
  options.reference = reference;
  if (!settings.utc_offset.empty()) {
    options.utc_offset = ingest::parse_utc_offset(settings.utc_offset);
    if (!options.utc_offset) {
      throw std::invalid_argument("ingest.utc_offset '" + sanitize_for_log(settings.utc_offset) +
                                  "' is not an offset such as +01:00");
    }
  }
  return options;
}

struct log_service_stats {
  ingest::parse_counts lines;
  ingest::joiner_stats joiner;
  std::uint64_t long_lines = 0;
  std::uint64_t rotations = 0;
  std::uint64_t truncations = 0;
  std::uint64_t events_fed = 0;
  std::uint64_t stale_events = 0;   ///< older than max_event_lag when fed: skipped
  std::uint64_t future_events = 0;  ///< dated after `now`: fed at `now`
  std::uint64_t position_saves = 0;
  std::uint64_t position_save_failures = 0;
  std::size_t queued_events = 0;
};

class log_service {
 public:
  /// Events one poll() feeds at most: about 20 ms of engine work.
  static constexpr std::size_t max_events_per_poll = 50'000;
  /// Events queued between the threads at most; the reader waits beyond this.
  static constexpr std::size_t max_queued_events = 200'000;
  /// Events older than this when fed are skipped (see the header comment).
  static constexpr std::chrono::minutes max_event_lag{5};
  static constexpr std::chrono::seconds position_save_interval{1};

  /// `database` is store.path, already opened (and migrated) by the daemon's persistence.
  log_service(ingest_settings settings, std::string database, std::shared_ptr<spdlog::logger> log);
  log_service(const log_service&) = delete;
  log_service& operator=(const log_service&) = delete;
  ~log_service();

  /// Opens the service's own database connection, starts each follower at its stored position
  /// (a file not seen before at its end, like tail -F) and starts the reader thread. Throws
  /// std::exception with the reason when the database cannot be used; a missing log file is
  /// waited for.
  void open(time_point now);

  /// On the engine's thread, from the daemon's housekeeping timer: stores the positions whose
  /// records the last pump() handed to the writer (at most once a second), then feeds up to
  /// max_events_per_poll queued events to `engine` through decision::log_feed. Never throws:
  /// a database error is logged and the positions are stored at a later call.
  void poll(decision::engine& engine, time_point now);

  /// A reload: ingest.poll_interval applies to the reader's next wait. The other keys apply on
  /// restart (settings table).
  void reconfigure(const ingest_settings& settings);

  /// Stops and joins the reader thread, then stores the positions of everything fed. Call it
  /// after persistence.stop(), which hands the last records to the writer and flushes them.
  /// Events still queued are not fed; their lines are read again at the next start.
  void stop(time_point now);

  log_service_stats stats() const;

 private:
  /// A batch of events, and the positions the followers reached once they are all fed.
  struct batch {
    std::vector<ingest::message_event> events;
    std::vector<std::pair<std::size_t, ingest::follow_position>> positions;
  };

  void run();
  void read_round(std::vector<ingest::message_event>& events);
  /// Queues `b`, waiting while the queue is full; false when stopping (b is dropped).
  bool push(batch&& b);
  void save_positions(const std::vector<std::optional<ingest::follow_position>>& positions,
                      time_point now);

  const std::string database_;
  const std::shared_ptr<spdlog::logger> log_;

  // Reader thread only, after open().
  std::vector<std::unique_ptr<ingest::follower>> followers_;
  std::unique_ptr<ingest::line_parser> parser_;
  std::unique_ptr<ingest::joiner> joiner_;

  mutable std::mutex mutex_;       ///< guards the members down to stats_
  std::condition_variable wake_;   ///< the reader: stop, or a new poll interval
  std::condition_variable space_;  ///< the reader: the queue has room again
  ingest_settings settings_;
  bool stopping_ = false;
  std::deque<batch> queue_;
  std::size_t queued_events_ = 0;
  log_service_stats stats_;  ///< the reader's counts; the feeding counts are below
  std::thread thread_;

  // Engine thread only.
  std::unique_ptr<SQLite::Database> db_;
  std::vector<std::optional<ingest::follow_position>> fed_;     ///< after the events fed
  std::vector<std::optional<ingest::follow_position>> stored_;  ///< last written
  std::optional<time_point> last_save_;
  std::uint64_t events_fed_ = 0;
  std::uint64_t stale_events_ = 0;
  std::uint64_t future_events_ = 0;
  std::uint64_t position_saves_ = 0;
  std::uint64_t position_save_failures_ = 0;
  std::uint64_t stale_logged_ = 0;  ///< stale_events_ when last logged
  std::optional<time_point> stale_log_time_;
};

/// Alert episodes of both sources as JSON Lines ([alerts] file), in alert_log's format. The
/// daemon calls write() with engine.pending().episodes before persistence.pump() moves them.
/// An unset path writes nothing. The file is opened on first use (append, O_NOFOLLOW, after
/// the privilege drop) and flushed per batch; a failed open or write is logged and never
/// stops the daemon: an open is retried a minute later, and the alerts stay in the database
/// (`rcptguard review alerts --format json`).
class alert_sink {
 public:
  alert_sink(std::string path, std::shared_ptr<spdlog::logger> log);
  alert_sink(const alert_sink&) = delete;
  alert_sink& operator=(const alert_sink&) = delete;
  ~alert_sink();

  void write(const std::vector<decision::episode_record>& episodes);

  std::uint64_t lines() const;
  std::uint64_t failures() const { return failures_; }

 private:
  const std::string path_;
  const std::shared_ptr<spdlog::logger> log_;
  std::unique_ptr<alert_log> file_;
  std::optional<std::chrono::steady_clock::time_point> next_open_;
  std::uint64_t failures_ = 0;
};

}  // namespace rcptguard::server
