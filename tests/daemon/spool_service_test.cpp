// The daemon's spool scanner thread on a real temporary spool and database: evidence reaches the
// publish callback on the io_context's thread, the scan is stored for a restart, and stop() ends
// the wait between scans at once.
#include "daemon/spool_service.hpp"

#include <gtest/gtest.h>
#include <pwd.h>
#include <spdlog/sinks/ostream_sink.h>
#include <unistd.h>

#include <array>
#include <boost/asio.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <sstream>
#include <string>
#include <thread>

#include "config/config.hpp"
#include "daemon/spool_evidence.hpp"
#include "store/schema.hpp"
#include "store/store.hpp"
#include "store/writer.hpp"
#include "tests/scanner/scanner_test_util.hpp"

namespace rcptguard::daemon {
namespace {

using namespace std::chrono_literals;
using scanner::testing::temp_dir;
using scanner::testing::write_file;

// The scheduler stamps records with the wall clock, and evidence only counts copies stored
// within spool.window of it, so the messages carry the current time in their Received header.
std::string flood_message(int n, const std::string& payload) {
  const std::time_t t = std::time(nullptr);
  std::tm utc{};
  ::gmtime_r(&t, &utc);
  char received[64];
  char from_line[64];
  std::strftime(received, sizeof received, "%a, %d %b %Y %H:%M:%S +0000", &utc);
  std::strftime(from_line, sizeof from_line, "%a %b %e %H:%M:%S %Y", &utc);
  std::ostringstream m;
  m << "From bomber@remote.example  " << from_line << "\n"
    << "Received: from client.example.test (localhost [127.0.0.1])\n"
    << "\tby mx.example.test (Postfix) with ESMTP id ABC" << n << "\n"
    << "\tfor <flood@example.test>; " << received << "\n"
    << "From: bomber@remote.example\n"
    << "Subject: bomb " << n << "\n"
    << "Message-Id: <bomb-" << n << "@remote.example>\n"
    << "MIME-Version: 1.0\n"
    << "Content-Type: multipart/mixed; boundary=\"b1\"\n\n"
    << "--b1\nContent-Type: text/plain\n\nhello " << n << "\n"
    << "--b1\nContent-Type: application/octet-stream; name=\"invoice.pdf\"\n"
    << "Content-Disposition: attachment; filename=\"invoice.pdf\"\n"
    << "Content-Transfer-Encoding: base64\n\n"
    << scanner::testing::base64(payload) << "--b1--\n\n";
  return m.str();
}

// The mailbox is named after the user running the test and owned by it, so the owner check
// stays on and passes, whoever runs the tests.
std::string current_user() {
  const passwd* pw = ::getpwuid(::geteuid());
  return pw != nullptr ? pw->pw_name : "root";
}

struct published {
  int calls = 0;
  std::string recipient;
  decision::spool_evidence evidence;
  bool on_io_thread = false;
};

class SpoolService : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(dir_.path() / "spool");
    std::string mbox;
    for (int n = 0; n < 6; ++n) mbox += flood_message(n, "the same attachment, six times");
    write_file(dir_.path() / "spool" / current_user(), mbox);
    // The daemon opens (and migrates) the database before the scheduler starts.
    store::open_read_write(store::open_options{database()});

    settings_ = default_config().spool;
    settings_.enabled = true;
    settings_.interval = 100ms;
    settings_.roots = {(dir_.path() / "spool").string()};
    settings_.map = {current_user() + "=flood@example.test"};
  }

  std::string database() const { return (dir_.path() / "rg.db").string(); }

  /// The daemon's writer thread: the one that stores what the scans found.
  std::unique_ptr<store::writer> make_writer() const {
    return std::make_unique<store::writer>(
        std::make_unique<store::store>(
            store::store_options{.database = store::open_options{database()}}),
        store::writer_options{}, nullptr, wall_clock_now);
  }
  static spool_save save_to(store::writer& w) {
    return [&w](store::database_job job) { return w.submit(std::move(job)); };
  }

  std::shared_ptr<spdlog::logger> logger() {
    return std::make_shared<spdlog::logger>("test",
                                            std::make_shared<spdlog::sinks::ostream_sink_mt>(log_));
  }

  temp_dir dir_;
  spool_settings settings_;
  std::ostringstream log_;
};

TEST_F(SpoolService, PublishesEvidenceOnTheIoThreadAndStopsPromptly) {
  boost::asio::io_context io;
  published seen;
  const std::thread::id io_thread = std::this_thread::get_id();
  const auto writer = make_writer();
  spool_service scheduler(
      io, settings_, database(), logger(),
      [&](spool_evidence_list evidence, time_point) {
        ++seen.calls;
        seen.on_io_thread = std::this_thread::get_id() == io_thread;
        ASSERT_EQ(evidence.size(), 1U);
        seen.recipient = evidence.front().first;
        seen.evidence = evidence.front().second;
      },
      save_to(*writer));
  scheduler.start();
  // Keeps run_one_for() from returning early for lack of work while the first scan runs.
  const auto guard = boost::asio::make_work_guard(io);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (seen.calls == 0 && std::chrono::steady_clock::now() < deadline) io.run_one_for(50ms);

  ASSERT_EQ(seen.calls, 1) << log_.str();
  EXPECT_TRUE(seen.on_io_thread);
  EXPECT_EQ(seen.recipient, "flood@example.test");
  EXPECT_GE(seen.evidence.repeats, 5U);
  EXPECT_EQ(seen.evidence.sha256_prefix.size(), 12U);

  // A long interval from now on: stop() must end the wait, not sit it out.
  settings_.interval = 1h;
  scheduler.reconfigure(settings_);
  std::this_thread::sleep_for(200ms);
  const auto before = std::chrono::steady_clock::now();
  scheduler.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - before, 1s);
  EXPECT_NE(log_.str().find("SPOOL scanned 1 mailboxes, 6 messages, 6 attachments, 1 repeated "
                            "hashes"),
            std::string::npos)
      << log_.str();
}

TEST_F(SpoolService, ARestartResumesFromTheStoredState) {
  boost::asio::io_context io;
  int calls = 0;
  const auto count = [&](spool_evidence_list, time_point) { ++calls; };
  {
    const auto writer = make_writer();
    {
      spool_service first(io, settings_, database(), logger(), count, save_to(*writer));
      first.start();
      const auto guard = boost::asio::make_work_guard(io);
      const auto deadline = std::chrono::steady_clock::now() + 10s;
      while (calls == 0 && std::chrono::steady_clock::now() < deadline) io.run_one_for(50ms);
      ASSERT_EQ(calls, 1) << log_.str();
    }  // the destructor stops the thread
    writer->stop();  // the scan's rows are stored, as at a daemon's shutdown
    EXPECT_EQ(writer->stats().jobs_done, 1U);
  }
  log_.str("");
  io.restart();  // the first guard's end stopped the io_context
  const auto writer = make_writer();
  spool_service second(io, settings_, database(), logger(), count, save_to(*writer));
  second.start();
  const auto guard = boost::asio::make_work_guard(io);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (calls < 2 && std::chrono::steady_clock::now() < deadline) io.run_one_for(50ms);
  second.stop();
  ASSERT_GE(calls, 2) << log_.str();
  // Nothing is read twice, yet the evidence is there: it comes from the stored records.
  EXPECT_NE(log_.str().find("SPOOL scanned 1 mailboxes, 0 messages"), std::string::npos)
      << log_.str();
}

TEST_F(SpoolService, AnUnusableDatabaseIsLoggedAndRetried) {
  boost::asio::io_context io;
  const auto path = dir_.path() / "not-a-directory";
  write_file(path, "x");
  spool_service scheduler(
      io, settings_, (path / "rg.db").string(), logger(), [](spool_evidence_list, time_point) {},
      [](store::database_job) { return false; });
  scheduler.start();
  std::this_thread::sleep_for(1s);  // about ten attempts at 100ms; two are checked
  scheduler.stop();
  const std::string log = log_.str();
  const auto first = log.find("SPOOL scan failed");
  ASSERT_NE(first, std::string::npos) << log;
  EXPECT_NE(log.find("SPOOL scan failed", first + 1), std::string::npos) << log;
}

TEST(SpoolEvidence, TheMostCopiedAttachmentBecomesTheEnginesEvidence) {
  const time_point scanned = from_unix_seconds(1'700'000'000);
  scanner::mailbox_evidence found;
  EXPECT_FALSE(strongest_evidence(found, scanned).has_value());
  scanner::repeated_attachment top;
  top.sha256 = "4f722330b79e0123456789abcdef0123456789abcdef0123456789abcdef0123";
  top.count = 6;
  top.first_stored = scanned - std::chrono::minutes{40};
  top.last_stored = scanned - std::chrono::minutes{10};
  scanner::repeated_attachment second = top;
  second.count = 3;
  found.repeats = {top, second};  // the scanner lists the most copies first
  const auto evidence = strongest_evidence(found, scanned);
  ASSERT_TRUE(evidence.has_value());
  EXPECT_EQ(evidence->repeats, 6u);
  EXPECT_EQ(evidence->sha256_prefix, "4f722330b79e");
  EXPECT_EQ(evidence->window, std::chrono::minutes{30});
  EXPECT_EQ(evidence->at, scanned);
}

}  // namespace
}  // namespace rcptguard::daemon
