// Faults injected into the running daemon (issue 12): kill -9 and SIGTERM under load, a full
// filesystem under the database, and clients that drip their requests a byte at a time. Each
// test starts its own `rcptguard serve` (tests/daemon/binary_harness.hpp), ends only the
// processes it started, by PID, and is bounded by deadlines and a watchdog. None asserts
// timing; latencies and what each fault cost are printed.
#include <SQLiteCpp/SQLiteCpp.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/daemon/binary_harness.hpp"
#include "tests/server/test_support.hpp"

namespace rcptguard::server_test {
namespace {

// What "count" means: every distinct RCPT (its own instance) is one attempt, in the hour's row
// of recipient_hourly (the history the baselines learn from) and in the minute's row of
// recipient_minute (the windows restored at start-up); both are written by one transaction.
// Without END-OF-MESSAGE requests ("auto" keeps counting at once) an RCPT's record is made
// when it is answered, so the database can be compared with the replies.
const std::string attempted_hourly = "SELECT coalesce(sum(attempted), 0) FROM recipient_hourly";
const std::string attempted_minute = "SELECT coalesce(sum(attempted), 0) FROM recipient_minute";

/// The flush interval the tests set (store.flush_interval); the daemon hands its records to the
/// writer on a housekeeping tick of the same period (daemon/daemon.cpp, housekeeping_interval).
constexpr auto flush_interval = 100ms;
const std::string flush_override = "store.flush_interval=100ms";
/// The harness logs every request (debug); under load that is megabytes of log to search.
const std::string quiet_log = "log.level=info";

bool is_reply(const std::string& bytes) {
  return bytes.rfind("action=", 0) == 0 && bytes.size() > 9 &&
         bytes.compare(bytes.size() - 2, 2, "\n\n") == 0;
}

std::string integrity(const std::string& db_path) {
  SQLite::Database db(db_path, SQLite::OPEN_READONLY, 5000);
  return db.execAndGet("PRAGMA integrity_check").getString();
}

/// `connections` clients, each asking request(n) with a fresh n and waiting for the reply, as
/// fast as the daemon answers (or with `pause` between requests), until stop() or until the
/// daemon closes the connection. Records when each request was sent in full.
class load_driver {
 public:
  load_driver(std::uint16_t port, int connections, std::function<std::string(int)> request,
              int first = 0, std::chrono::microseconds pause = 0us)
      : next_(first), slots_(static_cast<std::size_t>(connections)) {
    for (slot& s : slots_) {
      threads_.emplace_back([this, &s, port, request, pause] { drive(s, port, request, pause); });
    }
  }
  load_driver(const load_driver&) = delete;
  load_driver& operator=(const load_driver&) = delete;
  ~load_driver() { stop(); }

  /// Asks the clients to stop after their current request, and waits for them: each wait of
  /// theirs is bounded (io_timeout), so this ends by itself.
  void stop() {
    stop_ = true;
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

  std::size_t answered() const { return answered_; }
  /// Connections that ended otherwise than by stop(), so far.
  int ended_count() const { return ended_count_; }

  // After stop():
  std::size_t sent() const {
    std::size_t n = 0;
    for (const slot& s : slots_) n += s.sent_at.size();
    return n;
  }
  /// Requests sent in full at or before `t`.
  std::size_t sent_before(steady::time_point t) const {
    std::size_t n = 0;
    for (const slot& s : slots_) {
      n += static_cast<std::size_t>(std::upper_bound(s.sent_at.begin(), s.sent_at.end(), t) -
                                    s.sent_at.begin());
    }
    return n;
  }
  std::vector<steady::time_point> all_sent() const {
    std::vector<steady::time_point> all;
    for (const slot& s : slots_) all.insert(all.end(), s.sent_at.begin(), s.sent_at.end());
    std::sort(all.begin(), all.end());
    return all;
  }
  /// Replies that were not a policy reply (there must be none).
  std::vector<std::string> bad_replies() const {
    std::vector<std::string> bad;
    for (const slot& s : slots_) bad.insert(bad.end(), s.bad.begin(), s.bad.end());
    return bad;
  }
  /// Connections that ended otherwise than by stop(): refused, closed or timed out.
  std::vector<std::string> ended() const {
    std::vector<std::string> out;
    for (const slot& s : slots_) {
      if (!s.ended.empty()) out.push_back(s.ended);
    }
    return out;
  }
  std::vector<double> latencies_ms() const {
    std::vector<double> all;
    for (const slot& s : slots_) all.insert(all.end(), s.latency_ms.begin(), s.latency_ms.end());
    std::sort(all.begin(), all.end());
    return all;
  }

 private:
  struct slot {
    std::vector<steady::time_point> sent_at;
    std::vector<double> latency_ms;
    std::vector<std::string> bad;
    std::string ended;
  };

  void drive(slot& s, std::uint16_t port, const std::function<std::string(int)>& request,
             std::chrono::microseconds pause) {
    test_client client = test_client::tcp(port);
    if (!client.connected()) {
      s.ended = std::string("connect: ") + std::strerror(client.connect_error());
      ++ended_count_;
      return;
    }
    while (!stop_) {
      const std::string text = request(next_++);
      const auto started = steady::now();
      if (!client.send(text)) {
        s.ended = "send failed";
        ++ended_count_;
        return;
      }
      s.sent_at.push_back(steady::now());
      const read_result r = client.read_reply();
      if (r.status != read_status::reply) {
        s.ended = describe(r);
        ++ended_count_;
        return;
      }
      s.latency_ms.push_back(
          std::chrono::duration<double, std::milli>(steady::now() - started).count());
      if (is_reply(r.bytes)) {
        ++answered_;
      } else {
        s.bad.push_back(r.bytes);
      }
      if (pause.count() > 0) std::this_thread::sleep_for(pause);
    }
  }

  std::atomic<int> next_;
  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> answered_{0};
  std::atomic<int> ended_count_{0};
  std::vector<slot> slots_;
  std::vector<std::thread> threads_;  // last: they use the members above
};

std::string percentiles(const std::vector<double>& sorted_ms) {
  if (sorted_ms.empty()) return "no replies";
  const auto at = [&](double q) {
    return sorted_ms[std::min(sorted_ms.size() - 1,
                              static_cast<std::size_t>(q * static_cast<double>(sorted_ms.size())))];
  };
  char text[160];
  std::snprintf(text, sizeof text, "p50 %.3f ms, p99 %.3f ms, max %.3f ms (%zu replies)", at(0.5),
                at(0.99), sorted_ms.back(), sorted_ms.size());
  return text;
}

double ms_between(steady::time_point from, steady::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

/// The number after `field=` on the last line of `log` tagged `tag` (SUMMARY, FINAL), if any.
std::optional<std::uint64_t> logged_counter(const std::string& log, const std::string& tag,
                                            const std::string& field) {
  const std::regex pattern("\\b" + tag + " .*\\b" + field + "=(\\d+)");
  std::optional<std::uint64_t> value;
  std::istringstream lines(log);
  std::smatch m;
  for (std::string line; std::getline(lines, line);) {
    if (std::regex_search(line, m, pattern)) value = std::stoull(m[1].str());
  }
  return value;
}

class RcptguardFault : public RcptguardBinary {
 protected:
  // Below ctest's 120 s per test, so a hang kills the daemon by its PID before ctest kills us.
  RcptguardFault() : RcptguardBinary(100s) {}

  /// One RCPT, then waits until the writer has stored it: the schema exists and the count
  /// starts at 1. No END-OF-MESSAGE: that would make every later RCPT tentative ("auto").
  void warm_up() {
    test_client client = test_client::tcp(port_);
    ASSERT_EQ(client.ask(rcpt_request("warmup@example.test")), dunno_reply);
    ASSERT_TRUE(eventually([&] { return count_rows(db_path_, attempted_hourly) == 1; }, 20s));
  }

  std::string db_path_ = dir_.file("db");
};

// kill -9 in the middle of a load of distinct recipients, then a restart on the same database:
// the database is intact, the daemon serves again, and what was lost is only what the daemon
// still held in memory. A record waits for the network thread's hand-over tick (at most
// flush_interval), then for the transaction in progress and its own; so everything sent earlier
// than flush_interval plus twice the longest transaction (as the daemon's SUMMARY reports it)
// before the kill is in the database.
//
// The load is paced (about 5,000 requests/s) so that the writer keeps up: at full speed on two
// cores shared with the clients, every request a new sender row, its transactions grow (by design
// it merges what arrives and falls behind rather than dropping), and a kill loses its backlog.
TEST_F(RcptguardFault, KillDashNineUnderLoadLosesOnlyTheLastFlushAndRestartsIntact) {
  const std::vector<std::string> overrides{flush_override, quiet_log, "log.summary_interval=500ms"};
  auto daemon = start_daemon_with_overrides(overrides);
  ASSERT_TRUE(daemon);
  warm_up();
  if (HasFatalFailure()) return;

  load_driver load(port_, 6, numbered_rcpt, 0, 1ms);
  ASSERT_TRUE(eventually([&] { return load.answered() >= 2000; }, 30s)) << daemon->err();
  std::this_thread::sleep_for(3s);
  const auto killed_at = steady::now();
  daemon->signal(SIGKILL);
  load.stop();
  EXPECT_EQ(daemon->wait_exit(10s), 128 + SIGKILL);
  EXPECT_EQ(load.bad_replies(), std::vector<std::string>{});
  const std::string log = daemon->err();
  const auto longest_flush = std::chrono::milliseconds(
      logged_counter(log, "SUMMARY", "store_flush_max_ms").value_or(0) + 1);

  const std::size_t persisted = count_rows(db_path_, attempted_hourly) - 1;  // less the warm-up
  EXPECT_EQ(count_rows(db_path_, attempted_minute) - 1, persisted);
  const std::size_t sent = load.sent();
  const std::vector<steady::time_point> sent_at = load.all_sent();
  ASSERT_FALSE(sent_at.empty());
  // The database holds (nearly) a prefix of the requests in the order they were sent; it ends
  // where this one was sent, this long before the kill.
  const double behind_ms =
      persisted < sent_at.size() ? ms_between(sent_at[persisted], killed_at) : 0.0;
  const auto bound = flush_interval + 2 * longest_flush + 50ms;
  const std::size_t must_have = load.sent_before(killed_at - bound);
  std::printf(
      "[ kill -9 ] %zu requests sent (%zu answered) in %.0f ms, %zu persisted, %zu lost: the "
      "database ended %.0f ms before the kill; longest transaction %lld ms; %zu were sent more "
      "than %lld ms before the kill\n",
      sent, load.answered(), ms_between(sent_at.front(), killed_at), persisted, sent - persisted,
      behind_ms, static_cast<long long>(longest_flush.count()), must_have,
      static_cast<long long>(bound.count()));
  EXPECT_GE(persisted, must_have) << "lost more than the last flush interval\n" << log;
  EXPECT_LE(persisted, sent) << "counted requests that were never sent";

  // The same database, a new process: WAL recovery leaves it intact, and it serves and counts
  // again from where the database was.
  daemon = start_daemon_with_overrides(overrides);
  ASSERT_TRUE(daemon);
  EXPECT_EQ(integrity(db_path_), "ok");
  constexpr int after = 500;
  {
    test_client client = test_client::tcp(port_);
    for (int n = 0; n < after; ++n) {
      const std::string reply = client.ask(numbered_rcpt(10'000'000 + n));
      ASSERT_TRUE(is_reply(reply)) << reply;
    }
  }
  daemon->signal(SIGTERM);
  ASSERT_EQ(daemon->wait_exit(30s), 0) << daemon->err();
  EXPECT_EQ(count_rows(db_path_, attempted_hourly), 1 + persisted + after);
  EXPECT_EQ(count_rows(db_path_, attempted_minute), 1 + persisted + after);
  EXPECT_EQ(integrity(db_path_), "ok");
}

// SIGTERM in the middle of the same load (unpaced, six connections): the daemon answers what is
// in flight, stops, flushes, and exits 0; every request it counted is in the database, and every
// request it answered was counted.
struct sigterm_outcome {
  std::optional<int> exit_code;
  std::size_t answered = 0;   ///< replies the clients read
  std::size_t persisted = 0;  ///< attempts in the database, less the warm-up
  std::size_t persisted_minutes = 0;
  std::optional<std::uint64_t> counted;  ///< FINAL requests=, less the warm-up
  std::string log;
};

class RcptguardSigterm : public RcptguardFault {
 protected:
  static constexpr int connections = 6;

  sigterm_outcome stop_under_load() {
    sigterm_outcome out;
    auto daemon = start_daemon_with_overrides({flush_override, quiet_log});
    if (!daemon) return out;
    warm_up();
    if (HasFatalFailure()) return out;
    load_driver load(port_, connections, numbered_rcpt);
    EXPECT_TRUE(eventually([&] { return load.answered() >= 5000; }, 30s)) << daemon->err();
    std::this_thread::sleep_for(2s);
    const auto stopped_at = steady::now();
    daemon->signal(SIGTERM);
    // The clients stop when the daemon closes their connections, not when told to.
    const bool closed = eventually([&] { return load.ended_count() == connections; }, 20s);
    load.stop();
    EXPECT_TRUE(closed) << "connections still open after SIGTERM";
    out.exit_code = daemon->wait_exit(60s);
    const auto exited_at = steady::now();
    EXPECT_EQ(load.bad_replies(), std::vector<std::string>{});
    out.answered = load.answered();
    out.persisted = count_rows(db_path_, attempted_hourly) - 1;
    out.persisted_minutes = count_rows(db_path_, attempted_minute) - 1;
    out.log = daemon->err();
    if (const auto requests = logged_counter(out.log, "FINAL", "requests")) {
      out.counted = *requests - 1;
    }
    std::printf(
        "[ SIGTERM ] %zu requests sent, %zu answered, %llu counted, %zu persisted; exit %d %.0f "
        "ms after the signal\n",
        load.sent(), out.answered, static_cast<unsigned long long>(out.counted.value_or(0)),
        out.persisted, out.exit_code.value_or(-1), ms_between(stopped_at, exited_at));
    return out;
  }
};

TEST_F(RcptguardSigterm, SigtermUnderLoadLosesNothingAndExitsZero) {
  const sigterm_outcome out = stop_under_load();
  if (HasFatalFailure()) return;
  ASSERT_EQ(out.exit_code, 0) << out.log;
  EXPECT_EQ(logged_counter(out.log, "FINAL", "store_dropped"), 0U) << out.log;
  EXPECT_EQ(out.log.find("STORE LOST"), std::string::npos) << out.log;
  // Everything the daemon counted reached the database, once.
  EXPECT_EQ(out.counted, out.persisted) << out.log;
  EXPECT_EQ(out.persisted_minutes, out.persisted);
  // Nothing answered was lost (and nothing unanswered counted: the next test).
  EXPECT_GE(out.persisted, out.answered);
}

// Found by this test: at shutdown, listener_set::shutdown() closes every session waiting between
// requests, but a read Asio had already completed for such a session still ran session::on_read
// (with success), so the request was counted and its reply written to the closed socket (2-5 of
// 6 connections per run). on_read now returns at once on a closed session.
TEST_F(RcptguardSigterm, SigtermAnswersEveryRequestItCounts) {
  const sigterm_outcome out = stop_under_load();
  if (HasFatalFailure()) return;
  ASSERT_EQ(out.exit_code, 0) << out.log;
  EXPECT_EQ(out.persisted, out.answered);
  EXPECT_EQ(out.counted, out.answered);
}

/// A tmpfs of its own for the database; unmounted in TearDown whatever happened.
class RcptguardFullDisk : public RcptguardFault {
 protected:
  void SetUp() override {
    mount_point_ = dir_.file("fs");
    std::filesystem::create_directory(mount_point_);
    if (::mount("tmpfs", mount_point_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=4m") != 0) {
      const int error = errno;
      if (error == EPERM || error == EACCES) {
        GTEST_SKIP() << "mounting a tmpfs is not allowed here (" << std::strerror(error)
                     << "): needs root or CAP_SYS_ADMIN";
      }
      FAIL() << "mount -t tmpfs " << mount_point_ << ": " << std::strerror(error);
    }
    mounted_ = true;
    db_path_ = mount_point_ + "/db";
  }

  void TearDown() override {
    if (filler_ >= 0) ::close(filler_);
    if (mounted_ && ::umount2(mount_point_.c_str(), 0) != 0) {
      const int error = errno;
      ADD_FAILURE() << "umount " << mount_point_ << ": " << std::strerror(error)
                    << "; detaching it";
      ::umount2(mount_point_.c_str(), MNT_DETACH);
    }
  }

  /// Fills the tmpfs to the last byte; returns the bytes written.
  std::size_t fill() {
    filler_ = ::open(filler_path().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (filler_ < 0) return 0;
    std::size_t total = 0;
    const std::string block(64 * 1024, 'x');
    for (const std::size_t size : {block.size(), std::size_t{4096}, std::size_t{1}}) {
      for (;;) {
        const ssize_t n = ::write(filler_, block.data(), size);
        if (n <= 0) break;
        total += static_cast<std::size_t>(n);
      }
    }
    return total;
  }

  std::string filler_path() const { return mount_point_ + "/filler"; }

  std::uint64_t free_bytes() const {
    struct statvfs st {};
    if (::statvfs(mount_point_.c_str(), &st) != 0) return 0;
    return static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
  }

  std::string mount_point_;
  bool mounted_ = false;
  int filler_ = -1;
};

/// RCPTs over a bounded set of keys (300 recipients, 20 senders each), each its own instance,
/// so the database fits in the small filesystem while every request still counts one.
std::string bounded_rcpt(int n) {
  return minimal_request("protocol_state=RCPT\nrecipient=r" + std::to_string(n % 300) +
                         "@example.test\nsender=s" + std::to_string(n % 20) +
                         "@remote.example\nclient_address=192.0.2." + std::to_string(n % 250) +
                         "\ninstance=full." + std::to_string(n) + "\n");
}

// The database's filesystem fills up under load: every request is still answered, the failed
// writes are logged and counted, and once space is freed the writer catches up by itself with
// everything it merged meanwhile: nothing is lost.
TEST_F(RcptguardFullDisk, AFullFilesystemLosesNoCountAndTheWriterRecoversWhenSpaceIsFreed) {
  auto daemon = start_daemon_with_overrides(
      {"store.path=" + db_path_, flush_override, quiet_log, "log.summary_interval=1s"});
  ASSERT_TRUE(daemon);
  warm_up();
  if (HasFatalFailure()) return;

  const std::size_t filled = fill();
  ASSERT_GT(filled, 0U) << std::strerror(errno);
  const std::uint64_t left = free_bytes();
  const auto full_at = steady::now();
  load_driver load(port_, 2, bounded_rcpt, 0, 1ms);
  ASSERT_TRUE(daemon->wait_for_err("STORE WRITE FAILED", 30s)) << daemon->err();
  const auto failed_at = steady::now();
  EXPECT_TRUE(daemon->wait_for_err("database or disk is full")) << daemon->err();
  // The SUMMARY line counts the failures while they happen.
  static const std::regex failing(R"(SUMMARY .*store_failures=[1-9])");
  EXPECT_TRUE(eventually([&] { return std::regex_search(daemon->err(), failing); }, 10s))
      << daemon->err();
  const std::size_t answered_while_full = load.answered();
  const std::size_t stored_while_full = count_rows(db_path_, attempted_hourly);

  ASSERT_EQ(::close(std::exchange(filler_, -1)), 0);
  ASSERT_EQ(::unlink(filler_path().c_str()), 0) << std::strerror(errno);
  const auto freed_at = steady::now();
  // The writer retries with a backoff of at most 5 s (store/writer.hpp, retry_max).
  ASSERT_TRUE(daemon->wait_for_err("STORE WRITE RECOVERED", 30s)) << daemon->err();
  const auto recovered_at = steady::now();
  load.stop();
  EXPECT_EQ(load.ended(), std::vector<std::string>{}) << "a connection ended during the fault";
  EXPECT_EQ(load.bad_replies(), std::vector<std::string>{});
  const std::size_t answered = load.answered();

  EXPECT_TRUE(
      eventually([&] { return count_rows(db_path_, attempted_hourly) == answered + 1; }, 20s))
      << count_rows(db_path_, attempted_hourly) << " of " << answered + 1 << "\n"
      << daemon->err();
  daemon->signal(SIGTERM);
  ASSERT_EQ(daemon->wait_exit(60s), 0) << daemon->err();
  const std::string log = daemon->err();
  const auto failures = logged_counter(log, "FINAL", "store_failures");
  std::printf(
      "[ full disk ] %zu bytes of filler left %llu bytes free; first failed write %.0f ms later; "
      "%zu answered and %zu stored while full; freed, the writer recovered %.0f ms later after "
      "%llu failed writes; %zu answered in all (%s), %zu stored\n",
      filled, static_cast<unsigned long long>(left), ms_between(full_at, failed_at),
      answered_while_full, stored_while_full - 1, ms_between(freed_at, recovered_at),
      static_cast<unsigned long long>(failures.value_or(0)), answered,
      percentiles(load.latencies_ms()).c_str(), count_rows(db_path_, attempted_hourly) - 1);
  EXPECT_EQ(count_rows(db_path_, attempted_hourly), answered + 1);
  EXPECT_EQ(count_rows(db_path_, attempted_minute), answered + 1);
  EXPECT_GT(failures.value_or(0), 0U) << log;
  EXPECT_EQ(logged_counter(log, "FINAL", "store_dropped"), 0U) << log;
  EXPECT_EQ(logged_counter(log, "FINAL", "requests"), answered + 1) << log;
  EXPECT_EQ(integrity(db_path_), "ok");
}

// Fifty clients drip their requests a byte every 200 ms, the way a slowloris would, while a
// normal client asks 2,000 times: every request of the normal client is answered; a dripper
// whose request is complete before server.request_timeout is answered, the others are closed
// with a REQUEST TIMEOUT line. Latencies are printed, not asserted.
TEST_F(RcptguardFault, SlowDrippingClientsDoNotStopTheOthersFromBeingAnswered) {
  auto daemon = start_daemon_with_overrides({quiet_log, "server.request_timeout=8s"});
  ASSERT_TRUE(daemon);

  // Half send a 29-byte request (5.6 s of dripping, under the deadline), half a full Postfix
  // request (100 s: cut off at 8 s).
  constexpr int drippers = 50;
  constexpr auto drip = 200ms;
  struct dripper {
    test_client client;
    std::string request;
    std::size_t sent = 0;
    std::optional<read_result> outcome;
  };
  std::vector<dripper> slow(drippers);
  for (int i = 0; i < drippers; ++i) {
    dripper& d = slow[static_cast<std::size_t>(i)];
    d.client = test_client::tcp(port_);
    ASSERT_TRUE(d.client.connected()) << std::strerror(d.client.connect_error());
    d.request = i % 2 == 0 ? minimal_request() : rcpt_request("drip@example.test");
  }
  std::thread dripping([&] {
    const auto deadline = steady::now() + 30s;
    for (auto tick = steady::now(); steady::now() < deadline; tick += drip) {
      bool any = false;
      for (dripper& d : slow) {
        if (d.outcome) continue;
        any = true;
        const bool complete = d.sent == d.request.size();
        // Readable: answered, or closed by the daemon.
        if (d.client.readable_within(0ms)) {
          d.outcome = complete ? d.client.read_reply(1s) : d.client.read_until_closed(1s);
        } else if (!complete) {
          if (d.client.send(std::string_view(d.request).substr(d.sent, 1), 1s)) {
            ++d.sent;
          } else {
            d.outcome = d.client.read_until_closed(1s);
          }
        }
      }
      if (!any) break;
      std::this_thread::sleep_until(tick + drip);
    }
  });

  // Meanwhile the normal client, paced to span the dripping.
  test_client normal = test_client::tcp(port_);
  std::vector<double> latency_ms;
  std::size_t answered = 0;
  std::vector<std::string> wrong;
  for (int n = 0; n < 2000; ++n) {
    const auto started = steady::now();
    const std::string reply = normal.ask(numbered_rcpt(n));
    latency_ms.push_back(ms_between(started, steady::now()));
    if (reply == dunno_reply) {
      ++answered;
    } else if (wrong.size() < 5) {
      wrong.push_back(reply);
    }
    std::this_thread::sleep_for(2ms);
  }
  dripping.join();
  EXPECT_EQ(answered, 2000U) << ::testing::PrintToString(wrong);
  // The first request also waits for its connection to be accepted; the rest are the steady state.
  const double first_ms = latency_ms.front();
  latency_ms.erase(latency_ms.begin());
  std::sort(latency_ms.begin(), latency_ms.end());

  std::size_t short_answered = 0;
  std::size_t cut_off = 0;
  std::vector<std::string> unexpected;
  for (std::size_t i = 0; i < slow.size(); ++i) {
    const dripper& d = slow[i];
    if (!d.outcome) {
      unexpected.push_back(std::to_string(i) + ": no outcome");
    } else if (d.outcome->status == read_status::reply && is_reply(d.outcome->bytes)) {
      ++short_answered;
    } else if (d.outcome->status == read_status::closed && d.outcome->bytes.empty()) {
      ++cut_off;
    } else {
      unexpected.push_back(std::to_string(i) + ": " + describe(*d.outcome));
    }
  }
  EXPECT_EQ(unexpected, std::vector<std::string>{});
  std::size_t long_cut_off = 0;
  for (std::size_t i = 1; i < slow.size(); i += 2) {
    if (slow[i].outcome && slow[i].outcome->status == read_status::closed) ++long_cut_off;
  }
  EXPECT_EQ(long_cut_off, static_cast<std::size_t>(drippers / 2))
      << "a request that cannot be complete within request_timeout was not cut off";
  // Every cut-off dripper is one REQUEST TIMEOUT line.
  EXPECT_TRUE(eventually([&] {
    return count_of(daemon->err(), "REQUEST TIMEOUT conn=") == cut_off;
  })) << cut_off
      << " cut off\n"
      << daemon->err();
  std::printf(
      "[ slow drip ] normal client: %zu of 2000 answered, first %.3f ms, then %s; drippers: %zu "
      "answered, %zu cut off by request_timeout\n",
      answered, first_ms, percentiles(latency_ms).c_str(), short_answered, cut_off);
  daemon->signal(SIGTERM);
  EXPECT_EQ(daemon->wait_exit(30s), 0) << daemon->err();
}

}  // namespace
}  // namespace rcptguard::server_test
