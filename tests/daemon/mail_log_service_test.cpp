// The daemon's followed logs (server/mail_log_service): a flood appended to a followed Postfix log
// reaches the engine as log deliveries, positions are stored only for what was handed on, a
// restart continues where the last one stopped without counting anything twice, stale lines
// are skipped, and the alert sink writes one JSON line per episode with source "log".
#include "daemon/mail_log_service.hpp"

#include <SQLiteCpp/Database.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "daemon/alert_file.hpp"
#include "daemon/daemon_log.hpp"
#include "decision/engine.hpp"
#include "store/ingest_positions.hpp"
#include "store/schema.hpp"
#include "store/store.hpp"
#include "tests/daemon/mail_log_lines.hpp"

namespace rcptguard::daemon {
namespace {

using namespace std::chrono_literals;

// Monday 2025-03-03T14:00:00Z: the daemon's "now" throughout.
const time_point now = from_unix_seconds(1741010400);

// `count` messages to `recipient` from distinct senders and clients, `first` to `first +
// count - 1`, spread evenly over [from, from + span).
std::string flood(unsigned first, unsigned count, time_point from, std::chrono::seconds span,
                  const std::string& recipient = "victim@example.test") {
  std::string out;
  for (unsigned i = 0; i < count; ++i) {
    const auto at = from + span * i / count;
    out += postfix_message(first + i, std::chrono::time_point_cast<std::chrono::microseconds>(at),
                           recipient, "x" + std::to_string(first + i) + "@bulk.example",
                           "192.0.2." + std::to_string(1 + (first + i) % 200));
  }
  return out;
}

decision::settings detection() {
  decision::settings s = default_config().detection;
  // What [ingest] requires of a daemon that follows logs (config check_relations).
  s.end_of_message_hook = decision::eom_hook::absent;
  return s;
}

class LogServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("rcptguard-logsvc-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    log_file_ = (dir_ / "mail.log").string();
    database_ = (dir_ / "rcptguard.db").string();
    std::ofstream(log_file_) << flood(0, 3, now - 2h, 10s);  // before the start: never read
    settings_ = default_config().ingest;
    settings_.files = {log_file_};
    settings_.poll_interval = 50ms;
    // The daemon's persistence creates (and migrates) the database before the service opens.
    store::open_read_write(store::open_options{.path = database_});
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void append(const std::string& text) {
    std::ofstream(log_file_, std::ios::app | std::ios::binary) << text;
  }

  std::unique_ptr<mail_log_service> make_service() {
    auto service = std::make_unique<mail_log_service>(settings_, database_, logger_);
    service->open(now);
    return service;
  }

  // Polls at `at` until `events` more events were fed (or skipped as stale), as the daemon's
  // housekeeping does, then moves the engine's records out as persistence.pump() would.
  void poll_until(mail_log_service& service, decision::engine& engine, std::uint64_t events,
                  time_point at = now) {
    const mail_log_service_stats before = service.stats();
    const std::uint64_t target = before.events_fed + before.stale_events + events;
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < deadline) {
      service.poll(engine, at);
      pump(engine);
      const mail_log_service_stats s = service.stats();
      if (s.events_fed + s.stale_events >= target) break;
      std::this_thread::sleep_for(5ms);
    }
  }

  void pump(decision::engine& engine) {
    decision::outbox& batch = engine.pending();
    for (auto& d : batch.deliveries) deliveries_.push_back(std::move(d));
    for (auto& e : batch.episodes) episodes_.push_back(std::move(e));
    batch.clear();
  }

  std::optional<store::ingest_position> stored_position() {
    SQLite::Database db = store::open_read_write(store::open_options{.path = database_});
    store::ingest_positions positions(db);
    return positions.load(log_file_);
  }

  std::uint64_t log_size() const { return std::filesystem::file_size(log_file_); }

  /// What the writer does with the positions the daemon hands it.
  void store_positions(const std::vector<store::followed_position>& positions) {
    store::store db(store::store_options{.database = store::open_options{database_}});
    db.apply(decision::outbox{}, positions, now);
  }

  std::filesystem::path dir_;
  std::string log_file_;
  std::string database_;
  ingest_settings settings_;
  std::shared_ptr<spdlog::logger> logger_ = make_test_logger();
  std::vector<decision::delivery_record> deliveries_;
  std::vector<decision::episode_record> episodes_;

 private:
  static std::shared_ptr<spdlog::logger> make_test_logger() {
    auto log = std::make_shared<spdlog::logger>("mail_log_service_test");
    log->set_level(spdlog::level::off);
    return log;
  }
};

TEST_F(LogServiceTest, AFloodInTheLogReachesTheEngineAsLogDeliveries) {
  decision::engine engine(detection(), 1);
  auto service = make_service();
  append(flood(100, 300, now - 100s, 90s));
  poll_until(*service, engine, 300);

  ASSERT_EQ(deliveries_.size(), 300U);
  for (const auto& d : deliveries_) {
    EXPECT_EQ(d.source, decision::event_source::log);
    EXPECT_EQ(d.recipient, "victim@example.test");
    EXPECT_TRUE(d.accepted);
    EXPECT_GE(d.at, now - 100s);  // the log's own timestamps
    EXPECT_LT(d.at, now);
  }
  EXPECT_EQ(engine.inspect("victim@example.test", now).accepted.at(1), 300.0);  // 10 minutes
  ASSERT_FALSE(episodes_.empty());
  for (const auto& e : episodes_) EXPECT_EQ(e.source, decision::event_source::log);
  const mail_log_service_stats s = service->stats();
  EXPECT_EQ(s.events_fed, 300U);
  EXPECT_EQ(s.stale_events, 0U);
  EXPECT_EQ(s.joiner.events, 300U);
  EXPECT_EQ(s.queued_events, 0U);
}

// The positions handed to the writer are those the fed events reach, each once: the daemon
// passes them with the engine's records of those events, so both commit together.
TEST_F(LogServiceTest, PositionsAreHandedOnWithTheEventsTheyCover) {
  decision::engine engine(detection(), 1);
  auto service = make_service();
  append(flood(100, 50, now - 60s, 30s));
  poll_until(*service, engine, 50);
  auto positions = service->take_positions();
  ASSERT_EQ(positions.size(), 1U);
  EXPECT_EQ(positions.front().offset, log_size());
  EXPECT_EQ(positions.front().path, log_file_);
  EXPECT_TRUE(service->take_positions().empty());  // nothing new fed

  append(flood(200, 10, now - 30s, 10s));
  poll_until(*service, engine, 10, now + 1s);
  positions = service->take_positions();
  ASSERT_EQ(positions.size(), 1U);
  EXPECT_EQ(positions.front().offset, log_size());
}

TEST_F(LogServiceTest, ARestartContinuesWithoutCountingAnythingTwice) {
  {
    decision::engine engine(detection(), 1);
    auto service = make_service();
    append(flood(100, 40, now - 60s, 30s));
    poll_until(*service, engine, 40);
    // The daemon's shutdown: the reader stops, then the records and positions are stored.
    service->stop();
    store_positions(service->take_positions());
    EXPECT_EQ(stored_position()->offset, log_size());
  }
  ASSERT_EQ(deliveries_.size(), 40U);
  // Written while the daemon was down.
  append(flood(200, 25, now - 20s, 10s, "other@example.test"));

  decision::engine engine(detection(), 2);
  auto service = make_service();
  poll_until(*service, engine, 25);
  ASSERT_EQ(deliveries_.size(), 65U);
  std::set<std::string> seen;
  for (std::size_t i = 40; i < deliveries_.size(); ++i) {
    EXPECT_EQ(deliveries_[i].recipient, "other@example.test");
    seen.insert(deliveries_[i].sender);
  }
  EXPECT_EQ(seen.size(), 25U);
  EXPECT_EQ(engine.inspect("victim@example.test", now).accepted.at(1), 0.0);
  EXPECT_EQ(service->stats().events_fed, 25U);
}

TEST_F(LogServiceTest, StaleLinesAreSkippedAndFutureOnesFedNow) {
  decision::engine engine(detection(), 1);
  auto service = make_service();
  append(flood(100, 20, now - 1h, 60s));  // a backlog: not counted into this minute
  append(flood(200, 5, now + 2h, 10s));   // a wrong time zone ahead of us
  poll_until(*service, engine, 25);
  const mail_log_service_stats s = service->stats();
  EXPECT_EQ(s.stale_events, 20U);
  EXPECT_EQ(s.future_events, 5U);
  ASSERT_EQ(deliveries_.size(), 5U);
  for (const auto& d : deliveries_) EXPECT_EQ(d.at, now);
}

TEST_F(LogServiceTest, AlertSinkWritesOneLinePerEpisodeWithSourceLog) {
  decision::engine engine(detection(), 1);
  auto service = make_service();
  const std::string alerts = (dir_ / "alerts.jsonl").string();
  alert_sink sink(alerts, logger_);
  append(flood(100, 300, now - 100s, 90s));
  // As the daemon does: the sink sees each batch's episodes before pump() moves them.
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (service->stats().events_fed < 300 && std::chrono::steady_clock::now() < deadline) {
    service->poll(engine, now);
    sink.write(engine.pending().episodes);
    pump(engine);
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_FALSE(episodes_.empty());
  std::set<std::int64_t> opened;
  for (const auto& e : episodes_) opened.insert(to_unix_seconds(e.started));

  std::ifstream in(alerts);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::size_t opening_lines = 0;
  for (const std::string& line : lines) {
    EXPECT_NE(line.find(R"("source":"log")"), std::string::npos) << line;
    EXPECT_NE(line.find(R"("recipient":"victim@example.test")"), std::string::npos) << line;
    EXPECT_NE(line.find(R"("attack":["T1667","AN1009"])"), std::string::npos) << line;
    if (line.find(R"("escalated":false)") != std::string::npos) ++opening_lines;
  }
  EXPECT_EQ(opening_lines, opened.size());
  EXPECT_EQ(sink.lines(), lines.size());
  EXPECT_EQ(sink.failures(), 0U);
}

TEST_F(LogServiceTest, AlertSinkFailuresAreLoggedNotThrown) {
  alert_sink off("", logger_);
  alert_sink broken((dir_ / "missing" / "alerts.jsonl").string(), logger_);
  decision::episode_record e;
  e.recipient = "victim@example.test";
  e.started = e.updated = now;
  off.write({e});
  EXPECT_EQ(off.failures(), 0U);
  EXPECT_NO_THROW(broken.write({e}));
  EXPECT_EQ(broken.failures(), 1U);
  broken.write({e});  // the reopen waits a minute: not tried again, not counted again
  EXPECT_EQ(broken.failures(), 1U);
}

}  // namespace
}  // namespace rcptguard::daemon
