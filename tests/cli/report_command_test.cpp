// `rcptguard report` in-process on a database written by the store: a steady mailbox hit by a
// flood, a busy ticket inbox that is not flagged, a hostile address with an open episode and
// repeated attachments from the spool. Checks what the file says (charts' data attributes, the
// tables) and the command's exit codes. The same report in a real browser: report_chromium.sh.
#include "cli/report_command.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>  // open_memstream (POSIX)
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <regex>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "decision/events.hpp"
#include "store/store.hpp"
#include "tests/cli/cli_test_support.hpp"
#include "tests/common/temp_dir.hpp"
#include "tests/store/store_test_util.hpp"

namespace rcptguard::cli {
namespace {

using store::testing::at;
using store::testing::delivery;

constexpr std::int64_t hour = 3600;
// The report's now: 2026-12-05T18:00:00Z. The flood: 14:00 to 14:10 that day.
constexpr std::int64_t now_s = 1796493600;
constexpr std::int64_t flood = now_s - 4 * hour;

const std::string hostile = "<script>alert(1)</script>@x";
const std::string hostile_escaped = "&lt;script&gt;alert(1)&lt;/script&gt;@x";

decision::verdict_record verdict(std::int64_t when, std::string recipient,
                                 decision::verdict_level level, std::string sender) {
  decision::verdict_record v = store::testing::verdict(when, std::move(recipient));
  v.level = level;
  v.sender = std::move(sender);
  v.client = "192.0.2.66";
  if (level == decision::verdict_level::warn) {
    v.score = 1.2;
    v.action_text = "WARN rcptguard: bob@example.test 14 msgs/1m, baseline 0";
    v.reasons = {{"volume_1m", 1.2, 14, 0, "14 msgs/1m, baseline 0"}};
  } else {
    v.score = 3.5;
    v.action_text = "DEFER_IF_PERMIT 4.2.1 rcptguard: bob@example.test 240 msgs/10m, baseline 2";
    v.reasons = {{"volume_10m", 3.0, 240, 2, "240 msgs/10m, baseline 2"},
                 {"single_client", 0.5, 240, 20, "100% from one client"}};
  }
  return v;
}

using result = testing::captured;

/// Runs `rcptguard report ARGS...` in-process at now_s with stdout and stderr captured.
result report(std::initializer_list<std::string> args) {
  return testing::run_captured(
      "report", args, [](int argc, char** argv, std::FILE* out, std::FILE* err) {
        return command_report(argc, argv, report_io{.out = out, .err = err, .now = at(now_s)});
      });
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// The opening tag of the chart or section whose data-recipient is `recipient` (escaped).
std::string tag_of(const std::string& html, const std::string& element,
                   const std::string& recipient) {
  std::string literal;  // the address as a regex matching itself
  for (const char c : recipient) {
    if (std::string_view{"\\^$.|?*+()[]{}"}.find(c) != std::string_view::npos) literal += '\\';
    literal += c;
  }
  const std::regex tag("<" + element + " [^>]*data-recipient=\"" + literal + "\"[^>]*>");
  std::smatch m;
  return std::regex_search(html, m, tag) ? m.str() : std::string{};
}

std::string attribute(const std::string& tag, const std::string& name) {
  const std::regex value(" " + name + "=\"([^\"]*)\"");
  std::smatch m;
  return std::regex_search(tag, m, value) ? m[1].str() : "<missing>";
}

class ReportCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = dir_.file("rcptguard.db");
    {
      store::store s(store::testing::options_for(db_));
      decision::outbox b;
      // Twelve days of a steady mailbox (two an hour) and a ticket inbox (six an hour, and a
      // storm of 60 yesterday).
      for (std::int64_t t = now_s - 12 * 24 * hour; t < now_s; t += hour) {
        for (int i = 0; i < 2; ++i) {
          b.deliveries.push_back(delivery(t + 60 + i * 600, "bob@example.test",
                                          "friend" + std::to_string(i) + "@partner.example", true));
        }
        for (int i = 0; i < 6; ++i) {
          b.deliveries.push_back(delivery(t + 120 + i * 500, "tickets@example.test",
                                          "customer" + std::to_string(i) + "@c.example", true));
        }
      }
      for (int i = 0; i < 60; ++i) {
        b.deliveries.push_back(delivery(now_s - 30 * hour + i * 20, "tickets@example.test",
                                        "storm" + std::to_string(i) + "@c.example", true));
      }
      // The flood: 300 in ten minutes from one client.
      for (int i = 0; i < 300; ++i) {
        decision::delivery_record d = delivery(flood + i * 2, "bob@example.test",
                                               "x" + std::to_string(i) + "@bomb.example", true);
        d.client = "192.0.2.66";
        b.deliveries.push_back(d);
      }
      b.verdicts.push_back(verdict(flood + 60, "bob@example.test", decision::verdict_level::warn,
                                   "x30@bomb.example"));
      for (int i = 0; i < 10; ++i) {
        b.verdicts.push_back(verdict(flood + 180 + i * 30, "bob@example.test",
                                     decision::verdict_level::defer,
                                     "x" + std::to_string(90 + i) + "@bomb.example"));
      }
      // One delivered with the flag header an hour later.
      decision::verdict_record flagged =
          verdict(flood + hour + 300, "bob@example.test", decision::verdict_level::defer,
                  "late@bomb.example");
      flagged.header_flagged = true;
      b.verdicts.push_back(flagged);
      b.verdicts.push_back(verdict(now_s - 3000, hostile, decision::verdict_level::defer, hostile));

      b.episodes = {
          store::testing::episode("bob@example.test", flood + 60, flood + 1800, true, 4.5),
          store::testing::episode(hostile, now_s - 3000, now_s - 2000, false, 3.5)};
      b.episodes[1].summary = "rcptguard: " + hostile + " 40 msgs/10m";
      s.apply(b);
    }
    // What the spool scanner would have stored: six copies of one attachment in bob's mailbox.
    SQLite::Database db(db_, SQLite::OPEN_READWRITE);
    SQLite::Statement insert(db, R"sql(
      INSERT INTO spool_evidence (recipient, mailbox, sha256, repeats, size, filenames,
                                  window_start, window_end, scanned_at)
      VALUES (?1, '/var/mail/bob', ?2, 6, 43210, ?3, ?4, ?5, ?6))sql");
    insert.bind(1, "bob@example.test");
    insert.bind(2, std::string(64, 'a'));
    insert.bind(3, "invoice.pdf; <b>invoice</b>.pdf");
    insert.bind(4, flood + 30);
    insert.bind(5, flood + 400);
    insert.bind(6, flood + 900);
    insert.exec();
  }

  test_support::temp_dir dir_;
  std::string db_;
};

TEST_F(ReportCommandTest, FloodedRecipientGetsItsChartAndStory) {
  const std::string file = dir_.file("report.html");
  const result r = report({"--html", file, "-d", db_, "--since", "2d"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);  // it names people
  const std::string html = slurp(file);

  // The overview: three UTC days (Dec 03 18:00 to Dec 05 18:00), both episodes on the last,
  // peaking at defer (one stacked bar).
  const std::string daily = [&] {
    std::smatch m;
    std::regex_search(html, m, std::regex("<svg [^>]*data-chart=\"episodes-per-day\"[^>]*>"));
    return m.str();
  }();
  EXPECT_EQ(attribute(daily, "data-days"), "3");
  EXPECT_EQ(attribute(daily, "data-episodes"), "2");
  EXPECT_EQ(attribute(daily, "data-bars"), "1");

  // bob: every one of the 48 hours has mail, one episode, verdicts in two hours (a flag mark).
  const std::string chart = tag_of(html, "svg", "bob@example.test");
  ASSERT_FALSE(chart.empty());
  EXPECT_EQ(attribute(chart, "data-hours"), "48");
  EXPECT_EQ(attribute(chart, "data-bars"), "48");
  EXPECT_EQ(attribute(chart, "data-baseline-points"), "48");
  EXPECT_EQ(attribute(chart, "data-episodes"), "1");
  EXPECT_EQ(attribute(chart, "data-marks"), "2");
  EXPECT_EQ(attribute(chart, "data-max"), "500");
  EXPECT_NE(html.find("<rect class=\"mark flag\""), std::string::npos);
  EXPECT_NE(html.find("2026-12-05 14:00 UTC: 10 defer, 1 warn"), std::string::npos);

  // The flood hour against what twelve steady days taught: two an hour (the median, no spread).
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      html, m,
      std::regex("2026-12-05 14:00 UTC: 302 messages \\(accepted 302\\), expected ([0-9.]+)")));
  EXPECT_EQ(m[1].str(), "2");
  // ...and an ordinary hour as expected.
  EXPECT_NE(html.find("2026-12-05 12:00 UTC: 2 messages (accepted 2), expected 2"),
            std::string::npos);

  // The story: the WARN and the DEFER with their reasons, who sent it, what the spool saw.
  EXPECT_NE(html.find("WARN rcptguard: bob@example.test 14 msgs/1m, baseline 0"),
            std::string::npos);
  EXPECT_NE(html.find("DEFER_IF_PERMIT 4.2.1 rcptguard: bob@example.test 240 msgs/10m"),
            std::string::npos);
  EXPECT_NE(html.find("<b>single_client</b> 0.50: 240 against 20 (100% from one client)"),
            std::string::npos);
  EXPECT_TRUE(std::regex_search(
      html,
      std::regex("<span class=\"addr\">192\\.0\\.2\\.66</span></td><td class=\"num\">12</td>")));
  EXPECT_NE(html.find("<code>aaaaaaaaaaaaaaaa</code></td><td class=\"num\">6</td>"),
            std::string::npos);
  EXPECT_NE(html.find("invoice.pdf; &lt;b&gt;invoice&lt;/b&gt;.pdf"), std::string::npos);

  // The busiest deviation is bob's flood hour, 302 against 2; the ticket inbox deviates less
  // (its storm) and has no section of its own.
  const std::size_t table = html.find("Top deviating recipients");
  const std::size_t bob_row = html.find("bob@example.test</span></a></td>", table);
  const std::size_t tickets_row = html.find("tickets@example.test", table);
  ASSERT_NE(bob_row, std::string::npos);
  ASSERT_NE(tickets_row, std::string::npos);
  EXPECT_LT(bob_row, tickets_row);
  EXPECT_NE(html.find("151.0&#215;"), std::string::npos);
  EXPECT_TRUE(tag_of(html, "section", "tickets@example.test").empty());

  // The hostile address has its section, escaped everywhere.
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_FALSE(tag_of(html, "section", hostile_escaped).empty());
  EXPECT_NE(html.find("rcptguard: " + hostile_escaped + " 40 msgs/10m"), std::string::npos);
}

TEST_F(ReportCommandTest, RecipientOptionAddsAQuietOneNormalised) {
  const std::string file = dir_.file("r.html");
  const result r = report(
      {"--html", file, "-d", db_, "--since", "2d", "--recipient", "<Tickets+x@Example.test>"});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string html = slurp(file);
  const std::string section = tag_of(html, "section", "tickets@example.test");
  ASSERT_FALSE(section.empty());
  EXPECT_EQ(attribute(section, "id"), "r3");  // after the two flagged ones
  EXPECT_EQ(attribute(section, "data-episodes"), "0");
  EXPECT_NE(html.find("asked for"), std::string::npos);
  const std::string chart = tag_of(html, "svg", "tickets@example.test");
  EXPECT_EQ(attribute(chart, "data-bars"), "48");
  EXPECT_EQ(attribute(chart, "data-marks"), "0");
}

TEST_F(ReportCommandTest, AbsoluteTimesAndStandardOutput) {
  const result r = report({"--html", "-", "-d", db_, "--since", "2026-12-05T13:00Z", "--until",
                           "2026-12-05T16:00:00+00:00"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_EQ(attribute(tag_of(r.out, "svg", "bob@example.test"), "data-hours"), "3");
  EXPECT_NE(r.out.find("2026-12-05 13:00 to 2026-12-05 16:00 UTC"), std::string::npos);
}

TEST_F(ReportCommandTest, EmptyPeriodSaysSo) {
  const result r =
      report({"--html", "-", "-d", db_, "--since", "2026-01-01", "--until", "2026-01-02T00:00Z"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("No alert episode started between"), std::string::npos);
  EXPECT_NE(r.out.find("No mail recorded between"), std::string::npos);
  EXPECT_EQ(r.out.find("<section class=\"recipient\""), std::string::npos);
}

TEST_F(ReportCommandTest, ExitCodes) {
  const std::string file = dir_.file("x.html");
  EXPECT_EQ(report({"--help"}).code, 0);
  EXPECT_EQ(report({"-d", db_}).code, 2);  // no --html
  EXPECT_EQ(report({"--html", file, "-d", db_, "--since", "yesterday"}).code, 2);
  EXPECT_EQ(report({"--html", file, "-d", db_, "--since", "2026-02-30"}).code, 2);
  EXPECT_EQ(report({"--html", file, "-d", db_, "--since", "1h", "--until", "2h"}).code, 2);
  EXPECT_EQ(report({"--html", file, "-d", db_, "--since", "400d"}).code, 2);
  EXPECT_EQ(report({"--html", file, "-d", db_, "--bogus"}).code, 2);
  EXPECT_EQ(report({"--html", file, "-d", db_, "--recipient", "<>"}).code, 2);
  const result missing = report({"--html", file, "-d", dir_.file("missing.db")});
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("does not exist"), std::string::npos) << missing.err;
  const result unwritable = report({"--html", dir_.file("no/such/dir/r.html"), "-d", db_});
  EXPECT_EQ(unwritable.code, 1);
  EXPECT_NE(unwritable.err.find("cannot create"), std::string::npos) << unwritable.err;
  EXPECT_FALSE(std::filesystem::exists(file));  // nothing half-written by the failures
}

// ---------------------------------------------------------------------------------------------
// Several nodes' databases (a cluster store): each node stored only the RCPTs it answered, so
// the report sums them; one flood carries the same cluster_id on both nodes and is one episode
// naming both.

/// A node's share of the mail: twelve days of bob at `per_hour` an hour, `flooding` RCPTs of the
/// flood from one client with `defers` DEFERs, and bob's episode of the flood.
decision::outbox node_share(int per_hour, int flooding, int defers, std::int64_t started,
                            std::int64_t updated, double score, const std::string& summary) {
  decision::outbox b;
  for (std::int64_t t = now_s - 12 * 24 * hour; t < now_s; t += hour) {
    for (int i = 0; i < per_hour; ++i) {
      b.deliveries.push_back(delivery(t + 60 + i * 600, "bob@example.test",
                                      "friend" + std::to_string(i) + "@partner.example", true));
    }
  }
  for (int i = 0; i < flooding; ++i) {
    decision::delivery_record d = delivery(flood + i * 3, "bob@example.test",
                                           "x" + std::to_string(i) + "@bomb.example", true);
    d.client = "192.0.2.66";
    b.deliveries.push_back(d);
  }
  for (int i = 0; i < defers; ++i) {
    b.verdicts.push_back(verdict(flood + 180 + i * 30, "bob@example.test",
                                 decision::verdict_level::defer,
                                 "x" + std::to_string(90 + i) + "@bomb.example"));
  }
  decision::episode_record e =
      store::testing::episode("bob@example.test", started, updated, true, score);
  e.cluster_id = "mx1:" + std::to_string(flood + 60);  // the first node to see it named it
  e.summary = summary;
  b.episodes = {e};
  return b;
}

TEST(ReportNodes, VolumesAreSummedAndOneFloodIsOneEpisodeNamingItsNodes) {
  test_support::temp_dir dir;
  const std::string mx1 = store::testing::write_node_database(
      dir.file("mx1.db"), "mx1",
      node_share(2, 200, 3, flood + 60, flood + 1800, 4.5, "peak seen on mx1"));
  decision::outbox mx2_share =
      node_share(1, 100, 2, flood + 62, flood + 2400, 3.0, "peak seen on mx2");
  // carol's episode is mx2's alone, without a flood id (say Redis was down).
  mx2_share.episodes.push_back(
      store::testing::episode("carol@example.test", now_s - 3000, now_s - 2000, false, 2.0));
  const std::string mx2 = store::testing::write_node_database(dir.file("mx2.db"), "mx2", mx2_share);

  const result r = report({"--html", "-", "-d", mx1, "-d", mx2, "--since", "2d"});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string& html = r.out;

  // Which nodes it covers, in the header and with their files in the footer.
  EXPECT_NE(html.find("<p id=\"nodes\" data-nodes=\"2\">Nodes: <b>mx1, mx2</b>."),
            std::string::npos);
  EXPECT_NE(html.find("mx1.db</span> (mx1), <span class=\"addr\">"), std::string::npos);
  EXPECT_NE(html.find("mx2.db</span> (mx2)."), std::string::npos);

  // Volumes summed: 48 hours of 2 + 1, and the flood's 200 + 100; bob is one recipient.
  EXPECT_NE(html.find("<b>444</b>messages"), std::string::npos);
  EXPECT_NE(html.find("<b>1</b>recipients with mail"), std::string::npos);
  EXPECT_NE(html.find("2026-12-05 14:00 UTC: 303 messages (accepted 303), expected 3"),
            std::string::npos);
  // ...and the history the baseline learned from is summed too: three an hour.
  EXPECT_NE(html.find("2026-12-05 12:00 UTC: 3 messages (accepted 3), expected 3"),
            std::string::npos);
  // The flood's client, with both nodes' DEFERs.
  EXPECT_TRUE(std::regex_search(
      html,
      std::regex("<span class=\"addr\">192\\.0\\.2\\.66</span></td><td class=\"num\">5</td>")));

  // Two episodes, not three: bob's flood once, carol's.
  EXPECT_NE(html.find("<b>2</b>alert episodes"), std::string::npos);
  const std::string daily = [&] {
    std::smatch m;
    std::regex_search(html, m, std::regex("<svg [^>]*data-chart=\"episodes-per-day\"[^>]*>"));
    return m.str();
  }();
  EXPECT_EQ(attribute(daily, "data-episodes"), "2");
  EXPECT_EQ(attribute(tag_of(html, "section", "bob@example.test"), "data-episodes"), "1");
  // In bob's section: from the first node's start to the last node's end, both nodes, the
  // flood's id, both nodes' verdicts, and the peak of the node with the highest score.
  const std::string flood_id = "mx1:" + std::to_string(flood + 60);
  const std::regex bob_flood(
      "<td><span class=\"when\">2026-12-05 14:01</span></td><td>2026-12-05 14:40</td>"
      "<td>mx1, mx2</td><td><code>" +
      flood_id +
      "</code></td>(<td[^>]*>[^<]*</td>|<td><span class=\"badge defer\">defer</span></td>)*"
      "<td class=\"num\">5</td><td>peak seen on mx1</td>");
  EXPECT_TRUE(std::regex_search(html, bob_flood));
  EXPECT_EQ(html.find("peak seen on mx2"), std::string::npos);
  EXPECT_NE(html.find("<td>mx2</td><td><code></code></td>"), std::string::npos)
      << "carol's episode: mx2's, no flood id";

  // Each explanation names the node that answered.
  const std::size_t why = html.find("Why: the reasons", html.find("data-recipient=\"bob@"));
  ASSERT_NE(why, std::string::npos);
  const std::string why_table = html.substr(why, html.find("</table>", why) - why);
  EXPECT_NE(why_table.find("<th>Node</th>"), std::string::npos);
  EXPECT_NE(why_table.find("<td>mx1</td>"), std::string::npos) << why_table;
  EXPECT_NE(why_table.find("<td>mx2</td>"), std::string::npos) << why_table;

  // One node's database alone: its own share, no node columns, as without a cluster.
  const result one = report({"--html", "-", "-d", mx1, "--since", "2d"});
  ASSERT_EQ(one.code, 0) << one.err;
  EXPECT_NE(one.out.find("2026-12-05 14:00 UTC: 202 messages (accepted 202)"), std::string::npos);
  EXPECT_EQ(one.out.find("id=\"nodes\""), std::string::npos);
  EXPECT_EQ(one.out.find("<th>Nodes</th>"), std::string::npos);
}

TEST(ReportNodes, AMissingNodeDatabaseFailsNamingIt) {
  test_support::temp_dir dir;
  const std::string mx1 = store::testing::write_node_database(
      dir.file("mx1.db"), "mx1", node_share(2, 0, 0, flood, flood + 60, 4.5, "mx1"));
  const std::string missing = dir.file("mx2.db");
  const std::string file = dir.file("r.html");
  const result r = report({"--html", file, "-d", mx1, "-d", missing});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "rcptguard report: database " + missing +
                       " does not exist (give -d PATH or set store.path)\n");
  EXPECT_FALSE(std::filesystem::exists(file));
  EXPECT_FALSE(std::filesystem::exists(missing));  // never created
}

}  // namespace
}  // namespace rcptguard::cli
