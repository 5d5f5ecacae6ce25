// The store thread: takes the engine's outboxes from the network thread through a bounded queue
// and writes them in batched transactions, so the network thread never waits on SQLite.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/time.hpp"
#include "decision/events.hpp"
#include "store/store.hpp"

namespace rcptguard::store {

enum class log_level : std::uint8_t { info, warning, error };

/// Called from the writer thread; must be thread-safe (an spdlog logger is).
using log_function = std::function<void(log_level, std::string)>;
/// Wall-clock time for pruning; injected so tests can move it.
using clock_function = std::function<time_point()>;

struct writer_options {
  /// Records (deliveries + verdicts + episodes) queued or being retried, at most.
  std::size_t queue_capacity = 100'000;
  /// Longest a record waits before it is written; a queue past half capacity is written sooner.
  std::chrono::milliseconds flush_interval{1000};
  /// Backoff after a failed write, doubling up to retry_max.
  std::chrono::milliseconds retry_initial{100};
  std::chrono::milliseconds retry_max{5000};
  std::chrono::seconds prune_interval{std::chrono::hours{1}};
  /// How long hourly history, verdicts, episodes and correspondents are kept.
  std::chrono::seconds retention{std::chrono::days{90}};
  /// How long stop() keeps retrying a failing database before it gives up on what is queued.
  std::chrono::milliseconds stop_timeout{10'000};
};

struct writer_stats {
  std::uint64_t records_queued = 0;   ///< accepted by submit()
  std::uint64_t records_written = 0;  ///< committed to the database
  std::uint64_t records_dropped = 0;  ///< refused by a full queue, or lost (see writer)
  std::uint64_t write_failures = 0;   ///< failed transactions, each retried
  std::uint64_t prune_failures = 0;
  std::uint64_t rows_pruned = 0;
  std::size_t queue_depth = 0;  ///< records queued or held for retry
  std::chrono::microseconds last_flush_duration{0};
  std::string last_error;
};

/// Owns a store on its own thread.
///
/// Overflow: when a batch does not fit, submit() drops that (newest) batch whole. The queue then
/// stays an unbroken prefix of what the engine produced, so episode updates are applied in
/// order, and what was already accepted is never thrown away to make room.
///
/// Failures: a transaction that fails for a reason outside the data (busy, locked, read-only,
/// disk full, I/O) is kept and retried with capped exponential backoff; its records keep
/// counting against the capacity, so a long outage ends in drops at submit(), never in losing
/// queued records. A failure caused by the data itself (constraint, too big) would fail forever,
/// so that batch is logged and dropped. stop() retries for at most stop_timeout.
class writer {
 public:
  writer(std::unique_ptr<store> db, writer_options options, log_function log, clock_function clock);
  writer(const writer&) = delete;
  writer& operator=(const writer&) = delete;
  ~writer();

  /// Never blocks on SQLite: takes the batch, or returns false and counts its records as dropped
  /// when the queue is full or the writer is stopping. The batch is consumed either way.
  bool submit(decision::outbox&& batch);

  /// Writes everything queued (retrying for at most stop_timeout), then joins the thread.
  /// Call from the owning thread; later submits return false.
  void stop();

  writer_stats stats() const;

 private:
  void run();
  bool write_held();
  void drop_held(const std::string& why);
  void maybe_prune(bool& more);
  void record_error(log_level level, const std::string& text);

  const writer_options options_;
  const std::size_t wake_records_;
  log_function log_;
  clock_function clock_;
  std::unique_ptr<store> store_;

  // Only O(1) work happens under mu_, so submit() waits at most for a deque push or swap.
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<decision::outbox> pending_;
  std::size_t pending_records_ = 0;
  std::size_t held_records_ = 0;  ///< taken by the thread, not yet committed
  bool stopping_ = false;

  // Writer-thread state.
  decision::outbox held_;  ///< batches merged for the next (or a retried) transaction
  std::uint64_t consecutive_failures_ = 0;
  time_point next_prune_;
  std::uint64_t prune_round_rows_ = 0;  ///< a prune round may span several bounded calls

  std::atomic<std::uint64_t> records_queued_{0};
  std::atomic<std::uint64_t> records_written_{0};
  std::atomic<std::uint64_t> records_dropped_{0};
  std::atomic<std::uint64_t> write_failures_{0};
  std::atomic<std::uint64_t> prune_failures_{0};
  std::atomic<std::uint64_t> rows_pruned_{0};
  std::atomic<std::size_t> queue_depth_{0};
  std::atomic<std::int64_t> last_flush_us_{0};
  mutable std::mutex error_mu_;
  std::string last_error_;

  std::thread thread_;  // last: starts after every member above is initialised
};

}  // namespace rcptguard::store
