// The writer thread: flushing, the bounded queue, surviving a database that cannot be written,
// and pruning driven by an injected clock.
#include "store/writer.hpp"

#include <SQLiteCpp/Transaction.h>
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "store/schema.hpp"
#include "store_test_util.hpp"

namespace rcptguard::store {
namespace {

using namespace testing;  // NOLINT(google-build-using-namespace): the test helpers
using namespace std::chrono_literals;

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return condition();
}

/// Collects what the writer logs; the writer calls it from its own thread.
class log_sink {
 public:
  log_function function() {
    return [this](log_level, std::string line) {
      std::lock_guard lock(mu_);
      lines_.push_back(std::move(line));
    };
  }
  bool contains(const std::string& text) const { return count(text) > 0; }
  std::size_t count(const std::string& text) const {
    std::lock_guard lock(mu_);
    return static_cast<std::size_t>(std::ranges::count_if(
        lines_, [&](const std::string& line) { return line.find(text) != std::string::npos; }));
  }
  /// Every line, for a failure message.
  std::string text() const {
    std::lock_guard lock(mu_);
    std::string all;
    for (const std::string& line : lines_) all += line + "\n";
    return all;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

/// `n` accepted deliveries, one a second from `start`, from senders s<first_sender + i>@x.test.
decision::outbox deliveries(int n, std::int64_t start, const std::string& recipient,
                            int first_sender = 0) {
  decision::outbox b;
  for (int i = 0; i < n; ++i) {
    b.deliveries.push_back(
        delivery(start + i, recipient, "s" + std::to_string(first_sender + i) + "@x.test", true));
  }
  return b;
}

class WriterTest : public ::testing::Test {
 protected:
  std::unique_ptr<writer> make_writer(writer_options o,
                                      std::chrono::milliseconds busy_timeout = 20ms) {
    store_options so = options_for(path_);
    so.database.busy_timeout = busy_timeout;
    return std::make_unique<writer>(std::make_unique<store>(so), o, log_.function(),
                                    [this] { return at(clock_.load()); });
  }

  std::int64_t accepted_total() {
    return query_int(path_, "SELECT coalesce(sum(accepted), 0) FROM recipient_hourly");
  }

  temp_dir dir_;
  std::string path_ = dir_.file("rcptguard.db");
  log_sink log_;
  std::atomic<std::int64_t> clock_{t0};
};

TEST_F(WriterTest, StopFlushesEverythingSubmitted) {
  writer_options o;
  o.flush_interval = 1h;  // only stop() can have written it
  auto w = make_writer(o);
  for (int i = 0; i < 20; ++i)
    EXPECT_TRUE(w->submit(deliveries(3, t0 + i * 10, "bob@example.test")));
  decision::outbox v;
  v.verdicts = {verdict(t0, "bob@example.test")};
  v.episodes = {episode("bob@example.test", t0, t0, false, 2.0)};
  EXPECT_TRUE(w->submit(std::move(v)));
  w->stop();

  const writer_stats st = w->stats();
  EXPECT_EQ(st.records_queued, 62u);
  EXPECT_EQ(st.records_written, 62u);
  EXPECT_EQ(st.records_dropped, 0u);
  EXPECT_EQ(st.queue_depth, 0u);
  EXPECT_EQ(accepted_total(), 60);
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM flagged"), 1);
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM explanation"), 1);
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM explanation_reason"), 2);
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM episode"), 1);
  EXPECT_EQ(query_int(path_, "SELECT verdicts FROM v_alerts"), 1);
  EXPECT_EQ(st.flushes, 1u);  // everything merged into the one transaction of stop()
  // One row per key however many records: 20 batches over 200 s are 4 minute rows, plus 3
  // correspondent pairs, 1 flagged key, 1 explanation and 1 episode.
  EXPECT_EQ(st.rows_written, 4u + 3u + 1u + 1u + 1u);
  EXPECT_FALSE(w->submit(deliveries(1, t0, "late@example.test")));
}

TEST_F(WriterTest, FlushIntervalWritesWithoutStop) {
  writer_options o;
  o.flush_interval = 20ms;
  auto w = make_writer(o);
  EXPECT_TRUE(w->submit(deliveries(2, t0, "bob@example.test")));
  EXPECT_TRUE(eventually([&] { return w->stats().records_written == 2; }));
  EXPECT_EQ(accepted_total(), 2);
  EXPECT_GT(w->stats().last_flush_duration.count(), 0);
}

// The nice values of this process's threads, from /proc (field 19 of each task's stat file).
std::vector<int> thread_nice_values() {
  std::vector<int> values;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream in(task.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // The command name (field 2) may hold spaces; the fields after its closing ')' do not.
    std::istringstream rest(stat.substr(stat.rfind(')') + 2));
    std::string field;
    for (int n = 3; n <= 19 && rest >> field; ++n) {
      if (n == 19) values.push_back(std::stoi(field));
    }
  }
  return values;
}

TEST_F(WriterTest, TheStoreThreadsRunAtTheConfiguredNiceValue) {
  const std::vector<int> before = thread_nice_values();
  ASSERT_EQ(std::count(before.begin(), before.end(), 7), 0);
  writer_options o;
  o.nice = 7;
  auto w = make_writer(o);
  // The writer and the folding thread.
  EXPECT_TRUE(eventually([] {
    const std::vector<int> values = thread_nice_values();
    return std::count(values.begin(), values.end(), 7) == 2;
  }));
  w->stop();
  // By default the writer shares the CPU equally: nice is relative to every process on the
  // host, and a niced writer beside busy content filters falls minutes behind.
  auto plain = make_writer(writer_options{});
  EXPECT_TRUE(plain->submit(deliveries(1, t0, "bob@example.test")));
  EXPECT_TRUE(eventually([&] { return plain->stats().records_written == 1; }));
  const std::vector<int> values = thread_nice_values();
  const int own = ::getpriority(PRIO_PROCESS, 0);  // this thread's, as the test may run niced
  EXPECT_TRUE(std::all_of(values.begin(), values.end(), [own](int v) { return v == own; }));
}

TEST_F(WriterTest, ManyArrivingRecordsWakeTheWriterBeforeTheInterval) {
  writer_options o;
  o.max_pending_keys = 40;  // wakes at a quarter: 10 records
  o.flush_interval = 1h;
  auto w = make_writer(o);
  EXPECT_TRUE(w->submit(deliveries(4, t0, "bob@example.test")));
  EXPECT_TRUE(w->submit(deliveries(8, t0 + 600, "carol@example.test")));
  EXPECT_TRUE(eventually([&] { return w->stats().records_written == 12; }));
}

// A writer that cannot write merges what arrives: the counts of every request reach the
// database once it can, however much arrived, and nothing is dropped. Beyond
// max_pending_keys only the identity keys (distinct-sender keys, pairs, who a flagged request
// came from) fold, and are counted.
TEST_F(WriterTest, ALockedDatabaseMergesInsteadOfDropping) {
  writer_options o;
  o.max_pending_keys = 200;
  o.flush_interval = 10ms;
  o.retry_initial = 5ms;
  o.retry_max = 20ms;
  SQLite::Database locker(path_, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  auto w = make_writer(o);
  locker.exec("BEGIN EXCLUSIVE");  // nothing is written while the lock is held

  // 3,000 distinct senders, each delivery also flagged (the flood rcptguard exists for).
  for (int batch = 0; batch < 100; ++batch) {
    decision::outbox b = deliveries(30, t0 + batch * 30, "bob@example.test", batch * 30);
    for (const decision::delivery_record& d : b.deliveries) {
      decision::verdict_record v = verdict(to_unix_seconds(d.at), d.recipient);
      v.sender = d.sender;
      b.verdicts.push_back(std::move(v));
    }
    EXPECT_TRUE(w->submit(std::move(b)));
  }
  EXPECT_EQ(w->stats().records_dropped, 0u);
  EXPECT_EQ(w->stats().records_queued, 6000u);
  // 3,000 distinct senders against a bound of 200, folded on the writer's thread as they arrive.
  EXPECT_TRUE(eventually([&] { return w->stats().keys_folded > 0; }));
  EXPECT_GT(w->stats().queue_depth, 0u);
  EXPECT_TRUE(eventually([&] { return w->stats().write_failures > 0; }));
  EXPECT_EQ(w->stats().records_written, 0u);

  locker.exec("ROLLBACK");
  w->stop();
  const writer_stats st = w->stats();
  EXPECT_EQ(st.records_written, 6000u);
  EXPECT_EQ(st.records_dropped, 0u);
  EXPECT_EQ(st.queue_depth, 0u);
  EXPECT_EQ(accepted_total(), 3000);
  EXPECT_EQ(query_int(path_, "SELECT sum(attempted) FROM recipient_minute"), 3000);
  EXPECT_EQ(query_int(path_, "SELECT sum(attempted) FROM recipient_hourly"), 3000);
  EXPECT_EQ(query_int(path_, "SELECT sum(bytes) FROM recipient_hourly"), 3000 * 1000);
  // Every flagged request is counted, at its second, even those whose sender was folded.
  EXPECT_EQ(query_int(path_, "SELECT sum(requests) FROM flagged"), 3000);
  EXPECT_EQ(query_int(path_, "SELECT count(DISTINCT at) FROM flagged"), 3000);
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM explanation"), 1);
  // Folded identities are missing, not invented: fewer distinct senders and pairs than sent.
  EXPECT_LT(query_int(path_, "SELECT distinct_senders FROM recipient_hourly"), 3000);
  EXPECT_LT(query_int(path_, "SELECT count(*) FROM correspondent"), 3000);
}

// Keys folded while the writer's thread merges a batch are counted once, not again when the
// held delta takes the pending one over.
TEST_F(WriterTest, FoldedKeysAreCountedOnce) {
  writer_options o;
  o.max_pending_keys = 40;
  o.flush_interval = 1h;
  auto w = make_writer(o);
  const decision::outbox batch = deliveries(100, t0, "bob@example.test");
  delta expected(o.max_pending_keys);
  explanation_filter filter;
  expected.add(batch, filter);
  ASSERT_GT(expected.folded(), 0u);
  decision::outbox copy = batch;
  EXPECT_TRUE(w->submit(std::move(copy)));
  w->stop();
  EXPECT_EQ(w->stats().records_written, 100u);
  EXPECT_EQ(w->stats().keys_folded, expected.folded());
}

TEST_F(WriterTest, LockedDatabaseIsRetriedWithoutLosingQueuedRecords) {
  writer_options o;
  o.flush_interval = 10ms;
  o.retry_initial = 10ms;
  o.retry_max = 40ms;
  SQLite::Database locker(path_, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  auto w = make_writer(o);
  // A second connection holding the write lock works as root too, unlike chmod.
  locker.exec("BEGIN EXCLUSIVE");

  std::chrono::nanoseconds slowest{0};
  int submitted = 0;
  while (w->stats().write_failures < 3 || submitted < 20) {
    const auto before = std::chrono::steady_clock::now();
    EXPECT_TRUE(w->submit(deliveries(2, t0 + submitted * 10, "bob@example.test")));
    slowest = std::max(slowest, std::chrono::steady_clock::now() - before);
    ++submitted;
    std::this_thread::sleep_for(5ms);
    ASSERT_LT(submitted, 2000) << "the writer never reported a failure";
  }
  // The network thread never waits for SQLite, not even for the busy timeout.
  EXPECT_LT(slowest, 20ms);
  writer_stats during = w->stats();
  EXPECT_EQ(during.records_written, 0u);
  EXPECT_EQ(during.records_dropped, 0u);
  EXPECT_GT(during.queue_depth, 0u);
  EXPECT_NE(during.last_error.find("STORE WRITE FAILED"), std::string::npos) << during.last_error;
  EXPECT_TRUE(log_.contains("records held for retry"));

  locker.exec("ROLLBACK");
  EXPECT_TRUE(eventually(
      [&] { return w->stats().records_written == static_cast<std::uint64_t>(2 * submitted); }));
  EXPECT_EQ(accepted_total(), 2 * submitted);
  EXPECT_TRUE(log_.contains("STORE WRITE RECOVERED"));
  EXPECT_EQ(w->stats().queue_depth, 0u);
}

// While the writer's thread is inside one long SQLite call (here: waiting 3 s for a lock, as
// a big transaction would take as long), what arrives is folded each time a quarter of
// max_pending_keys records waits, not queued raw: the memory follows the keys (one recipient
// here), not the call's length times the request rate.
TEST_F(WriterTest, ArrivalsAreFoldedWhileATransactionLasts) {
  writer_options o;
  o.flush_interval = 10ms;
  o.max_pending_keys = 400;  // folds at 100 unfolded records
  SQLite::Database locker(path_, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  auto w = make_writer(o, 3s);
  locker.exec("BEGIN EXCLUSIVE");
  EXPECT_TRUE(w->submit(deliveries(10, t0, "bob@example.test")));
  // Long enough for the writer to take those 10 (due 5 ms after its start) and begin waiting
  // for the lock; the checks below (no failure, no flush yet) show it still waits.
  std::this_thread::sleep_for(300ms);
  for (int batch = 1; batch <= 200; ++batch) {
    EXPECT_TRUE(w->submit(deliveries(50, t0 + batch, "bob@example.test")));
  }
  EXPECT_TRUE(eventually([&] { return w->stats().records_unfolded < 100; }, 2s))
      << w->stats().records_unfolded << " of 10,000 unfolded";
  EXPECT_EQ(w->stats().write_failures, 0u) << "the first attempt should still be waiting";
  EXPECT_EQ(w->stats().flushes, 0u);
  locker.exec("ROLLBACK");
  EXPECT_TRUE(eventually([&] { return w->stats().records_written == 10'010; }, 10s));
  EXPECT_EQ(accepted_total(), 10'010);
  EXPECT_EQ(w->stats().records_dropped, 0u);
}

TEST_F(WriterTest, StopGivesUpAfterStopTimeoutAndCountsTheLoss) {
  writer_options o;
  o.flush_interval = 10ms;
  o.retry_initial = 10ms;
  o.retry_max = 20ms;
  o.stop_timeout = 100ms;
  SQLite::Database locker(path_, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  auto w = make_writer(o);
  locker.exec("BEGIN EXCLUSIVE");
  EXPECT_TRUE(w->submit(deliveries(3, t0, "bob@example.test")));
  bool job_ran = false;
  EXPECT_TRUE(w->submit(database_job{[&](SQLite::Database&) { job_ran = true; }, nullptr}));

  const auto before = std::chrono::steady_clock::now();
  w->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - before, 2s);
  const writer_stats st = w->stats();
  EXPECT_EQ(st.records_dropped, 3u);
  EXPECT_EQ(st.records_lost_at_stop, 3u);
  EXPECT_EQ(st.jobs_lost_at_stop, 1u);
  EXPECT_EQ(st.records_written, 0u);
  EXPECT_FALSE(job_ran);
  // One line with the loss and its cause, for the operator who sees the daemon's exit status.
  EXPECT_EQ(log_.count("STORE LOST"), 1u);
  EXPECT_TRUE(
      log_.contains("STORE LOST 3 records and 1 spool scan results at shutdown: the "
                    "database stayed unwritable for stop_timeout (100 ms); last failure: "))
      << log_.text();
  EXPECT_TRUE(log_.contains("database is locked")) << log_.text();
  locker.exec("ROLLBACK");
}

TEST_F(WriterTest, AStopThatWritesEverythingLosesNothing) {
  writer_options o;
  o.flush_interval = 1h;
  auto w = make_writer(o);
  EXPECT_TRUE(w->submit(deliveries(3, t0, "bob@example.test")));
  w->stop();
  EXPECT_EQ(w->stats().records_lost_at_stop, 0u);
  EXPECT_EQ(w->stats().jobs_lost_at_stop, 0u);
  EXPECT_EQ(log_.count("STORE LOST"), 0u);
}

// The WAL shrinks back after a checkpoint instead of keeping its high-water mark for good (a long
// lock or a catch-up transaction makes it big once): the writer's connection has the limit, and
// a burst past it is cut back to it when the log restarts after a checkpoint.
constexpr std::int64_t wal_limit = std::int64_t{64} << 20;

TEST_F(WriterTest, TheWritersConnectionLimitsTheWal) {
  writer_options o;
  o.flush_interval = 10ms;
  auto w = make_writer(o);
  std::atomic<std::int64_t> limit{-1};
  std::atomic<bool> done{false};
  ASSERT_TRUE(w->submit(database_job{
      [&](SQLite::Database& db) { limit = db.execAndGet("PRAGMA journal_size_limit").getInt64(); },
      [&](bool) { done = true; }}));
  ASSERT_TRUE(eventually([&] { return done.load(); }));
  EXPECT_EQ(limit.load(), wal_limit);
}

TEST_F(WriterTest, AWalBurstPastTheLimitIsCutBackAfterACheckpoint) {
  SQLite::Database db = open_read_write({.path = path_});
  db.exec("PRAGMA wal_autocheckpoint = 0");  // the burst stays in the WAL until we checkpoint
  db.exec("CREATE TABLE burst (b BLOB)");
  const std::string wal = path_ + "-wal";
  {
    SQLite::Transaction tx(db);
    for (int i = 0; i < 66; ++i) db.exec("INSERT INTO burst VALUES (zeroblob(1048576))");
    tx.commit();
  }
  ASSERT_GT(static_cast<std::int64_t>(std::filesystem::file_size(wal)), wal_limit);
  db.exec("PRAGMA wal_checkpoint(PASSIVE)");
  // The next write restarts the log from its start, which is when SQLite applies the limit.
  db.exec("INSERT INTO burst VALUES (1)");
  EXPECT_LE(static_cast<std::int64_t>(std::filesystem::file_size(wal)), wal_limit);
}

TEST_F(WriterTest, PrunesOnTheInjectedClock) {
  writer_options o;
  o.flush_interval = 10ms;
  o.prune_interval = 1h;
  o.retention = std::chrono::days{30};
  clock_ = t0;
  auto w = make_writer(o);
  EXPECT_TRUE(w->submit(deliveries(1, t0 - 10 * 86400, "old@example.test")));
  EXPECT_TRUE(w->submit(deliveries(1, t0 + 25 * 86400, "new@example.test")));
  EXPECT_TRUE(eventually([&] { return w->stats().records_written == 2; }));
  // The start-up prune may only have taken minute rows; 10 days is within the retention.
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM recipient_hourly"), 2);

  clock_ = t0 + 30 * 86400;  // old is now 40 days old, new 5 days
  EXPECT_TRUE(
      eventually([&] { return query_int(path_, "SELECT count(*) FROM recipient_hourly") == 1; }));
  EXPECT_EQ(query_text(path_, "SELECT recipient FROM recipient_hourly"), "new@example.test");
  EXPECT_GT(w->stats().rows_pruned, 0u);
  EXPECT_TRUE(log_.contains("STORE PRUNED"));
}

}  // namespace
}  // namespace rcptguard::store
