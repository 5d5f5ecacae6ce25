// The store thread: the one owner of the database's writes. It takes the engine's outboxes
// from the network thread, aggregated (store/delta.hpp), and writes them in batched
// transactions, so the network thread never waits on SQLite.
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
#include <vector>

#include "common/time.hpp"
#include "decision/events.hpp"
#include "store/delta.hpp"
#include "store/store.hpp"

namespace rcptguard::store {

enum class log_level : std::uint8_t { info, warning, error };

/// Called from the writer thread; must be thread-safe (an spdlog logger is).
using log_function = std::function<void(log_level, std::string)>;
/// Wall-clock time for pruning; injected so tests can move it.
using clock_function = std::function<time_point()>;

struct writer_options {
  /// Keys (names, recipient-minutes, distinct-sender keys, correspondent pairs, flagged keys)
  /// held for writing at most while the database is slow. Beyond it, new distinct-sender and
  /// pair keys and the sender and client of new flagged keys are folded and counted
  /// (writer_stats::keys_folded); the counts themselves are never folded or dropped.
  std::size_t max_pending_keys = 2'000'000;
  /// Longest a record waits before it is written; a quarter of max_pending_keys records
  /// arriving wakes the writer sooner.
  std::chrono::milliseconds flush_interval{1000};
  /// Backoff after a failed write, doubling up to retry_max.
  std::chrono::milliseconds retry_initial{100};
  std::chrono::milliseconds retry_max{5000};
  std::chrono::seconds prune_interval{std::chrono::hours{1}};
  /// How long hourly history, verdicts, episodes and correspondents are kept.
  std::chrono::seconds retention{std::chrono::days{90}};
  /// Spool rows (scan state, messages, attachments, evidence) are kept this long.
  std::chrono::seconds spool_retention{std::chrono::hours{24}};
  /// How long stop() keeps retrying a failing database before it gives up on what is held.
  std::chrono::milliseconds stop_timeout{10'000};
  /// The writer's and the folding thread's nice value; 0 shares the CPU equally with the
  /// network thread.
  int nice = 0;
};

struct writer_stats {
  std::uint64_t records_queued = 0;   ///< engine records submitted
  std::uint64_t records_written = 0;  ///< engine records whose aggregate is committed
  /// Engine records lost: only a batch the database refuses for its content (a constraint), or
  /// what was still held when stop_timeout ran out. Never because the writer was slow.
  std::uint64_t records_dropped = 0;
  /// Of records_dropped, those still held when stop_timeout ran out: the data a shutdown lost,
  /// which the daemon reports in its exit status.
  std::uint64_t records_lost_at_stop = 0;
  /// Spool-scan jobs still waiting when stop_timeout ran out; their rows were never written.
  std::uint64_t jobs_lost_at_stop = 0;
  std::uint64_t rows_written = 0;    ///< rows upserted for them
  std::uint64_t write_failures = 0;  ///< failed transactions, each retried
  std::uint64_t prune_failures = 0;
  std::uint64_t rows_pruned = 0;
  std::uint64_t keys_folded = 0;  ///< see writer_options::max_pending_keys
  std::uint64_t flushes = 0;      ///< committed transactions
  std::uint64_t jobs_done = 0;    ///< other work committed (spool scans)
  std::size_t queue_depth = 0;    ///< keys waiting or held for retry
  /// Records submitted and not yet folded: below a quarter of max_pending_keys (plus one
  /// batch) even while a transaction or a backoff lasts.
  std::size_t records_unfolded = 0;
  std::chrono::microseconds last_flush_duration{0};
  std::chrono::microseconds max_flush_duration{0};
  std::string last_error;
};

/// Work for the writer's connection beside the engine's records (a spool scan's rows), run in
/// its own transaction. Throws SQLite::Exception; `done` is called on the writer thread once it
/// committed (or was refused for its content: `done(false)`).
struct database_job {
  std::function<void(SQLite::Database&)> run;
  std::function<void(bool committed)> done;
};

/// Owns the database on its own thread: every write of the daemon goes through it.
///
/// Aggregation: submit() only hands a batch over; the writer's thread folds what arrived into
/// the delta (store/delta.hpp) before each transaction, and while it is inside a long
/// transaction or waits out a backoff a folding thread folds the backlog each time it reaches a
/// quarter of max_pending_keys records. So a slow or locked database makes the next transaction
/// bigger, not the queue longer, memory follows the active keys (store.max_pending_keys bounds
/// the identities) plus at most that backlog, and nothing is dropped for slowness. Episode
/// records keep the engine's order. The delta being built and the explanation filter are folded
/// under building_mu_ by either thread; the writer's thread owns the database and the delta
/// being written.
///
/// Failures: a transaction that fails for a reason outside the data (busy, locked, read-only,
/// disk full, I/O) is kept and retried with capped exponential backoff, with whatever arrived
/// meanwhile merged in. A failure caused by the data itself (constraint, too big) would fail
/// forever, so that batch is logged, counted and dropped. stop() retries for at most
/// stop_timeout, then logs one "STORE LOST N records at shutdown" line and counts the loss
/// (writer_stats::records_lost_at_stop).
class writer {
 public:
  writer(std::unique_ptr<store> db, writer_options options, log_function log, clock_function clock);
  writer(const writer&) = delete;
  writer& operator=(const writer&) = delete;
  ~writer();

  /// Never blocks on SQLite, and does O(1) work under the writer's lock: hands over the batch
  /// and the followed-log positions its records take the logs to, which the next transaction
  /// writes together. Returns false, dropping this batch, only after stop().
  bool submit(decision::outbox&& batch, const std::vector<followed_position>& positions = {});

  /// Queues `job` for the writer's thread; false after stop().
  bool submit(database_job job);

  /// Writes everything queued (retrying for at most stop_timeout), then joins the thread.
  /// Call from the owning thread; later submits return false.
  void stop();

  writer_stats stats() const;

 private:
  void run();
  void fold();
  void fold_pending();
  void take_folded();
  bool write_held();
  void run_jobs();
  bool jobs_idle() const;
  void forget_held();
  void drop_held(const std::string& why);
  void give_up_at_stop();
  void maybe_prune(bool& more);
  void record_error(log_level level, const std::string& text);

  const writer_options options_;
  const std::size_t wake_records_;
  const std::size_t fold_mark_;  ///< unfolded records that wake the folding thread
  log_function log_;
  clock_function clock_;
  std::unique_ptr<store> store_;

  /// One submit(): the engine's records and the log positions they take the logs to.
  struct arrival {
    decision::outbox batch;
    std::vector<followed_position> positions;
    std::int64_t saved_at = 0;
    std::size_t records = 0;
  };

  // Only O(1) work happens under mu_: submit() pushes, the folding thread swaps.
  mutable std::mutex mu_;
  std::condition_variable wake_;       ///< the writer thread's
  std::condition_variable fold_wake_;  ///< the folding thread's
  std::deque<arrival> incoming_;
  std::size_t incoming_records_ = 0;  ///< submitted, not yet taken by the writer thread
  std::size_t unfolded_records_ = 0;  ///< submitted, not yet folded
  std::deque<database_job> jobs_;
  bool closed_ = false;    ///< stop() began: submits are refused, the folding thread drains
  bool stopping_ = false;  ///< the folding thread ended: the writer writes what is left

  std::size_t held_keys_ = 0;  ///< held_.keys(), for queue_depth; guarded by mu_

  // Writer-thread state.
  delta held_;  ///< the next (or a retried) transaction, taken from the folding thread
  std::uint64_t consecutive_failures_ = 0;
  std::string last_write_failure_;  ///< why the last write failed, for the shutdown loss line
  /// When the last transaction of records began; records arriving half a flush_interval after
  /// it are written at once (see run()).
  std::chrono::steady_clock::time_point last_write_started_ = std::chrono::steady_clock::now();
  time_point next_prune_;
  std::uint64_t prune_round_rows_ = 0;  ///< a prune round may span several bounded calls

  std::atomic<std::uint64_t> records_queued_{0};
  std::atomic<std::uint64_t> records_written_{0};
  std::atomic<std::uint64_t> records_dropped_{0};
  std::atomic<std::uint64_t> records_lost_at_stop_{0};
  std::atomic<std::uint64_t> jobs_lost_at_stop_{0};
  std::atomic<std::uint64_t> rows_written_{0};
  std::atomic<std::uint64_t> write_failures_{0};
  std::atomic<std::uint64_t> prune_failures_{0};
  std::atomic<std::uint64_t> rows_pruned_{0};
  std::atomic<std::uint64_t> keys_folded_{0};
  std::atomic<std::uint64_t> flushes_{0};
  std::atomic<std::uint64_t> jobs_done_{0};
  std::atomic<std::size_t> queue_depth_{0};
  std::atomic<std::int64_t> last_flush_us_{0};
  std::atomic<std::int64_t> max_flush_us_{0};
  mutable std::mutex error_mu_;
  std::string last_error_;

  // The delta being built, folded into under building_mu_ (taken before mu_ when both are).
  std::mutex building_mu_;
  delta building_;
  std::size_t building_records_ = 0;
  explanation_filter explanations_;

  std::thread folder_;  // last two: start after every member above is initialised
  std::thread thread_;
};

}  // namespace rcptguard::store
