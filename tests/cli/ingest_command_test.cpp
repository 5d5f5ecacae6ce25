// Replay through the engine: a generated three-week log with busy accounts (a list, a ticket inbox
// with storms at random hours, an archive address that gets a newsletter's copies every Monday),
// quiet users and three injected floods raises an alert for every flood, at the flood, and none
// for a busy account after the first week; the Postfix and Sendmail renderings of the same
// traffic raise the same alerts. Also the command's usage errors and the alert JSON.
#include "cli/ingest_command.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "daemon/alert_file.hpp"
#include "ingest/timestamp.hpp"
#include "store/schema.hpp"

namespace rcptguard::cli {
namespace {

using namespace std::chrono_literals;

// Monday 2025-03-03T00:00:00Z.
constexpr std::int64_t start = 1740960000;
constexpr int days = 21;
// Day 20, 14:00:00 UTC: the flood starts.
constexpr std::int64_t flood_start = start + 19 * 86400 + 14 * 3600;
// Day 16, 03:00: a one-client bomb in the night; day 18, 09:00: one a minute for three hours.
constexpr std::int64_t night_bomb = start + 15 * 86400 + 3 * 3600;
constexpr std::int64_t slow_flood = start + 17 * 86400 + 9 * 3600;

struct flood_label {
  std::string recipient;
  std::int64_t start;
};
const std::vector<flood_label> floods{{"user7@example.test", flood_start},
                                      {"user3@example.test", night_bomb},
                                      {"user12@example.test", slow_flood}};
const std::vector<std::string> busy_accounts{"list@example.test", "tickets@example.test",
                                             "archive@example.test"};

struct message {
  std::int64_t at;
  std::string recipient;
  std::string sender;
  std::string client;
  std::uint64_t size;
};

std::vector<message> traffic() {
  std::mt19937 rng(7);
  std::vector<message> out;
  for (int day = 0; day < days; ++day) {
    const std::int64_t midnight = start + std::int64_t{day} * 86400;
    // The list: every 90 s from 08:00 to 20:00, from its own relays, every day.
    for (std::int64_t t = midnight + 8 * 3600; t < midnight + 20 * 3600; t += 90) {
      out.push_back({t, "list@example.test",
                     "member" + std::to_string(rng() % 40) + "@lists.example.org",
                     "198.51.100." + std::to_string(1 + rng() % 4), 4000});
    }
    // Twenty quiet users, four to eight messages a day each during office hours; the archive
    // address gets a copy of the mail of the even-numbered ones.
    for (int u = 0; u < 20; ++u) {
      const int n = 4 + static_cast<int>(rng() % 5);
      for (int i = 0; i < n; ++i) {
        const message m{midnight + 8 * 3600 + static_cast<std::int64_t>(rng() % (10 * 3600)),
                        "user" + std::to_string(u) + "@example.test",
                        "friend" + std::to_string(rng() % 10) + "@partner.example",
                        "203.0.113." + std::to_string(1 + rng() % 50), 20000};
        out.push_back(m);
        if (u % 2 == 0) out.push_back({m.at, "archive@example.test", m.sender, m.client, m.size});
      }
    }
    // The ticket inbox: a few tickets an hour in office hours...
    for (int i = 0; i < 30; ++i) {
      out.push_back({midnight + 8 * 3600 + static_cast<std::int64_t>(rng() % (10 * 3600)),
                     "tickets@example.test",
                     "customer" + std::to_string(rng() % 500) + "@c.example",
                     "198.18.0." + std::to_string(1 + rng() % 200), 8000});
    }
    // ...and on one day in three a storm of 60-90 tickets in 20 minutes, at any hour.
    if (day % 3 == 1) {
      const std::int64_t storm = midnight + static_cast<std::int64_t>(rng() % (23 * 3600));
      const int count = 60 + static_cast<int>(rng() % 31);
      for (int i = 0; i < count; ++i) {
        out.push_back({storm + i * 1200 / count, "tickets@example.test",
                       "storm" + std::to_string(day) + "x" + std::to_string(i) + "@c.example",
                       "198.18.1." + std::to_string(1 + i % 200), 8000});
      }
    }
    // Every Monday at 09:00 a newsletter to everyone: 150 copies to the archive in 4 minutes.
    if (day % 7 == 0) {
      for (int i = 0; i < 150; ++i) {
        out.push_back({midnight + 9 * 3600 + i * 240 / 150, "archive@example.test",
                       "news@newsletter.example", "192.0.2.200", 30000});
      }
    }
  }
  // A one-client bomb in the night and a slow flood paced under the 10-minute floor.
  for (int i = 0; i < 300; ++i) {
    out.push_back({night_bomb + i * 2, "user3@example.test",
                   "x" + std::to_string(i) + "@bomb.example", "192.0.2.66", 2000});
  }
  for (int i = 0; i < 180; ++i) {
    out.push_back({slow_flood + i * 60, "user12@example.test",
                   "slow" + std::to_string(i) + "@drip.example",
                   "192.0.2." + std::to_string(100 + i % 50), 2000});
  }
  // The flood: 400 messages to user7 in ten minutes from many senders and clients.
  for (int i = 0; i < 400; ++i) {
    out.push_back({flood_start + i * 600 / 400, "user7@example.test",
                   "x" + std::to_string(rng()) + "@bulk" + std::to_string(i % 37) + ".example",
                   "192.0.2." + std::to_string(1 + i % 200), 3000});
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const message& a, const message& b) { return a.at < b.at; });
  return out;
}

std::string classic(std::int64_t t) {
  static constexpr const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const std::time_t tt = t;
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s %2d %02d:%02d:%02d", months[tm.tm_mon], tm.tm_mday, tm.tm_hour,
                tm.tm_min, tm.tm_sec);
  return buf;
}

void write_postfix(const std::string& path, const std::vector<message>& msgs) {
  std::ofstream out(path);
  unsigned n = 0;
  for (const message& m : msgs) {
    char qid[16];
    std::snprintf(qid, sizeof qid, "%08X", 0xA0000000U + n++);
    const std::string ts = classic(m.at) + " mx ";
    out << ts << "postfix/postscreen[90]: CONNECT from [" << m.client << "]:4000 to [10.0.0.1]:25\n"
        << ts << "postfix/smtpd[100]: connect from c.example[" << m.client << "]\n"
        << ts << "postfix/smtpd[100]: " << qid << ": client=c.example[" << m.client << "]\n"
        << ts << "postfix/cleanup[101]: " << qid << ": message-id=<" << qid << "@x>\n"
        << ts << "postfix/qmgr[102]: " << qid << ": from=<" << m.sender << ">, size=" << m.size
        << ", nrcpt=1 (queue active)\n"
        << ts << "amavis[7]: (07-1) Passed CLEAN {RelayedInbound}\n"
        << ts << "postfix/local[103]: " << qid << ": to=<" << m.recipient
        << ">, relay=local, delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (delivered to "
           "mailbox)\n"
        << ts << "postfix/qmgr[102]: " << qid << ": removed\n"
        << ts << "postfix/smtpd[100]: disconnect from c.example[" << m.client
        << "] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5\n";
  }
}

void write_sendmail(const std::string& path, const std::vector<message>& msgs) {
  std::ofstream out(path);
  unsigned n = 0;
  for (const message& m : msgs) {
    char qid[20];
    std::snprintf(qid, sizeof qid, "s3%06uAB%06u", n, n);
    ++n;
    const std::string ts = classic(m.at) + " mx ";
    out << ts << "sm-mta[200]: " << qid << ": from=<" << m.sender << ">, size=" << m.size
        << ", class=0, nrcpts=1, msgid=<" << qid << "@x>, proto=ESMTP, daemon=MTA, "
        << "relay=c.example [" << m.client << "]\n"
        << ts << "sm-mta[201]: " << qid << ": to=<" << m.recipient
        << ">, delay=00:00:01, xdelay=00:00:01, mailer=local, pri=30000, dsn=2.0.0, stat=Sent\n";
  }
}

class ReplayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("rcptguard-replay-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Runs one replay into its own database; returns the alert lines.
  std::vector<std::string> replay(const std::string& log, const std::string& name,
                                  ingest_summary& summary) {
    config settings = default_config();
    settings.store.path = (dir_ / (name + ".db")).string();
    ingest_options options;
    options.files = {log};
    options.year = 2025;
    options.utc_offset = 0s;
    options.alerts_file = (dir_ / (name + ".jsonl")).string();
    std::FILE* out = std::tmpfile();
    const int code = run_ingest(settings, options, out, stderr, {}, &summary);
    std::fclose(out);
    EXPECT_EQ(code, 0);
    std::vector<std::string> alerts;
    std::ifstream in(options.alerts_file);
    for (std::string l; std::getline(in, l);) alerts.push_back(l);
    return alerts;
  }

  std::filesystem::path dir_;
};

std::string field(const std::string& json, const std::string& key) {
  const std::string needle = "\"" + key + "\":\"";
  const std::size_t at = json.find(needle);
  if (at == std::string::npos) return {};
  const std::size_t begin = at + needle.size();
  return json.substr(begin, json.find('"', begin) - begin);
}

TEST_F(ReplayTest, FloodAlertsAtTheFloodAndTheListStaysQuiet) {
  const std::vector<message> msgs = traffic();
  const std::string postfix_log = (dir_ / "postfix.log").string();
  const std::string sendmail_log = (dir_ / "sendmail.log").string();
  write_postfix(postfix_log, msgs);
  write_sendmail(sendmail_log, msgs);

  ingest_summary p;
  const std::vector<std::string> postfix_alerts = replay(postfix_log, "postfix", p);
  EXPECT_EQ(p.joiner.events, msgs.size());
  EXPECT_EQ(p.lines.lines, msgs.size() * 9);
  EXPECT_EQ(p.lines.other_program, msgs.size());  // amavis
  EXPECT_EQ(p.lines.skipped(), msgs.size());

  ASSERT_FALSE(postfix_alerts.empty());
  std::map<std::string, std::int64_t> first_alert;
  for (const std::string& a : postfix_alerts) {
    time_point raised;
    ingest::timestamp_parser iso({});
    ASSERT_TRUE(iso.parse_iso(field(a, "time"), raised)) << a;
    const std::string recipient = field(a, "recipient");
    const std::int64_t at = to_unix_seconds(raised);
    first_alert.emplace(recipient, at);
    EXPECT_EQ(field(a, "source"), "log") << a;
    // In the first week nothing has history yet: a busy account may alert as a new install's
    // would. Once its hours and its bursts are learned, its storms and newsletters are quiet.
    if (std::find(busy_accounts.begin(), busy_accounts.end(), recipient) != busy_accounts.end()) {
      EXPECT_LT(at, start + 7 * 86400) << a;
      continue;
    }
    // Quiet users never alert, the victims only from their flood on.
    const auto flood = std::find_if(floods.begin(), floods.end(),
                                    [&](const flood_label& f) { return f.recipient == recipient; });
    ASSERT_NE(flood, floods.end()) << a;
    EXPECT_GE(at, flood->start) << a;
  }
  // Every flood flagged: the fast ones within a minute, the slow one within its first hour.
  for (const flood_label& f : floods) {
    ASSERT_TRUE(first_alert.contains(f.recipient)) << f.recipient;
    EXPECT_LE(first_alert[f.recipient] - f.start, f.start == slow_flood ? 3600 : 60) << f.recipient;
  }

  ingest_summary s;
  const std::vector<std::string> sendmail_alerts = replay(sendmail_log, "sendmail", s);
  EXPECT_EQ(s.joiner.events, msgs.size());
  // The same traffic, the same alerts (time, recipient, verdict, numbers), whatever the MTA.
  ASSERT_EQ(sendmail_alerts.size(), postfix_alerts.size());
  for (std::size_t i = 0; i < postfix_alerts.size(); ++i) {
    EXPECT_EQ(sendmail_alerts[i], postfix_alerts[i]);
  }
}

TEST(AlertLog, OneLinePerOpenedOrEscalatedEpisodeWithEscapedText) {
  std::FILE* f = std::tmpfile();
  daemon::alert_file log(f);
  decision::episode_record e;
  e.recipient = "vic\"tim\n@example.test";
  e.started = from_unix_seconds(1742392800);
  e.updated = e.started;
  e.peak_level = decision::verdict_level::warn;
  e.peak_score = 2.5;
  e.peak_window = "10m";
  e.peak_observed = 240;
  e.peak_baseline = 6;
  e.summary = "240 msgs/10m\x01";
  e.source = decision::event_source::log;
  decision::episode_record peak = e;
  peak.peak_score = 3.0;
  peak.updated = e.started + 60s;
  decision::episode_record escalated = peak;
  escalated.peak_level = decision::verdict_level::defer;
  escalated.updated = e.started + 120s;
  decision::episode_record ended = escalated;
  ended.ended = true;
  EXPECT_EQ(log.write({e, peak, escalated, ended}), 2U);
  EXPECT_EQ(log.write({ended}), 0U);  // an episode this process never saw open
  std::rewind(f);
  char buf[2048];
  std::vector<std::string> got;
  while (std::fgets(buf, sizeof buf, f) != nullptr) got.emplace_back(buf);
  std::fclose(f);
  ASSERT_EQ(got.size(), 2U);
  EXPECT_EQ(
      got[0],
      R"({"type":"episode","time":"2025-03-19T14:00:00Z","recipient":"vic\"tim\n@example.test",)"
      R"("verdict":"warn","score":2.5,"window":"10m","observed":240.0,"baseline":6.0,)"
      R"("reasons":"240 msgs/10m\u0001","source":"log","attack":["T1667","AN1009"],)"
      R"("started":"2025-03-19T14:00:00Z","escalated":false})"
      "\n");
  EXPECT_NE(got[1].find(R"("time":"2025-03-19T14:02:00Z")"), std::string::npos);
  EXPECT_NE(got[1].find(R"("verdict":"defer")"), std::string::npos);
}

TEST(IngestCommand, UsageErrors) {
  const auto run = [](std::vector<std::string> args) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    return command_ingest(static_cast<int>(argv.size()), argv.data());
  };
  EXPECT_EQ(run({"ingest"}), 2);
  EXPECT_EQ(run({"ingest", "--utc-offset", "+99", "x.log"}), 2);
  EXPECT_EQ(run({"ingest", "--follow", "-"}), 2);
  EXPECT_EQ(run({"ingest", "--bogus"}), 2);
  EXPECT_EQ(run({"ingest", "-o", "store.path=/nonexistent-dir/x.db", "/nonexistent.log"}), 1);
}

}  // namespace
}  // namespace rcptguard::cli

namespace rcptguard::cli {
namespace {

TEST_F(ReplayTest, FollowRestartNeitherSkipsNorDoubleCounts) {
  const std::string log = (dir_ / "mail.log").string();
  const auto lines_for = [](int from, int to) {
    std::vector<message> msgs;
    for (int i = from; i < to; ++i) {
      msgs.push_back({start + i * 60, "user" + std::to_string(i % 3) + "@example.test",
                      "s" + std::to_string(i) + "@x.example", "192.0.2.1", 100});
    }
    return msgs;
  };
  write_sendmail(log, lines_for(0, 10));
  config settings = default_config();
  settings.store.path = (dir_ / "follow.db").string();
  ingest_options options;
  options.files = {log};
  options.follow = true;
  options.from_start = true;
  options.year = 2025;
  options.utc_offset = 0s;
  int rounds = 0;
  follow_control control;
  control.sleep = [](std::chrono::milliseconds) {};
  control.stop = [&] { return ++rounds % 2 == 0; };  // two polls per run
  control.clock = [] { return from_unix_seconds(start + 86400); };
  std::FILE* out = std::tmpfile();
  ingest_summary first;
  ASSERT_EQ(run_ingest(settings, options, out, stderr, control, &first), 0);
  EXPECT_EQ(first.joiner.events, 10U);

  // Restarted (not from the start) after more lines arrived: only those are read.
  {
    const std::string more = (dir_ / "more.log").string();
    write_sendmail(more, lines_for(10, 15));
    std::ifstream in(more);
    std::ofstream(log, std::ios::app) << in.rdbuf();
  }
  options.from_start = false;
  ingest_summary second;
  ASSERT_EQ(run_ingest(settings, options, out, stderr, control, &second), 0);
  std::fclose(out);
  EXPECT_EQ(second.lines.lines, 10U);
  EXPECT_EQ(second.joiner.events, 5U);

  SQLite::Database db = store::open_read_only(settings.store.path);
  EXPECT_EQ(db.execAndGet("SELECT sum(accepted) FROM recipient_hourly").getInt(), 15);
  EXPECT_EQ(db.execAndGet("SELECT count(*) FROM ingest_position").getInt(), 1);
}

}  // namespace
}  // namespace rcptguard::cli
