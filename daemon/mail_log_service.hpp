// Mail logs followed inside the daemon ([ingest] files). The same pipeline runs stand-alone as
// `rcptguard ingest` (cli/ingest_command.cpp); this is the daemon's half of it.
//
// Threads. A reader thread follows the files (ingest::follower, tail -F semantics), parses the
// lines and joins them by queue id: that is the part whose cost grows with the log, and a
// follower hands out everything appended since its last call, so a backlog (a restart after a
// long stop, a burst) is read there and never on the network thread. It queues the resulting
// message events in batches, with a bounded number of events queued (the reader waits when the
// queue is full, so memory stays bounded however far behind it is). The network thread, which
// owns the decision engine, takes at most max_events_per_poll events per poll() and feeds them
// to the engine's delivery entry (count_delivery()), so the policy connections are never starved.
//
// Time. The daemon ticks the engine on wall time, and the engine counts every event into its
// current minute. So an event is fed at its log timestamp only when that is recent: one dated
// in the future (a wrong ingest.utc_offset, clock skew) is fed at `now`, and one older than
// max_event_lag is skipped and counted (stale_events, logged): counting an hour of backlog in
// one minute would look like a flood. Mail delivered while the daemon was down is therefore
// not counted, from the log as from the policy hook; old logs are replayed with
// `rcptguard ingest` before starting the daemon.
//
// Positions. A file's position (table ingest_position) is handed to the store's writer with
// the engine's records of every event read before it: take_positions() gives the positions the
// fed events reached, and the daemon passes them to persistence.pump() together with the
// engine's outbox, so both commit in one transaction. A crash therefore neither skips nor
// counts again a line whose records were stored (exactly once, by construction); what was fed
// but not yet committed is read again, and was not counted. Lines read from a huge backlog get
// a position only once the follower has handed out the whole backlog (it reports positions per
// poll, not per line), so a crash during such a catch-up re-reads it; its events are stale
// then and skipped anyway. The joiner's open messages are not stored: a message whose lines
// straddle a restart is counted as an orphan delivery (without its sender) or not at all.
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
#include <string>
#include <vector>

#include "common/text.hpp"
#include "common/time.hpp"
#include "config/config.hpp"
#include "daemon/mail_log_pipeline.hpp"
#include "daemon/worker.hpp"
#include "decision/engine.hpp"
#include "ingest/follower.hpp"
#include "ingest/joiner.hpp"
#include "store/delta.hpp"

namespace rcptguard::daemon {

struct mail_log_service_stats {
  ingest::parse_counts lines;
  ingest::joiner_stats joiner;
  std::uint64_t long_lines = 0;
  std::uint64_t rotations = 0;
  std::uint64_t truncations = 0;
  std::uint64_t events_fed = 0;
  std::uint64_t stale_events = 0;   ///< older than max_event_lag when fed: skipped
  std::uint64_t future_events = 0;  ///< dated after `now`: fed at `now`
  std::size_t queued_events = 0;
  /// How far behind the reader is: bytes the followed files held beyond the positions read, as
  /// its last round began (a file the path no longer names counts with the new file's size).
  std::uint64_t unread_bytes = 0;
};

class mail_log_service {
 public:
  /// Events one poll() feeds at most: about 20 ms of engine work.
  static constexpr std::size_t max_events_per_poll = 50'000;
  /// Events queued between the threads at most; the reader waits beyond this.
  static constexpr std::size_t max_queued_events = 200'000;
  /// Events older than this when fed are skipped (see the header comment).
  static constexpr std::chrono::minutes max_event_lag{5};

  /// `database` is store.path, already opened (and migrated) by the daemon's persistence.
  mail_log_service(ingest_settings settings, std::string database,
                   std::shared_ptr<spdlog::logger> log);
  mail_log_service(const mail_log_service&) = delete;
  mail_log_service& operator=(const mail_log_service&) = delete;
  ~mail_log_service();

  /// Reads the stored positions (read-only), starts each follower at its stored position
  /// (a file not seen before at its end, like tail -F) and starts the reader thread. Throws
  /// std::exception with the reason when the database cannot be used; a missing log file is
  /// waited for.
  void open(time_point now);

  /// On the engine's thread, from the daemon's housekeeping timer: feeds up to
  /// max_events_per_poll queued events to `engine` through count_delivery(). Never throws.
  void poll(decision::engine& engine, time_point now);

  /// A reload: ingest.poll_interval applies to the reader's next wait. The other keys apply on
  /// restart (settings table).
  void reconfigure(const ingest_settings& settings);

  /// The positions the events fed so far reach, for those that moved since the last call:
  /// hand them to the writer with the engine's records (persistence.pump()).
  std::vector<store::followed_position> take_positions();

  /// Stops and joins the reader thread. Events still queued are not fed; their lines are read
  /// again at the next start. Then take_positions() for the final hand-over.
  void stop();

  mail_log_service_stats stats() const;

 private:
  /// A batch of events, and the positions the followers reached once they are all fed.
  struct batch {
    std::vector<ingest::message_event> events;
    std::vector<std::pair<std::size_t, ingest::follow_position>> positions;
  };

  void read_round();
  /// Stops the reader thread, also when it waits for queue space.
  void halt_reader();
  /// Queues `b`, waiting while the queue is full; false when stopping (b is dropped).
  bool push(batch&& b);

  const std::string database_;
  const std::shared_ptr<spdlog::logger> log_;

  // Reader thread only, after open().
  std::vector<std::unique_ptr<ingest::follower>> followers_;
  std::unique_ptr<mail_log_reader> reader_;

  const ingest_settings settings_;  ///< as at start; a reload changes only the worker's interval

  mutable std::mutex mutex_;       ///< guards the members down to stats_
  std::condition_variable space_;  ///< the reader: the queue has room again
  bool stopping_ = false;
  std::deque<batch> queue_;
  std::size_t queued_events_ = 0;
  mail_log_service_stats stats_;  ///< the reader's counts; the feeding counts are below

  // Engine thread only.
  std::vector<std::optional<ingest::follow_position>> fed_;     ///< after the events fed
  std::vector<std::optional<ingest::follow_position>> handed_;  ///< last taken
  delivery_counts fed_counts_;
  std::uint64_t stale_events_ = 0;
  std::uint64_t future_events_ = 0;
  std::uint64_t stale_logged_ = 0;  ///< stale_events_ when last logged
  std::optional<time_point> stale_log_time_;

  /// Last member: the reader thread is joined before the members it uses go.
  periodic_worker worker_;
};

}  // namespace rcptguard::daemon
