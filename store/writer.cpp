// The store thread's loop: wait, take the queue, write it in one transaction, retry on failure,
// prune in bounded steps.
#include "store/writer.hpp"

#include <SQLiteCpp/Exception.h>
#include <sqlite3.h>

#include <algorithm>
#include <iterator>
#include <utility>
#include <vector>

namespace rcptguard::store {
namespace {

using steady = std::chrono::steady_clock;

std::size_t record_count(const decision::outbox& batch) {
  return batch.deliveries.size() + batch.verdicts.size() + batch.episodes.size();
}

template <class T>
void append(std::vector<T>& to, std::vector<T>&& from) {
  if (to.empty()) {
    to = std::move(from);
    return;
  }
  to.insert(to.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
}

// Appending keeps the engine's order, which episode upserts rely on.
void append(decision::outbox& to, decision::outbox&& from) {
  append(to.deliveries, std::move(from.deliveries));
  append(to.verdicts, std::move(from.verdicts));
  append(to.episodes, std::move(from.episodes));
}

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
      wake_records_(std::max<std::size_t>(1, options_.queue_capacity / 2)),
      log_(std::move(log)),
      clock_(std::move(clock)),
      store_(std::move(db)),
      next_prune_(clock_()),  // prune once at start: the daemon may have been down for long
      thread_([this] { run(); }) {}

writer::~writer() {
  stop();
}

bool writer::submit(decision::outbox&& batch) {
  const std::size_t n = record_count(batch);
  if (n == 0) return true;
  std::unique_lock lock(mu_);
  if (stopping_ || pending_records_ + held_records_ + n > options_.queue_capacity) {
    lock.unlock();
    records_dropped_.fetch_add(n, std::memory_order_relaxed);
    batch.clear();
    return false;
  }
  pending_.push_back(std::move(batch));
  pending_records_ += n;
  queue_depth_.store(pending_records_ + held_records_, std::memory_order_relaxed);
  // Only the submit that crosses the mark wakes the thread; the rest ride along.
  const bool wake = pending_records_ >= wake_records_ && pending_records_ - n < wake_records_;
  lock.unlock();
  records_queued_.fetch_add(n, std::memory_order_relaxed);
  if (wake) wake_.notify_one();
  return true;
}

void writer::stop() {
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
  s.write_failures = write_failures_.load(std::memory_order_relaxed);
  s.prune_failures = prune_failures_.load(std::memory_order_relaxed);
  s.rows_pruned = rows_pruned_.load(std::memory_order_relaxed);
  s.queue_depth = queue_depth_.load(std::memory_order_relaxed);
  s.last_flush_duration = std::chrono::microseconds{last_flush_us_.load(std::memory_order_relaxed)};
  std::lock_guard lock(error_mu_);
  s.last_error = last_error_;
  return s;
}

void writer::run() {
  std::chrono::milliseconds backoff{0};
  bool stop_seen = false;
  bool prune_more = false;
  steady::time_point stop_deadline{};
  for (;;) {
    std::deque<decision::outbox> taken;
    {
      std::unique_lock lock(mu_);
      std::chrono::milliseconds wait = backoff.count() > 0 ? backoff : options_.flush_interval;
      if (prune_more && backoff.count() == 0) wait = std::chrono::milliseconds{0};
      // During a backoff a full queue must not cut the pause short; a stop request always does.
      wake_.wait_for(lock, wait, [&] {
        return stopping_ != stop_seen ||
               (backoff.count() == 0 && pending_records_ >= wake_records_);
      });
      if (stopping_ && !stop_seen) {
        stop_seen = true;
        stop_deadline = steady::now() + options_.stop_timeout;
      }
      taken.swap(pending_);
      held_records_ += pending_records_;
      pending_records_ = 0;
    }
    for (decision::outbox& batch : taken) append(held_, std::move(batch));

    const bool written = held_.empty() || write_held();
    backoff = written ? std::chrono::milliseconds{0}
                      : std::min(std::max(backoff * 2, options_.retry_initial), options_.retry_max);
    if (written && !stop_seen) maybe_prune(prune_more);

    if (stop_seen) {
      // submit() refuses once stopping_ is set, so after this swap nothing new can arrive.
      if (held_.empty()) return;
      const steady::time_point now = steady::now();
      if (now >= stop_deadline) {
        drop_held("stop_timeout reached while the database kept failing");
        return;
      }
      backoff =
          std::min(backoff, std::chrono::ceil<std::chrono::milliseconds>(stop_deadline - now));
    }
  }
}

bool writer::write_held() {
  const steady::time_point started = steady::now();
  try {
    store_->apply(held_);
  } catch (const SQLite::Exception& e) {
    if (caused_by_data(e)) {
      drop_held(std::string{"the data cannot be stored: "} + e.what());
      return true;
    }
    write_failures_.fetch_add(1, std::memory_order_relaxed);
    ++consecutive_failures_;
    record_error(log_level::error, "STORE WRITE FAILED: " + std::string{e.what()} +
                                       " (sqlite code " + std::to_string(e.getExtendedErrorCode()) +
                                       "); " + std::to_string(held_records_) +
                                       " records held for retry, failure " +
                                       std::to_string(consecutive_failures_) + " in a row");
    return false;
  } catch (const std::exception& e) {
    drop_held(std::string{"the data cannot be stored: "} + e.what());
    return true;
  }
  last_flush_us_.store(
      std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - started).count(),
      std::memory_order_relaxed);
  records_written_.fetch_add(held_records_, std::memory_order_relaxed);
  if (consecutive_failures_ > 0 && log_) {
    log_(log_level::info, "STORE WRITE RECOVERED after " + std::to_string(consecutive_failures_) +
                              " failed attempts; " + std::to_string(held_records_) +
                              " held records written");
  }
  consecutive_failures_ = 0;
  held_ = {};
  std::lock_guard lock(mu_);
  held_records_ = 0;
  queue_depth_.store(pending_records_, std::memory_order_relaxed);
  return true;
}

void writer::drop_held(const std::string& why) {
  records_dropped_.fetch_add(held_records_, std::memory_order_relaxed);
  record_error(log_level::error,
               "STORE BATCH DROPPED: " + std::to_string(held_records_) + " records: " + why);
  consecutive_failures_ = 0;
  held_ = {};
  std::lock_guard lock(mu_);
  held_records_ = 0;
  queue_depth_.store(pending_records_, std::memory_order_relaxed);
}

void writer::maybe_prune(bool& more) {
  const time_point now = clock_();
  if (!more && now < next_prune_) return;
  try {
    const prune_result result = store_->prune(now, options_.retention);
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
