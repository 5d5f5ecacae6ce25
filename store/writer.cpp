// The store thread's loop: wait, take what was merged, write it in one transaction, retry on
// failure with whatever arrived meanwhile, run the other jobs, prune in bounded steps.
#include "store/writer.hpp"

#include <SQLiteCpp/Exception.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

namespace rcptguard::store {
namespace {

using steady = std::chrono::steady_clock;

// True when the data itself makes the transaction fail, so retrying it can never succeed.
bool caused_by_data(const SQLite::Exception& e) {
  switch (e.getErrorCode() & 0xff) {
    case SQLITE_CONSTRAINT:
    case SQLITE_TOOBIG:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
      return true;
    default:
      return false;
  }
}

}  // namespace

writer::writer(std::unique_ptr<store> db, writer_options options, log_function log,
               clock_function clock)
    : options_(options),
      wake_records_(std::max<std::size_t>(1, options_.max_pending_keys / 4)),
      fold_mark_(wake_records_),
      log_(std::move(log)),
      clock_(std::move(clock)),
      store_(std::move(db)),
      held_(options_.max_pending_keys),
      next_prune_(clock_()),  // prune once at start: the daemon may have been down for long
      building_(options_.max_pending_keys),
      folder_([this] { fold(); }),
      thread_([this] { run(); }) {}

writer::~writer() {
  stop();
}

bool writer::submit(decision::outbox&& batch, const std::vector<followed_position>& positions) {
  const std::size_t n = batch.deliveries.size() + batch.verdicts.size() + batch.episodes.size() +
                        batch.cluster_hours.size();
  if (n == 0 && positions.empty()) return true;
  arrival a{std::move(batch), positions, to_unix_seconds(clock_()), n};
  std::unique_lock lock(mu_);
  if (closed_) {
    lock.unlock();
    records_dropped_.fetch_add(n, std::memory_order_relaxed);
    return false;
  }
  incoming_.push_back(std::move(a));
  const bool fold_now = unfolded_records_ < fold_mark_ && unfolded_records_ + n >= fold_mark_;
  unfolded_records_ += n;
  const std::size_t before = incoming_records_;
  incoming_records_ += n;
  queue_depth_.store(incoming_records_ + held_keys_, std::memory_order_relaxed);
  // Only the submit that crosses the mark wakes the thread, or the first since the thread took
  // the last ones (it may be due: see run()); the rest ride along.
  const bool wake = (incoming_records_ >= wake_records_ && before < wake_records_) ||
                    (before == 0 && incoming_records_ > 0);
  lock.unlock();
  records_queued_.fetch_add(n, std::memory_order_relaxed);
  if (fold_now) fold_wake_.notify_one();
  if (wake) wake_.notify_one();
  return true;
}

bool writer::submit(database_job job) {
  {
    std::lock_guard lock(mu_);
    if (closed_) return false;
    jobs_.push_back(std::move(job));
  }
  wake_.notify_one();
  return true;
}

void writer::stop() {
  // Nothing new from here; the folding thread ends, then the writer folds and writes it all.
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  fold_wake_.notify_one();
  if (folder_.joinable()) folder_.join();
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

writer_stats writer::stats() const {
  writer_stats s;
  s.records_queued = records_queued_.load(std::memory_order_relaxed);
  s.records_written = records_written_.load(std::memory_order_relaxed);
  s.records_dropped = records_dropped_.load(std::memory_order_relaxed);
  s.records_lost_at_stop = records_lost_at_stop_.load(std::memory_order_relaxed);
  s.jobs_lost_at_stop = jobs_lost_at_stop_.load(std::memory_order_relaxed);
  s.write_failures = write_failures_.load(std::memory_order_relaxed);
  s.prune_failures = prune_failures_.load(std::memory_order_relaxed);
  s.rows_pruned = rows_pruned_.load(std::memory_order_relaxed);
  s.rows_written = rows_written_.load(std::memory_order_relaxed);
  s.keys_folded = keys_folded_.load(std::memory_order_relaxed);
  s.flushes = flushes_.load(std::memory_order_relaxed);
  s.jobs_done = jobs_done_.load(std::memory_order_relaxed);
  s.queue_depth = queue_depth_.load(std::memory_order_relaxed);
  s.last_flush_duration = std::chrono::microseconds{last_flush_us_.load(std::memory_order_relaxed)};
  s.max_flush_duration = std::chrono::microseconds{max_flush_us_.load(std::memory_order_relaxed)};
  {
    std::lock_guard lock(mu_);
    s.records_unfolded = unfolded_records_;
  }
  std::lock_guard lock(error_mu_);
  s.last_error = last_error_;
  return s;
}

// Folds what submit() queued into building_: the writer's thread before each transaction, and
// the folding thread while the writer is inside a long one (or waits out a backoff) once the
// backlog reaches fold_mark_. building_mu_ is held for the whole pass, so the two never fold at
// once, and whatever a pass took is in building_ when another thread gets the lock.
void writer::fold_pending() {
  const std::lock_guard building(building_mu_);
  std::deque<arrival> taken;
  {
    const std::lock_guard lock(mu_);
    taken.swap(incoming_);
  }
  if (taken.empty()) return;
  std::size_t records = 0;
  const std::uint64_t folded = building_.folded();
  for (arrival& a : taken) {
    building_.add(a.batch, explanations_);
    for (const followed_position& p : a.positions) {
      building_.set_log_position(p.path, p.device, p.inode, p.offset, a.saved_at);
    }
    records += a.records;
  }
  building_records_ += records;
  keys_folded_.fetch_add(building_.folded() - folded, std::memory_order_relaxed);
  const std::lock_guard lock(mu_);
  unfolded_records_ -= std::min(unfolded_records_, records);
}

// The folding thread: idle while the writer keeps up (it folds before each transaction, on the
// same core as before); it folds only when a backlog of fold_mark_ records built up, i.e. while
// a transaction or a backoff lasts, so memory follows the keys, not a transaction's length
// times the request rate.
void writer::fold() {
  // The store's background work, niced like the writer (see run()).
  if (options_.nice != 0) ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), options_.nice);
  for (;;) {
    {
      std::unique_lock lock(mu_);
      fold_wake_.wait(lock, [&] { return unfolded_records_ >= fold_mark_ || closed_; });
      if (closed_) return;  // the writer folds the rest before its last transaction
    }
    fold_pending();
  }
}

// The writer thread takes everything submitted until now for the next transaction (merged into
// a held one that is being retried).
void writer::take_folded() {
  fold_pending();
  std::size_t records = 0;
  {
    const std::lock_guard lock(building_mu_);
    if (building_.empty()) return;
    if (held_.empty()) {
      std::swap(held_, building_);
    } else {
      held_.merge(std::move(building_));
      building_.clear();
    }
    records = building_records_;
    building_records_ = 0;
  }
  const std::lock_guard lock(mu_);
  incoming_records_ -= std::min(incoming_records_, records);
  held_keys_ = held_.keys();
  queue_depth_.store(incoming_records_ + held_keys_, std::memory_order_relaxed);
}

void writer::run() {
  // Optionally below the network thread: where they share a core, a reply then waits only for
  // the scheduler's shorter slice of a niced thread. Not by default, because nice is relative
  // to every process on the host: beside busy content filters a niced writer is starved and
  // falls minutes behind. Linux gives each thread its own nice value; failure (a sandbox) only
  // leaves the default.
  if (options_.nice != 0) ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), options_.nice);
  std::chrono::milliseconds backoff{0};
  bool stop_seen = false;
  bool prune_more = false;
  steady::time_point stop_deadline{};
  for (;;) {
    std::chrono::milliseconds wait = backoff.count() > 0 ? backoff : options_.flush_interval;
    if (prune_more && backoff.count() == 0) wait = std::chrono::milliseconds{0};
    const steady::time_point deadline = steady::now() + wait;
    // The daemon hands records over on its own tick of flush_interval, so waiting out another
    // interval here would keep them in memory for up to twice flush_interval (what a kill -9
    // loses). Records are written as they arrive instead, once half an interval has passed since
    // the last write began (half: neither tick is exact), so transactions stay that far apart.
    const steady::time_point due = last_write_started_ + options_.flush_interval / 2;
    for (;;) {
      bool write_now = false;
      {
        std::unique_lock lock(mu_);
        const auto ready = [&] {
          return backoff.count() == 0 && (incoming_records_ >= wake_records_ || !jobs_.empty() ||
                                          (incoming_records_ > 0 && steady::now() >= due));
        };
        // A backoff is not cut short by arrivals (they are merged meanwhile); a stop request
        // always ends the wait.
        wake_.wait_until(lock, deadline, [&] {
          return stopping_ != stop_seen || incoming_records_ >= wake_records_ || ready();
        });
        if (stopping_ && !stop_seen) {
          stop_seen = true;
          stop_deadline = steady::now() + options_.stop_timeout;
        }
        write_now = stop_seen || steady::now() >= deadline || ready();
      }
      if (write_now) break;
    }
    take_folded();

    const bool written = held_.empty() || write_held();
    if (written) run_jobs();
    backoff = written && jobs_idle()
                  ? std::chrono::milliseconds{0}
                  : std::min(std::max(backoff * 2, options_.retry_initial), options_.retry_max);
    if (written && !stop_seen) maybe_prune(prune_more);

    if (stop_seen) {
      // The folding thread ended before stopping_ was set: nothing new arrives.
      take_folded();
      if (held_.empty() && jobs_idle()) return;
      const steady::time_point now = steady::now();
      if (now >= stop_deadline) {
        give_up_at_stop();
        return;
      }
      backoff =
          std::min(backoff, std::chrono::ceil<std::chrono::milliseconds>(stop_deadline - now));
    }
  }
}

bool writer::jobs_idle() const {
  std::lock_guard lock(mu_);
  return jobs_.empty();
}

bool writer::write_held() {
  const steady::time_point started = steady::now();
  last_write_started_ = started;
  const std::uint64_t rows_before = store_->rows_written();
  try {
    store_->apply(held_);
  } catch (const SQLite::Exception& e) {
    if (caused_by_data(e)) {
      drop_held(std::string{"the data cannot be stored: "} + e.what());
      return true;
    }
    write_failures_.fetch_add(1, std::memory_order_relaxed);
    ++consecutive_failures_;
    last_write_failure_ =
        std::string{e.what()} + " (sqlite code " + std::to_string(e.getExtendedErrorCode()) + ")";
    record_error(log_level::error, "STORE WRITE FAILED: " + last_write_failure_ + "; " +
                                       std::to_string(held_.records()) +
                                       " records held for retry, failure " +
                                       std::to_string(consecutive_failures_) + " in a row");
    return false;
  } catch (const std::exception& e) {
    drop_held(std::string{"the data cannot be stored: "} + e.what());
    return true;
  }
  const auto took =
      std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - started).count();
  last_flush_us_.store(took, std::memory_order_relaxed);
  if (took > max_flush_us_.load(std::memory_order_relaxed)) {
    max_flush_us_.store(took, std::memory_order_relaxed);
  }
  flushes_.fetch_add(1, std::memory_order_relaxed);
  records_written_.fetch_add(held_.records(), std::memory_order_relaxed);
  rows_written_.fetch_add(store_->rows_written() - rows_before, std::memory_order_relaxed);
  if (consecutive_failures_ > 0 && log_) {
    log_(log_level::info, "STORE WRITE RECOVERED after " + std::to_string(consecutive_failures_) +
                              " failed attempts; " + std::to_string(held_.records()) +
                              " held records written");
  }
  consecutive_failures_ = 0;
  forget_held();
  return true;
}

// Jobs run one by one after the records; one that fails for a reason outside its data stays
// first in line and is tried again after the backoff.
void writer::run_jobs() {
  for (;;) {
    database_job job;
    {
      std::lock_guard lock(mu_);
      if (jobs_.empty()) return;
      job = jobs_.front();
    }
    bool committed = true;
    try {
      job.run(store_->database());
    } catch (const SQLite::Exception& e) {
      if (!caused_by_data(e)) {
        write_failures_.fetch_add(1, std::memory_order_relaxed);
        last_write_failure_ = std::string{e.what()} + " (sqlite code " +
                              std::to_string(e.getExtendedErrorCode()) + ")";
        record_error(log_level::error,
                     "STORE WRITE FAILED (spool scan): " + std::string{e.what()} + "; retried");
        return;
      }
      committed = false;
      record_error(log_level::error, "STORE SPOOL SCAN DROPPED: " + std::string{e.what()});
    } catch (const std::exception& e) {
      committed = false;
      record_error(log_level::error, "STORE SPOOL SCAN DROPPED: " + std::string{e.what()});
    }
    {
      std::lock_guard lock(mu_);
      jobs_.pop_front();
    }
    if (committed) jobs_done_.fetch_add(1, std::memory_order_relaxed);
    if (job.done) job.done(committed);
  }
}

void writer::forget_held() {
  held_.clear();
  std::lock_guard lock(mu_);
  held_keys_ = 0;
  queue_depth_.store(incoming_records_, std::memory_order_relaxed);
}

void writer::drop_held(const std::string& why) {
  records_dropped_.fetch_add(held_.records(), std::memory_order_relaxed);
  record_error(log_level::error,
               "STORE BATCH DROPPED: " + std::to_string(held_.records()) + " records: " + why);
  consecutive_failures_ = 0;
  forget_held();
}

// The one place a shutdown loses data: the database kept failing for all of stop_timeout. One
// line says how much and why, whatever was held (records, spool scans), so an operator finds it
// next to the daemon's non-zero exit status instead of piecing it together from retries.
void writer::give_up_at_stop() {
  const std::uint64_t records = held_.records();
  std::size_t jobs = 0;
  {
    std::lock_guard lock(mu_);
    jobs = jobs_.size();
    // Their done() callbacks are not run: their owners are shutting down too.
    jobs_.clear();
  }
  records_dropped_.fetch_add(records, std::memory_order_relaxed);
  records_lost_at_stop_.fetch_add(records, std::memory_order_relaxed);
  jobs_lost_at_stop_.fetch_add(jobs, std::memory_order_relaxed);
  std::string text = "STORE LOST " + std::to_string(records) + " records";
  if (jobs > 0) text += " and " + std::to_string(jobs) + " spool scan results";
  text += " at shutdown: the database stayed unwritable for stop_timeout (" +
          std::to_string(options_.stop_timeout.count()) + " ms); last failure: " +
          (last_write_failure_.empty() ? std::string{"none recorded"} : last_write_failure_);
  record_error(log_level::error, text);
  consecutive_failures_ = 0;
  forget_held();
}

void writer::maybe_prune(bool& more) {
  const time_point now = clock_();
  if (!more && now < next_prune_) return;
  try {
    const prune_result result = store_->prune(now, options_.retention, options_.spool_retention);
    rows_pruned_.fetch_add(result.rows_deleted, std::memory_order_relaxed);
    prune_round_rows_ += result.rows_deleted;
    more = !result.complete;
    if (more) return;
    if (prune_round_rows_ > 0 && log_) {
      log_(log_level::info, "STORE PRUNED " + std::to_string(prune_round_rows_) + " rows");
    }
  } catch (const std::exception& e) {
    prune_failures_.fetch_add(1, std::memory_order_relaxed);
    more = false;
    record_error(log_level::warning, "STORE PRUNE FAILED: " + std::string{e.what()} +
                                         "; next attempt in one prune interval");
  }
  prune_round_rows_ = 0;
  next_prune_ = now + options_.prune_interval;
}

void writer::record_error(log_level level, const std::string& text) {
  {
    std::lock_guard lock(error_mu_);
    last_error_ = text;
  }
  if (log_) log_(level, text);
}

}  // namespace rcptguard::store
