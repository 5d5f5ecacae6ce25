// `rcptguard review` end to end in-process: real databases written by the store, the argv front
// end, and the output parsed back: JSON Lines by nlohmann's strict parser, CSV by a strict
// little RFC 4180 reader, tables by text. Each scenario is built so its rows can be written down.
#include "cli/review_command.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>  // open_memstream (POSIX)
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/review_baseline.hpp"
#include "decision/baseline.hpp"
#include "decision/events.hpp"
#include "scanner/report.hpp"
#include "scanner/scan_state.hpp"
#include "store/operator_actions.hpp"
#include "store/review.hpp"
#include "store/spool.hpp"
#include "store/store.hpp"
#include "tests/cli/cli_test_support.hpp"
#include "tests/common/temp_dir.hpp"
#include "tests/store/store_test_util.hpp"

namespace rcptguard::cli {
namespace {

// Every output line must parse as JSON on its own (nlohmann's parser is strict: it refuses
// control characters, bad escapes and invalid UTF-8).
using json = nlohmann::json;

std::vector<json> parse_lines(const std::string& text) {
  std::vector<json> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t end = text.find('\n', start);
    if (end == std::string::npos) throw std::runtime_error("last line not terminated");
    lines.push_back(json::parse(std::string_view{text}.substr(start, end - start)));
    start = end + 1;
  }
  return lines;
}

/// The JSON Lines without the closing summary line (which is checked to be one).
std::vector<json> records_of(const std::string& text) {
  std::vector<json> lines = parse_lines(text);
  if (lines.empty() || lines.back()["type"] != "summary") {
    throw std::runtime_error("no summary line");
  }
  lines.pop_back();
  return lines;
}

json summary_of(const std::string& text) {
  return parse_lines(text).back();
}

std::set<std::string> keys_of(const json& j) {
  std::set<std::string> keys;
  for (const auto& item : j.items()) keys.insert(item.key());
  return keys;
}

/// RFC 4180, strictly: CRLF after every record, fields quoted when they hold a comma, quote, CR
/// or LF, quotes doubled inside; every record as wide as the header.
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> records;
  std::vector<std::string> record;
  std::string field;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] == '"') {
      for (++i;; ++i) {
        if (i >= text.size()) throw std::runtime_error("unterminated quote");
        if (text[i] == '"') {
          if (i + 1 < text.size() && text[i + 1] == '"') {
            field += '"';
            ++i;
            continue;
          }
          ++i;
          break;
        }
        field += text[i];
      }
    } else {
      while (i < text.size() && text[i] != ',' && text[i] != '\r' && text[i] != '\n') {
        if (text[i] == '"') throw std::runtime_error("quote inside an unquoted field");
        field += text[i++];
      }
    }
    if (i < text.size() && text[i] == ',') {
      record.push_back(std::move(field));
      field.clear();
      ++i;
      continue;
    }
    if (text.compare(i, 2, "\r\n") != 0) throw std::runtime_error("record not ended by CRLF");
    record.push_back(std::move(field));
    field.clear();
    records.push_back(std::move(record));
    record.clear();
    i += 2;
  }
  for (const auto& r : records) {
    if (r.size() != records.front().size()) throw std::runtime_error("ragged CSV");
  }
  return records;
}

/// Each CSV cell equals its JSON field: strings as they are (for text without hostile bytes),
/// numbers by value, booleans as true/false, lists as their JSON text, absent fields empty.
void expect_csv_matches(const std::vector<std::vector<std::string>>& csv,
                        const std::vector<json>& records) {
  ASSERT_FALSE(csv.empty());
  ASSERT_EQ(csv.size(), records.size() + 1);
  const std::vector<std::string>& header = csv.front();
  for (std::size_t r = 0; r < records.size(); ++r) {
    SCOPED_TRACE("CSV row " + std::to_string(r + 1));
    std::set<std::string> seen;
    for (std::size_t c = 0; c < header.size(); ++c) {
      const std::string& cell = csv[r + 1][c];
      if (!records[r].contains(header[c])) {
        EXPECT_EQ(cell, "") << header[c];
        continue;
      }
      seen.insert(header[c]);
      const json& v = records[r][header[c]];
      if (v.is_string()) {
        EXPECT_EQ(cell, v.get<std::string>()) << header[c];
      } else if (v.is_number()) {
        EXPECT_DOUBLE_EQ(std::stod(cell), v.get<double>()) << header[c];
      } else if (v.is_boolean()) {
        EXPECT_EQ(cell, v.get<bool>() ? "true" : "false") << header[c];
      } else if (v.is_null()) {
        EXPECT_EQ(cell, "") << header[c];
      } else {
        EXPECT_EQ(json::parse(cell), v) << header[c];
      }
    }
    EXPECT_EQ(seen, keys_of(records[r])) << "a JSON field has no CSV column";
  }
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  for (std::size_t start = 0; start < text.size();) {
    const std::size_t end = text.find('\n', start);
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

std::vector<std::string> words_of(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

using zone = testing::time_zone;

using store::testing::at;
using store::testing::delivery;
using store::testing::t0;
using store::testing::verdict;

constexpr std::int64_t hour = 3600;
constexpr std::int64_t day = 86400;

using result = testing::captured;

/// Runs `rcptguard review ARGS...` in-process at `now` with stdout and stderr captured.
result run(std::int64_t now, const std::vector<std::string>& args) {
  return testing::run_captured(
      "review", args, [&](int argc, char** argv, std::FILE* out, std::FILE* err) {
        return command_review(argc, argv, review_io{.out = out, .err = err, .now = at(now)});
      });
}

// ---------------------------------------------------------------------------------------------
// Fixture: a database with episodes, verdicts with reasons, deliveries and correspondents.

decision::episode_record episode(std::string recipient, std::int64_t started, std::int64_t updated,
                                 bool ended) {
  return store::testing::episode(std::move(recipient), started, updated, ended, 4.5);
}

// Hostile text from the network: an ANSI escape, a newline, a quote, a backslash, valid UTF-8
// (é) and an invalid byte.
const std::string hostile_recipient = "ev\x1b[31mil\n\"q\\\xc3\xa9\xff@x.test";

class ReviewCommandTest : public ::testing::Test {
 protected:
  /// The review's "now": two hours after t0.
  static constexpr std::int64_t now_s = t0 + 7200;

  void SetUp() override {
    db_ = dir_.file("rcptguard.db");

    store::store s(store::testing::options_for(db_));
    decision::outbox b;
    for (int i = 0; i < 6; ++i) {
      b.deliveries.push_back(delivery(t0 + std::int64_t{i} * 60, "bob@example.test",
                                      "s" + std::to_string(i) + "@x.test", true));
    }
    b.deliveries.push_back(delivery(t0 + 3600, "bob@example.test", "alice@example.test", true));
    b.deliveries.push_back(delivery(t0 + 10, "carol@example.test", "alice@example.test", true));
    b.deliveries.push_back(delivery(t0 + 20, "carol@example.test", "x@x.test", false));
    b.verdicts = {verdict(t0 + 300, "bob@example.test"), verdict(t0 + 200, "bob@example.test")};
    b.verdicts[0].monitor_only = true;
    b.verdicts[0].action_text = "WARN rcptguard: flood";
    b.episodes = {episode("bob@example.test", t0 + 200, t0 + 1800, true),
                  episode("carol@example.test", t0 + 5000, t0 + 5100, false),
                  episode(hostile_recipient, t0 + 6000, t0 + 6000, false),
                  episode("old@example.test", t0 - std::int64_t{30} * 86400,
                          t0 - std::int64_t{30} * 86400 + 60, true)};
    s.apply(b);
  }

  result review(std::initializer_list<std::string> args) const { return run(now_s, args); }

  test_support::temp_dir dir_;
  std::string db_;
};

// ---------------------------------------------------------------------------------------------

TEST_F(ReviewCommandTest, AlertsJsonLinesHaveTheSiemShape) {
  const result r = review({"alerts", "-d", db_, "--format", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<json> lines = records_of(r.out);
  ASSERT_EQ(lines.size(), 3u);  // the 30-day-old episode is outside the default 7d

  const std::set<std::string> expected_keys{
      "type",      "time",       "recipient", "state",  "verdict",    "score",   "window",
      "observed",  "baseline",   "reasons",   "source", "attack",     "updated", "ended",
      "closed_by", "duration_s", "verdicts",  "id",     "cluster_id", "node"};
  for (const json& line : lines) EXPECT_EQ(keys_of(line), expected_keys);

  // Newest start first: hostile (t0+6000), carol (t0+5000), bob (t0+200).
  const json& bob = lines[2];
  EXPECT_EQ(bob["type"].get<std::string>(), "episode");
  EXPECT_EQ(bob["node"], "rcptguard.db") << "no daemon named it: its file's name";
  EXPECT_EQ(bob["time"].get<std::string>(), "2024-03-04T10:03:20Z");
  EXPECT_EQ(bob["recipient"].get<std::string>(), "bob@example.test");
  EXPECT_EQ(bob["state"].get<std::string>(), "closed");
  EXPECT_EQ(bob["verdict"].get<std::string>(), "defer");
  EXPECT_DOUBLE_EQ(bob["score"].get<double>(), 4.5);
  EXPECT_EQ(bob["window"].get<std::string>(), "10m");
  EXPECT_DOUBLE_EQ(bob["observed"].get<double>(), 240);
  EXPECT_DOUBLE_EQ(bob["baseline"].get<double>(), 6);
  EXPECT_EQ(bob["reasons"].get<std::string>(),
            "rcptguard: bob@example.test 240 msgs/10m, baseline 6");
  EXPECT_EQ(bob["source"].get<std::string>(), "policy");
  ASSERT_EQ(bob["attack"].size(), 2u);
  EXPECT_EQ(bob["attack"][0].get<std::string>(), "T1667");
  EXPECT_EQ(bob["attack"][1].get<std::string>(), "AN1009");
  EXPECT_EQ(bob["ended"].get<std::string>(), "2024-03-04T10:30:00Z");
  EXPECT_DOUBLE_EQ(bob["duration_s"].get<double>(), 1600);
  EXPECT_DOUBLE_EQ(bob["verdicts"].get<double>(), 2);

  const json& carol = lines[1];
  EXPECT_EQ(carol["recipient"].get<std::string>(), "carol@example.test");
  EXPECT_EQ(carol["state"].get<std::string>(), "open");
  EXPECT_TRUE(carol["ended"].is_null());

  // Control characters escaped, valid UTF-8 kept, the invalid byte replaced.
  EXPECT_EQ(lines[0]["recipient"].get<std::string>(),
            "ev\x1b[31mil\n\"q\\\xc3\xa9\xef\xbf\xbd@x.test");
  EXPECT_NE(r.out.find("\\u001b"), std::string::npos);
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos);

  // The last line: the window, how many there are, and that none was left out.
  const json summary = summary_of(r.out);
  EXPECT_EQ(summary["view"], "alerts");
  EXPECT_EQ(summary["since"], "2024-02-26T12:00:00Z");
  EXPECT_EQ(summary["until"], "2024-03-04T12:00:00Z");
  EXPECT_EQ(summary["total"], 3);
  EXPECT_EQ(summary["shown"], 3);
  EXPECT_EQ(summary["truncated"], false);
  EXPECT_TRUE(summary["limit"].is_null());
}

TEST_F(ReviewCommandTest, AlertsTableIsAlignedAndSanitised) {
  const result r = review({"alerts", "-d", db_});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("RECIPIENT"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2024-03-04 10:03:20"), std::string::npos);
  EXPECT_NE(r.out.find("26m40s"), std::string::npos);  // bob's duration
  EXPECT_EQ(r.out.find("old@example.test"), std::string::npos);
  // No raw control byte or non-ASCII byte reaches the terminal.
  EXPECT_NE(r.out.find("ev?[31mil?\"q\\???@x.test"), std::string::npos) << r.out;
  for (const char c : r.out) {
    const auto u = static_cast<unsigned char>(c);
    EXPECT_TRUE(c == '\n' || (u >= 0x20 && u < 0x7f)) << static_cast<int>(u);
  }
  // Four lines (header + 3 rows), and every row's second column starts where the header's does.
  const std::vector<std::string> lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 4u);
  const std::size_t column = lines[0].find("RECIPIENT");
  for (std::size_t i = 1; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i].find(i == 3 ? "bob" : i == 2 ? "carol" : "ev"), column) << lines[i];
  }

  const result none =
      review({"alerts", "-d", db_, "--since", "2024-02-20T00:00Z", "--until", "2024-02-21T00:00Z"});
  ASSERT_EQ(none.code, 0);
  EXPECT_EQ(none.out, "No alert episodes from 2024-02-20 00:00:00 to 2024-02-21 00:00:00 UTC.\n");
}

TEST_F(ReviewCommandTest, AlertsCsvHasTheJsonFields) {
  const result csv = review({"alerts", "-d", db_, "--format", "csv", "--since", "90d"});
  ASSERT_EQ(csv.code, 0) << csv.err;
  EXPECT_EQ(csv.err, "");
  const auto rows = parse_csv(csv.out);
  const std::vector<json> records =
      records_of(review({"alerts", "-d", db_, "--format", "json", "--since", "90d"}).out);
  ASSERT_EQ(records.size(), 4u);
  EXPECT_EQ(rows[0],
            (std::vector<std::string>{
                "type",      "time",       "recipient",  "state",    "verdict", "score",   "window",
                "observed",  "baseline",   "reasons",    "source",   "attack",  "updated", "ended",
                "closed_by", "cluster_id", "duration_s", "verdicts", "id",      "node"}));
  // The hostile row: control bytes and the invalid byte are '?' in CSV, é stays, the quote is
  // doubled inside a quoted field.
  EXPECT_EQ(rows[1][2], "ev?[31mil?\"q\\\xc3\xa9?@x.test");
  EXPECT_NE(csv.out.find(",\"ev?[31mil?\"\"q\\"), std::string::npos);
  // The other rows, field by field; the summary (a comma inside) is quoted.
  std::vector<std::vector<std::string>> plain{rows[0]};
  plain.insert(plain.end(), rows.begin() + 2, rows.end());
  expect_csv_matches(plain, {records.begin() + 1, records.end()});
  EXPECT_NE(csv.out.find("\"rcptguard: bob@example.test 240 msgs/10m, baseline 6\""),
            std::string::npos);
  // The table lists the same episodes in the same order.
  const std::vector<std::string> table =
      lines_of(review({"alerts", "-d", db_, "--since", "90d"}).out);
  ASSERT_EQ(table.size(), 5u);
  for (std::size_t i = 2; i < 5; ++i) {
    EXPECT_EQ(words_of(table[i])[2], rows[i][2]) << table[i];  // date, time, recipient
  }
}

TEST_F(ReviewCommandTest, LimitsTellWhatTheyLeaveOut) {
  // A table cut by --limit says how many there are and how to see them.
  const result table = review({"alerts", "-d", db_, "--limit", "1", "--since", "90d"});
  ASSERT_EQ(table.code, 0) << table.err;
  const std::vector<std::string> lines = lines_of(table.out);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[2],
            "showing 1 of 4 alert episodes; --limit 0 shows all, or narrow --since/--until");
  EXPECT_EQ(lines_of(review({"alerts", "-d", db_, "--limit", "0", "--since", "90d"}).out).size(),
            5u);
  // JSON: an explicit limit applies and the summary says so.
  const result json_cut =
      review({"alerts", "-d", db_, "--limit", "2", "--since", "90d", "--format", "json"});
  EXPECT_EQ(records_of(json_cut.out).size(), 2u);
  const json summary = summary_of(json_cut.out);
  EXPECT_EQ(summary["total"], 4);
  EXPECT_EQ(summary["shown"], 2);
  EXPECT_EQ(summary["truncated"], true);
  EXPECT_EQ(summary["limit"], 2);
  // CSV: the rows asked for, and a note on stderr, never inside the CSV.
  const result csv_cut =
      review({"alerts", "-d", db_, "--limit", "2", "--since", "90d", "--format", "csv"});
  EXPECT_EQ(parse_csv(csv_cut.out).size(), 3u);
  EXPECT_EQ(csv_cut.err,
            "rcptguard review: showing 2 of 4 alert episodes; --limit 0 shows all, or narrow "
            "--since/--until\n");
}

TEST(ReviewLimits, TheDefaultLimitCutsTablesOnly) {
  test_support::temp_dir dir;
  const std::string db = dir.file("many.db");
  {
    store::store s(store::testing::options_for(db));
    decision::outbox b;
    for (int i = 0; i < 55; ++i) {
      b.episodes.push_back(
          episode("r" + std::to_string(i) + "@example.test", t0 + i * 60, t0 + i * 60 + 30, true));
    }
    s.apply(b);
  }
  const std::int64_t now = t0 + day;
  const result table = run(now, {"alerts", "-d", db});
  const std::vector<std::string> lines = lines_of(table.out);
  ASSERT_EQ(lines.size(), 1u + 50u + 1u);
  EXPECT_EQ(lines.back(),
            "showing 50 of 55 alert episodes; --limit 0 shows all, or narrow --since/--until");
  const result json_all = run(now, {"alerts", "-d", db, "--format", "json"});
  EXPECT_EQ(records_of(json_all.out).size(), 55u);
  EXPECT_EQ(summary_of(json_all.out)["truncated"], false);
  const result csv_all = run(now, {"alerts", "-d", db, "--format", "csv"});
  EXPECT_EQ(parse_csv(csv_all.out).size(), 56u);
  EXPECT_EQ(csv_all.err, "");
}

// ---------------------------------------------------------------------------------------------
// top: five weeks of history, then three hours in which bob is flooded, the list is a little
// busier than usual, a new address gets its first mail and a quiet one one message.
//
//   recipient  history (5 weeks)    window (3 h)            expected          deviation
//   list       20 every hour        25 every hour = 75      3 x 20 = 60       1.25
//   bob        1 every hour         1 + 40 + 1    = 42      3 x 1  = 3        14.0
//   new        none                 3 in the last hour      3 x prior 0.5     2.0
//   quiet      1 a day at 03:00     1                       0 (floor 1)       1.0
//
// With under 20 recipients of a week's history the prior is the built-in one: 0.25 an hour and
// a spread of 0.25, so 0.5 expected per hour.

class ReviewTopTest : public ::testing::Test {
 protected:
  static constexpr std::int64_t start = t0 + 5 * 7 * day;  // 2024-04-08T10:00:00Z, a Monday
  static constexpr std::int64_t now = start + 3 * hour;

  void SetUp() override {
    store::store s(store::testing::options_for(db_));
    decision::outbox b;
    for (std::int64_t h = t0; h < start; h += hour) {
      for (int i = 0; i < 20; ++i) {
        b.deliveries.push_back(delivery(h + i * 60, "list@example.test", "news@lists.test", true));
      }
      b.deliveries.push_back(delivery(h + 1800, "bob@example.test", "alice@example.test", true));
      if ((h / hour) % 24 == 3) {
        b.deliveries.push_back(delivery(h + 60, "quiet@example.test", "cron@example.test", true));
      }
    }
    for (int k = 0; k < 3; ++k) {
      const std::int64_t h = start + k * hour;
      for (int i = 0; i < 25; ++i) {
        b.deliveries.push_back(delivery(h + i * 60, "list@example.test", "news@lists.test", true));
      }
    }
    b.deliveries.push_back(delivery(start + 1800, "bob@example.test", "alice@example.test", true));
    for (int i = 0; i < 40; ++i) {
      b.deliveries.push_back(delivery(start + hour + i * 30, "bob@example.test",
                                      "bot" + std::to_string(i) + "@flood.test", true));
    }
    b.deliveries.push_back(
        delivery(start + 2 * hour + 1800, "bob@example.test", "alice@example.test", true));
    for (int i = 0; i < 3; ++i) {
      b.deliveries.push_back(
          delivery(start + 2 * hour + i * 60, "new@example.test", "hr@example.test", true));
    }
    b.deliveries.push_back(delivery(start + 600, "quiet@example.test", "cron@example.test", true));
    b.verdicts = {verdict(start + hour + 900, "bob@example.test")};
    s.apply(b);
  }

  test_support::temp_dir dir_;
  std::string db_ = dir_.file("top.db");
};

TEST_F(ReviewTopTest, RanksByDeviationFromTheBaseline) {
  const result r = run(now, {"top", "-d", db_, "--since", "3h", "--format", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<json> rows = records_of(r.out);
  struct want {
    const char* recipient;
    double deviation;
    std::int64_t observed;
    double expected;
    std::int64_t verdicts;
  };
  const std::vector<want> expected{{"bob@example.test", 14.0, 42, 3.0, 1},
                                   {"new@example.test", 2.0, 3, 1.5, 0},
                                   {"list@example.test", 1.25, 75, 60.0, 0},
                                   {"quiet@example.test", 1.0, 1, 0.0, 0}};
  ASSERT_EQ(rows.size(), expected.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    SCOPED_TRACE(expected[i].recipient);
    EXPECT_EQ(rows[i]["type"], "top");
    EXPECT_EQ(rows[i]["recipient"], expected[i].recipient);
    EXPECT_NEAR(rows[i]["deviation"].get<double>(), expected[i].deviation, 1e-9);
    EXPECT_EQ(rows[i]["observed"], expected[i].observed);
    EXPECT_EQ(rows[i]["accepted"], expected[i].observed);
    EXPECT_EQ(rows[i]["attempted"], expected[i].observed);
    EXPECT_NEAR(rows[i]["expected"].get<double>(), expected[i].expected, 1e-9);
    EXPECT_EQ(rows[i]["verdicts"], expected[i].verdicts);
    EXPECT_EQ(rows[i]["class"], "default");
    EXPECT_EQ(rows[i]["since"], "2024-04-08T10:00:00Z");
    EXPECT_EQ(rows[i]["until"], "2024-04-08T13:00:00Z");
  }
  EXPECT_EQ(rows[0]["peak_hourly_senders"], 40);
  EXPECT_EQ(rows[0]["active_hours"], 3);
  EXPECT_EQ(rows[0]["bytes"], 42000);
  const json summary = summary_of(r.out);
  EXPECT_EQ(summary["ranked_by"], "deviation");
  EXPECT_EQ(summary["total"], 4);
  EXPECT_EQ(summary["truncated"], false);

  // CSV carries the same fields; the table the same order and numbers.
  const result csv = run(now, {"top", "-d", db_, "--since", "3h", "--format", "csv"});
  expect_csv_matches(parse_csv(csv.out), rows);
  const result table = run(now, {"top", "-d", db_, "--since", "3h"});
  const std::vector<std::string> lines = lines_of(table.out);
  ASSERT_EQ(lines.size(), 5u) << table.out;
  EXPECT_EQ(words_of(lines[0])[0], "RECIPIENT");
  EXPECT_EQ(words_of(lines[0])[1], "DEVIATION");
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const std::vector<std::string> w = words_of(lines[i + 1]);
    EXPECT_EQ(w[0], rows[i]["recipient"].get<std::string>());
    EXPECT_NEAR(std::stod(w[1]), rows[i]["deviation"].get<double>(), 0.005);
    EXPECT_EQ(w[2], std::to_string(rows[i]["observed"].get<std::int64_t>()));
    EXPECT_NEAR(std::stod(w[3]), rows[i]["expected"].get<double>(), 0.005);
    EXPECT_EQ(w[4], std::to_string(rows[i]["accepted"].get<std::int64_t>()));
  }
}

TEST_F(ReviewTopTest, LimitKeepsTheMostUnusual) {
  const result table = run(now, {"top", "-d", db_, "--since", "3h", "--limit", "2"});
  ASSERT_EQ(table.code, 0) << table.err;
  const std::vector<std::string> lines = lines_of(table.out);
  ASSERT_EQ(lines.size(), 4u) << table.out;
  EXPECT_EQ(words_of(lines[1])[0], "bob@example.test");
  EXPECT_EQ(words_of(lines[2])[0], "new@example.test");
  EXPECT_EQ(lines[3], "showing 2 of 4 recipients; --limit 0 shows all, or narrow --since/--until");
  const result one =
      run(now, {"top", "-d", db_, "--since", "3h", "--limit", "1", "--format", "json"});
  ASSERT_EQ(records_of(one.out).size(), 1u);
  EXPECT_EQ(records_of(one.out)[0]["recipient"], "bob@example.test");
  EXPECT_EQ(summary_of(one.out)["truncated"], true);
}

TEST_F(ReviewTopTest, ByVolumeRanksByAcceptedMessages) {
  const result r =
      run(now, {"top", "-d", db_, "--since", "3h", "--by", "volume", "--format", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<json> rows = records_of(r.out);
  std::vector<std::string> order;
  for (const json& row : rows) order.push_back(row["recipient"]);
  EXPECT_EQ(order, (std::vector<std::string>{"list@example.test", "bob@example.test",
                                             "new@example.test", "quiet@example.test"}));
  EXPECT_NEAR(rows[1]["deviation"].get<double>(), 14.0, 1e-9);  // still a column
  EXPECT_EQ(summary_of(r.out)["ranked_by"], "volume");
  EXPECT_EQ(run(now, {"top", "-d", db_, "--by", "size"}).code, 2);
}

TEST_F(ReviewTopTest, AbsoluteAndRelativeWindowsAgree) {
  const zone berlin("Europe/Berlin");  // 2024-04-08 is summer time, +02:00
  const result relative = run(now, {"top", "-d", db_, "--since", "3h", "--format", "json"});
  ASSERT_EQ(relative.code, 0) << relative.err;
  for (const std::vector<std::string>& window :
       {std::vector<std::string>{"--since", "2024-04-08T10:00Z"},
        {"--since", "2024-04-08T12:00", "--until", "2024-04-08 15:00"},
        {"--since", "2024-04-08T12:00:00+02:00", "--until", "0s"},
        {"--since", "2024-04-08T06:00-04:00", "--until", "2024-04-08T13:00:00Z"}}) {
    std::vector<std::string> args{"top", "-d", db_, "--format", "json"};
    args.insert(args.end(), window.begin(), window.end());
    const result absolute = run(now, args);
    ASSERT_EQ(absolute.code, 0) << absolute.err;
    EXPECT_EQ(absolute.out, relative.out) << window[1];
  }
  // An hour later in local time is an hour later.
  const result later =
      run(now, {"top", "-d", db_, "--since", "2024-04-08T13:00", "--format", "json"});
  EXPECT_EQ(records_of(later.out)[0]["observed"], 41);  // bob without his 10:30 message
}

// The prior the review computes from per-recipient totals is the engine's, from full histories.
TEST(ReviewPrior, TotalsGiveTheEnginesPrior) {
  test_support::temp_dir dir;
  const std::string db = dir.file("prior.db");
  const std::int64_t target = t0 + 10 * day;
  {
    store::store s(store::testing::options_for(db));
    decision::outbox b;
    for (int r = 0; r < 30; ++r) {
      // Different lengths of history (some under a week) and volumes.
      const std::int64_t first = t0 + (r % 4) * 2 * day - (r % 3) * 7 * day;
      for (std::int64_t h = first; h < target + 5 * hour; h += hour) {
        const int n = static_cast<int>((h / hour + r) % (r % 5 + 2));
        for (int i = 0; i < n; ++i) {
          b.deliveries.push_back(delivery(h + i * 60, "r" + std::to_string(r) + "@example.test",
                                          "s" + std::to_string(i) + "@x.test", i % 3 != 0));
        }
      }
    }
    s.apply(b);
  }
  SQLite::Database read = store::open_read_only(db);
  const decision::baseline_settings config;
  const auto histories = store::load_histories(read, at(target), 5);
  const decision::baseline_prior engine =
      decision::compute_prior(histories, target, config, decision::baseline_prior{});
  const decision::baseline_prior review = review_prior(read, target, config);
  EXPECT_GT(engine.hourly, decision::baseline_prior{}.hourly);  // not the fallback
  EXPECT_DOUBLE_EQ(review.hourly, engine.hourly);
  EXPECT_DOUBLE_EQ(review.spread, engine.spread);
  EXPECT_DOUBLE_EQ(review.senders_hourly, engine.senders_hourly);
  EXPECT_DOUBLE_EQ(review.daily, engine.daily);
}

// ---------------------------------------------------------------------------------------------
// explain: bob's business-as-usual (alice writes twice an hour, for two weeks), then a flood of
// 50 requests, one every 5 s from 13:59:00, each from a new sender over eight clients, warned up
// to the 20th and deferred after; the story changes while the score climbs (stored explanations
// at the open, each new peak, the second and third reason and the escalation), the episode
// closes 10 minutes after the last request, the spool scanner finds the same attachment 38
// times, and alice goes home at 14:00. The window is 12:00 to 18:00.

class ReviewExplainTest : public ::testing::Test {
 protected:
  static constexpr std::int64_t start = t0 + 4 * hour - 60;  // 2024-03-04T13:59:00Z
  static constexpr int requests = 50;
  static constexpr std::int64_t closed = start + 5 * (requests - 1) + 600;
  static constexpr std::int64_t since = t0 + 2 * hour;  // 12:00
  static constexpr std::int64_t until = t0 + 8 * hour;  // 18:00

  static std::int64_t when(int k) { return start + 5 * k; }
  static std::string sender(int k) {
    return k == 37 ? "newcontact@partner.test" : "bot" + std::to_string(k) + "@flood.test";
  }
  static std::string client(int k) { return "203.0.113." + std::to_string(k % 8); }
  static bool defer(int k) { return k >= 20; }
  static double score(int k) { return 1.0 + 0.1 * k; }
  static std::vector<decision::reason> reasons(int k) {
    std::vector<decision::reason> r = {
        {"volume_10m", 1.0, 40.0 + k, 6, "msgs/10m " + std::to_string(40 + k)}};
    if (k >= 10) r.push_back({"sender_diversity", 0.5, 30.0 + k, 3, "senders"});
    if (k >= 35) r.push_back({"new_senders", 0.5, 20.0 + k, 1, "new senders"});
    return r;
  }
  static std::string action(int k) {
    return (defer(k) ? "DEFER_IF_PERMIT 4.7.1 rcptguard: " : "rcptguard: ") +
           std::to_string(40 + k) + " msgs/10m";
  }
  static bool peak(int k) { return std::set<int>{0, 3, 7, 12, 18, 25, 34, 45}.contains(k); }

  void SetUp() override {
    store::store s(store::testing::options_for(db_));
    decision::outbox before;
    for (std::int64_t h = t0 - 10 * hour - 14 * day; h < t0 + 4 * hour; h += hour) {
      for (const std::int64_t minute : {10, 40}) {
        before.deliveries.push_back(
            delivery(h + minute * 60, "bob@example.test", "alice@example.test", true));
      }
    }
    s.apply(before);
    for (int k = 0; k < requests; ++k) {
      decision::outbox b;
      decision::delivery_record d = delivery(when(k), "bob@example.test", sender(k), !defer(k));
      d.client = client(k);
      d.in_episode = true;
      b.deliveries.push_back(d);
      if (k % 5 == 0) {  // alice's mail in the same seconds, answered DUNNO
        b.deliveries.push_back(
            delivery(when(k), "bob@example.test", "alice@example.test", true, 3000));
      }
      decision::verdict_record v;
      v.at = at(when(k));
      v.recipient = "bob@example.test";
      v.sender = sender(k);
      v.client = client(k);
      v.level = defer(k) ? decision::verdict_level::defer : decision::verdict_level::warn;
      v.score = score(k);
      v.action_text = action(k);
      v.reasons = reasons(k);
      b.verdicts.push_back(v);
      if (peak(k)) {
        decision::episode_record e =
            store::testing::episode("bob@example.test", start, when(k), false, score(k));
        e.peak_level = v.level;
        b.episodes.push_back(e);
      }
      s.apply(b);
    }
    decision::outbox close;
    close.episodes.push_back(
        store::testing::episode("bob@example.test", start, closed, true, score(45)));
    s.apply(close);

    scanner::scan_report scan;
    scan.at = at(start + 360);
    scanner::recipient_report found;
    found.recipient = "bob@example.test";
    found.mailbox = "/var/mail/bob";
    found.evidence.repeats.push_back({"3f2a9c" + std::string(58, '0'),
                                      38,
                                      48213,
                                      at(start + 66),
                                      at(when(49) + 1),
                                      {"invoice.pdf", "invoice (1).pdf"}});
    scan.recipients.push_back(found);
    store::save_scan(s.database(), scan, scanner::scan_state{});
  }

  result explain(std::vector<std::string> extra = {}) const {
    std::vector<std::string> args{"explain", "bob@example.test",  "-d",      db_,
                                  "--since", "2024-03-04T12:00Z", "--until", "2024-03-04T18:00Z"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run(until, args);
  }

  test_support::temp_dir dir_;
  std::string db_ = dir_.file("explain.db");
};

TEST_F(ReviewExplainTest, JsonTellsTheStoryInOrder) {
  const result r = explain({"--format", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<json> lines = records_of(r.out);
  std::map<std::string, std::vector<json>> by_type;
  std::vector<std::string> order;
  for (const json& line : lines) {
    const std::string type = line["type"];
    if (order.empty() || order.back() != type) order.push_back(type);
    by_type[type].push_back(line);
  }
  EXPECT_EQ(order,
            (std::vector<std::string>{"recipient", "hour", "episode", "explanation", "sender",
                                      "client", "spool_evidence", "correspondent"}));

  // The headline: 64 RCPTs against 12 expected (2 an hour, learned from alice's mail).
  const json& head = by_type["recipient"].at(0);
  EXPECT_EQ(head["recipient"], "bob@example.test");
  EXPECT_EQ(head["class"], "default");
  EXPECT_EQ(head["since"], "2024-03-04T12:00:00Z");
  EXPECT_EQ(head["until"], "2024-03-04T18:00:00Z");
  EXPECT_EQ(head["observed"], 64);
  EXPECT_EQ(head["accepted"], 34);
  EXPECT_NEAR(head["expected"].get<double>(), 12.0, 1e-9);
  EXPECT_NEAR(head["deviation"].get<double>(), 64.0 / 12.0, 1e-9);
  EXPECT_EQ(head["history_hours"], 14 * 24 + 12);
  EXPECT_EQ(head["episodes"], 1);
  EXPECT_EQ(head["explanations"], 11);
  EXPECT_EQ(head["flagged_requests"], requests);
  EXPECT_EQ(head["correspondents"], 21);

  // Every hour of the window against its baseline.
  struct hour_want {
    const char* time;
    int observed, accepted, senders, bytes;
    bool in_episode;
  };
  const std::vector<hour_want> hours{{"2024-03-04T12:00:00Z", 2, 2, 1, 2000, false},
                                     {"2024-03-04T13:00:00Z", 17, 17, 13, 23000, true},
                                     {"2024-03-04T14:00:00Z", 45, 15, 39, 29000, true},
                                     {"2024-03-04T15:00:00Z", 0, 0, 0, 0, false},
                                     {"2024-03-04T16:00:00Z", 0, 0, 0, 0, false},
                                     {"2024-03-04T17:00:00Z", 0, 0, 0, 0, false}};
  ASSERT_EQ(by_type["hour"].size(), hours.size());
  for (std::size_t i = 0; i < hours.size(); ++i) {
    const json& h = by_type["hour"][i];
    SCOPED_TRACE(hours[i].time);
    EXPECT_EQ(h["time"], hours[i].time);
    EXPECT_EQ(h["observed"], hours[i].observed);
    EXPECT_EQ(h["attempted"], hours[i].observed);
    EXPECT_EQ(h["accepted"], hours[i].accepted);
    EXPECT_EQ(h["distinct_senders"], hours[i].senders);
    EXPECT_EQ(h["bytes"], hours[i].bytes);
    EXPECT_EQ(h["in_episode"], hours[i].in_episode);
    EXPECT_NEAR(h["expected"].get<double>(), 2.0, 1e-9);
  }

  // The episode: its peak from the stored explanations, and what was answered.
  const json& e = by_type["episode"].at(0);
  EXPECT_EQ(e["time"], "2024-03-04T13:59:00Z");
  EXPECT_EQ(e["ended"], "2024-03-04T14:13:05Z");
  EXPECT_EQ(e["state"], "closed");
  EXPECT_EQ(e["duration_s"], 845);
  EXPECT_EQ(e["peak_at"], "2024-03-04T14:02:45Z");
  EXPECT_DOUBLE_EQ(e["score"].get<double>(), score(45));
  EXPECT_EQ(e["requests"], 50);
  EXPECT_EQ(e["warned"], 20);
  EXPECT_EQ(e["deferred"], 30);
  EXPECT_EQ(e["flagged"], 0);
  EXPECT_EQ(e["would_defer"], 0);

  // How it developed: each stored explanation and what it changed.
  const std::vector<std::pair<int, std::string>> steps{{0, "opened"},
                                                       {3, "new peak"},
                                                       {7, "new peak"},
                                                       {10, "reasons changed (+sender_diversity)"},
                                                       {12, "new peak"},
                                                       {18, "new peak"},
                                                       {20, "escalated to defer"},
                                                       {25, "new peak"},
                                                       {34, "new peak"},
                                                       {35, "reasons changed (+new_senders)"},
                                                       {45, "new peak"}};
  ASSERT_EQ(by_type["explanation"].size(), steps.size());
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const json& x = by_type["explanation"][i];
    const int k = steps[i].first;
    SCOPED_TRACE("explanation at request " + std::to_string(k));
    EXPECT_EQ(x["time"], store::format_utc(when(k)));
    EXPECT_EQ(x["change"], steps[i].second);
    EXPECT_EQ(x["verdict"], defer(k) ? "defer" : "warn");
    EXPECT_DOUBLE_EQ(x["score"].get<double>(), score(k));
    EXPECT_EQ(x["action"], action(k));
    EXPECT_EQ(x["sender"], sender(k));
    EXPECT_EQ(x["client"], client(k));
    EXPECT_EQ(x["reason_details"].size(), reasons(k).size());
  }
  EXPECT_EQ(by_type["explanation"][10]["reasons"],
            "volume_10m=1.00 (msgs/10m 85); sender_diversity=0.50 (senders); "
            "new_senders=0.50 (new senders)");

  // Senders: one request each, by name; clients: .0 and .1 sent 7, the others 6.
  ASSERT_EQ(by_type["sender"].size(), 50u);
  EXPECT_EQ(by_type["sender"][0]["sender"], "bot0@flood.test");
  EXPECT_EQ(by_type["sender"][1]["sender"], "bot10@flood.test");  // '0' sorts before '@'
  EXPECT_EQ(by_type["sender"][11]["sender"], "bot1@flood.test");
  EXPECT_EQ(by_type["sender"][49]["sender"], "newcontact@partner.test");
  EXPECT_EQ(by_type["sender"][49]["deferred"], 1);
  EXPECT_EQ(by_type["sender"][49]["first"], store::format_utc(when(37)));
  struct client_want {
    const char* client;
    int requests, warned, deferred;
  };
  const std::vector<client_want> clients{{"203.0.113.0", 7, 3, 4}, {"203.0.113.1", 7, 3, 4},
                                         {"203.0.113.2", 6, 3, 3}, {"203.0.113.3", 6, 3, 3},
                                         {"203.0.113.4", 6, 2, 4}, {"203.0.113.5", 6, 2, 4},
                                         {"203.0.113.6", 6, 2, 4}, {"203.0.113.7", 6, 2, 4}};
  ASSERT_EQ(by_type["client"].size(), clients.size());
  for (std::size_t i = 0; i < clients.size(); ++i) {
    const json& c = by_type["client"][i];
    EXPECT_EQ(c["client"], clients[i].client);
    EXPECT_EQ(c["requests"], clients[i].requests);
    EXPECT_EQ(c["warned"], clients[i].warned);
    EXPECT_EQ(c["deferred"], clients[i].deferred);
  }
  EXPECT_EQ(by_type["client"][0]["first"], store::format_utc(when(0)));
  EXPECT_EQ(by_type["client"][0]["last"], store::format_utc(when(48)));

  const json& evidence = by_type["spool_evidence"].at(0);
  EXPECT_EQ(evidence["mailbox"], "/var/mail/bob");
  EXPECT_EQ(evidence["repeats"], 38);
  EXPECT_EQ(evidence["size"], 48213);
  EXPECT_EQ(evidence["filenames"], "invoice.pdf; invoice (1).pdf");
  EXPECT_EQ(evidence["first_stored"], "2024-03-04T14:00:06Z");

  // Known correspondents: alice (two an hour for 14 days and 14 hours, and 10 in the flood),
  // then the 20 warned senders, whose mail was accepted, latest first.
  ASSERT_EQ(by_type["correspondent"].size(), 21u);
  EXPECT_EQ(by_type["correspondent"][0]["sender"], "alice@example.test");
  EXPECT_EQ(by_type["correspondent"][0]["messages"], (14 * 24 + 14) * 2 + 10);
  EXPECT_EQ(by_type["correspondent"][1]["sender"], "bot19@flood.test");
  EXPECT_EQ(by_type["correspondent"][20]["sender"], "bot0@flood.test");

  const json summary = summary_of(r.out);
  EXPECT_EQ(summary["view"], "explain");
  EXPECT_EQ(summary["truncated"], false);
  EXPECT_EQ(summary["total"]["senders"], 50);
}

TEST_F(ReviewExplainTest, LimitCutsEachListAndSaysSo) {
  const result r = explain({"--format", "json", "--limit", "3"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::map<std::string, int> count;
  for (const json& line : records_of(r.out)) ++count[line["type"]];
  EXPECT_EQ(count["hour"], 6);  // the hours are the window, never cut
  EXPECT_EQ(count["explanation"], 3);
  EXPECT_EQ(count["sender"], 3);
  EXPECT_EQ(count["client"], 3);
  EXPECT_EQ(count["spool_evidence"], 1);
  EXPECT_EQ(count["correspondent"], 3);
  const json summary = summary_of(r.out);
  EXPECT_EQ(summary["truncated"], true);
  EXPECT_EQ(summary["total"],
            json::parse(R"({"explanations":11,"senders":50,"clients":8,"spool_evidence":1,)"
                        R"("correspondents":21,"operator_actions":0})"));
  EXPECT_EQ(summary["shown"]["senders"], 3);

  const result table = explain({"--limit", "3"});
  EXPECT_NE(table.out.find("  showing 3 of 50 senders; --limit 0 shows all, or narrow "
                           "--since/--until\n"),
            std::string::npos)
      << table.out;
  EXPECT_NE(table.out.find("  showing 3 of 11 explanations;"), std::string::npos);
  EXPECT_NE(table.out.find("  showing 3 of 21 correspondents;"), std::string::npos);
}

TEST_F(ReviewExplainTest, TableReadsTopToBottom) {
  const result r = explain();
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string& out = r.out;
  // Sections in story order.
  std::size_t at_section = 0;
  for (const char* section :
       {"bob@example.test from 2024-03-04 12:00:00 to 2024-03-04 18:00:00 UTC (6h00m)",
        "Class default; 348 hours with mail in the 4 weeks before the window",
        "In these hours: 64 RCPTs, 34 accepted; the baseline expected 12.0: 5.3 times as many.",
        "Answered in the window: 50 flagged requests: 20 warned, 30 deferred.",
        "Hourly volume against the baseline", "Alert episodes (1)",
        "How the verdicts developed (11 stored explanations)",
        "Senders of flagged requests (50, most requests first)",
        "Clients of flagged requests (8, most requests first)",
        "Spool evidence: the same attachment stored again and again (1)",
        "Known correspondents (21, most messages first; one known an hour before an episode "
        "started is not deferred in it)"}) {
    const std::size_t found = out.find(section, at_section);
    ASSERT_NE(found, std::string::npos) << section << "\n" << out;
    at_section = found;
  }
  // The default limit (20) cuts the senders and the correspondents.
  EXPECT_NE(out.find("  showing 20 of 50 senders;"), std::string::npos);
  EXPECT_NE(out.find("  showing 20 of 21 correspondents;"), std::string::npos);
  // Hours: each with its expectation; the quiet evening is one line.
  const std::vector<std::string> lines = lines_of(out);
  const auto row = [&](std::string_view prefix) {
    for (const std::string& line : lines) {
      if (line.starts_with(prefix)) return words_of(line);
    }
    return std::vector<std::string>{};
  };
  EXPECT_EQ(row("  2024-03-04 13:00:00"),
            (std::vector<std::string>{"2024-03-04", "13:00:00", "17", "17", "2.0", "13", "23000",
                                      "##|############", "*"}));
  EXPECT_EQ(row("  2024-03-04 12:00:00")[2], "2");
  EXPECT_NE(out.find("  (3 hours without mail from 2024-03-04 15:00:00, 6.0 expected in all)"),
            std::string::npos);
  // The episode, its peak and what was done.
  EXPECT_NE(out.find("  2024-03-04 13:59:00 to 2024-03-04 14:13:05 UTC (14m05s), closed"),
            std::string::npos);
  EXPECT_NE(out.find("    peak: defer, score 5.50 at 2024-03-04 14:02:45; 10m window: 240 against "
                     "a baseline of 6"),
            std::string::npos);
  EXPECT_NE(out.find("    answered: 50 flagged requests: 20 warned, 30 deferred"),
            std::string::npos);
  // The escalation, with the request that caused it and its reasons.
  EXPECT_NE(out.find("  2024-03-04 14:00:40  escalated to defer: defer, score 3.00  (policy from "
                     "bot20@flood.test via 203.0.113.4)"),
            std::string::npos);
  EXPECT_NE(out.find("    action: DEFER_IF_PERMIT 4.7.1 rcptguard: 60 msgs/10m"),
            std::string::npos);
  EXPECT_EQ(row("  203.0.113.4"),
            (std::vector<std::string>{"203.0.113.4", "6", "2", "4", "0", "2024-03-04", "13:59:20",
                                      "2024-03-04", "14:02:40"}));
  EXPECT_EQ(row("  2024-03-04 14:00:06"),
            (std::vector<std::string>{"2024-03-04", "14:00:06", "2024-03-04", "14:03:06", "38",
                                      "48213", "3f2a9c000000", "/var/mail/bob", "invoice.pdf;",
                                      "invoice", "(1).pdf"}));
  EXPECT_EQ(row("  alice@example.test")[1], "710");
}

TEST_F(ReviewExplainTest, CsvIsTheJsonRecordsInOneTable) {
  const result csv = explain({"--format", "csv"});
  ASSERT_EQ(csv.code, 0) << csv.err;
  const auto rows = parse_csv(csv.out);
  EXPECT_EQ(rows[0][0], "type");
  expect_csv_matches(rows, records_of(explain({"--format", "json"}).out));
}

TEST_F(ReviewExplainTest, RecipientIsTheSameSubcommand) {
  const result explained = explain({"--format", "json"});
  const result old_name = run(until, {"recipient", "<Bob+Lists@Example.TEST>", "-d", db_, "--since",
                                      "6h", "--format", "json"});
  ASSERT_EQ(old_name.code, 0) << old_name.err;
  EXPECT_EQ(old_name.out, explained.out);
  // Another delimiter: "bob-x" is only bob's mailbox when '-' is a delimiter.
  const result dash = run(until, {"explain", "bob-x@example.test", "--delimiters", "-", "-d", db_,
                                  "--since", "6h", "--format", "json"});
  ASSERT_EQ(dash.code, 0) << dash.err;
  EXPECT_EQ(dash.out, explained.out);
}

// ---------------------------------------------------------------------------------------------
// The operators' audit log: bob's episode released by alice, an allow for bob before it, and
// actions on other addresses and a refused caller that bob's story leaves out.

class ReviewActionsTest : public ReviewExplainTest {
 protected:
  static store::operator_action action(std::int64_t at_s, std::string command, std::string address,
                                       std::string reason, std::string outcome = "ok") {
    store::operator_action a;
    a.at = at(at_s);
    a.user = "alice";
    a.uid = 1000;
    a.command = std::move(command);
    a.address = std::move(address);
    a.reason = std::move(reason);
    a.result = std::move(outcome);
    a.detail = a.result == "ok" ? "done" : "not allowed";
    return a;
  }

  void SetUp() override {
    ReviewExplainTest::SetUp();
    store::store s(store::testing::options_for(db_));
    decision::outbox released;
    decision::episode_record e =
        store::testing::episode("bob@example.test", start, closed, true, score(45));
    e.closed_by = decision::close_cause::released;
    released.episodes.push_back(e);
    s.apply(released);

    store::operator_action allowed = action(start + 30, "allow", "bob@example.test", "vendor");
    allowed.kind = "sender";
    allowed.address = "newcontact@partner.test";
    store::insert_operator_action(s.database(), allowed);
    store::insert_operator_action(s.database(),
                                  action(start + 60, "reset", "bob@example.test", "test counts"));
    store::insert_operator_action(
        s.database(), action(closed, "release", "bob@example.test", "ticket 4711: handled"));
    store::operator_action refused = action(closed + 5, "", "", "", "refused");
    refused.user = "mallory";
    refused.uid = 1001;
    store::insert_operator_action(s.database(), refused);
    // Before the window: listed by neither view.
    store::insert_operator_action(s.database(),
                                  action(since - 10, "release", "bob@example.test", "older"));
  }

  result actions(std::vector<std::string> extra = {}) const {
    std::vector<std::string> args{
        "actions", "-d", db_, "--since", "2024-03-04T12:00Z", "--until", "2024-03-04T18:00Z"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run(until, args);
  }
};

TEST_F(ReviewActionsTest, ListsTheWindowNewestFirstWithWhoWhatWhy) {
  const result r = actions({"--format", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<json> rows = records_of(r.out);
  ASSERT_EQ(rows.size(), 4U);
  EXPECT_EQ(rows[0]["result"], "refused");
  EXPECT_EQ(rows[0]["user"], "mallory");
  EXPECT_EQ(rows[1]["command"], "release");
  EXPECT_EQ(rows[1]["address"], "bob@example.test");
  EXPECT_EQ(rows[1]["reason"], "ticket 4711: handled");
  EXPECT_EQ(rows[1]["user"], "alice");
  EXPECT_EQ(rows[1]["uid"], 1000);
  EXPECT_EQ(rows[1]["time"], "2024-03-04T14:13:05Z");
  EXPECT_EQ(rows[2]["command"], "reset");
  EXPECT_EQ(rows[3]["command"], "allow");
  EXPECT_EQ(rows[3]["kind"], "sender");
  EXPECT_EQ(rows[3]["address"], "newcontact@partner.test");
  EXPECT_TRUE(rows[3]["allowed_until"].is_null());
  const std::set<std::string> keys{"type",   "time",    "user",          "uid",    "command",
                                   "kind",   "address", "allowed_until", "reason", "result",
                                   "detail", "id",      "node"};
  for (const json& row : rows) {
    EXPECT_EQ(row["type"], "operator_action");
    EXPECT_EQ(keys_of(row), keys);
  }
  const json summary = summary_of(r.out);
  EXPECT_EQ(summary["view"], "actions");
  EXPECT_EQ(summary["total"], 4);

  // One address, in any case: the engine's key.
  const result bob = actions({"--address", "<Bob@Example.TEST>", "--format", "json"});
  ASSERT_EQ(bob.code, 0) << bob.err;
  const std::vector<json> bobs = records_of(bob.out);
  ASSERT_EQ(bobs.size(), 2U);
  EXPECT_EQ(bobs[0]["command"], "release");
  EXPECT_EQ(bobs[1]["command"], "reset");
  EXPECT_EQ(summary_of(bob.out)["address"], "bob@example.test");

  // The table: a cut says so; CSV has the JSON keys.
  const result table = actions({"--limit", "2"});
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_NE(table.out.find("mallory  1001"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("ticket 4711: handled"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("2 of 4 operator actions"), std::string::npos) << table.out;
  EXPECT_EQ(table.out.find("reset"), std::string::npos) << table.out;
  const auto csv = parse_csv(actions({"--format", "csv"}).out);
  ASSERT_EQ(csv.size(), 5U);
  EXPECT_EQ(csv[0], (std::vector<std::string>{"type", "time", "user", "uid", "command", "kind",
                                              "address", "allowed_until", "reason", "result",
                                              "detail", "id", "node"}));

  const result none =
      run(until, {"actions", "-d", db_, "--since", "2024-03-05", "--until", "2024-03-06"});
  ASSERT_EQ(none.code, 0) << none.err;
  EXPECT_NE(none.out.find("No operator actions"), std::string::npos) << none.out;
}

TEST_F(ReviewActionsTest, ExplainSaysWhoReleasedTheEpisodeAndListsTheAddresssActions) {
  const result r = explain({"--format", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<json> done;
  json episode;
  for (const json& line : records_of(r.out)) {
    if (line["type"] == "operator_action") done.push_back(line);
    if (line["type"] == "episode") episode = line;
  }
  EXPECT_EQ(episode["closed_by"], "operator");
  // Bob's, oldest first: not the allow (its address is the sender) nor the refused caller.
  ASSERT_EQ(done.size(), 2U);
  EXPECT_EQ(done[0]["command"], "reset");
  EXPECT_EQ(done[1]["command"], "release");
  EXPECT_EQ(summary_of(r.out)["total"]["operator_actions"], 2);

  const result table = explain();
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_NE(table.out.find("ended: released by alice (uid 1000) at 2024-03-04 14:13:05 UTC: "
                           "ticket 4711: handled"),
            std::string::npos)
      << table.out;
  EXPECT_NE(table.out.find("Operator actions on this address (2;"), std::string::npos) << table.out;
}

// ---------------------------------------------------------------------------------------------
// Several nodes' databases (a cluster store): alerts and actions list them together, newest
// first, with each row's node and the flood's id; top and explain read one database.

TEST(ReviewNodes, AlertsAndActionsOfSeveralNodesInOneList) {
  test_support::temp_dir dir;
  const auto node_db = [&](const std::string& name, std::int64_t started, std::string cluster_id) {
    decision::outbox b;
    decision::episode_record e =
        store::testing::episode("bob@example.test", started, started + 600, true, 4.5);
    e.cluster_id = std::move(cluster_id);
    b.episodes = {
        e, store::testing::episode("carol@example.test", started + 30, started + 90, true, 2.0)};
    const std::string path = store::testing::write_node_database(dir.file(name + ".db"), name, b);
    SQLite::Database db(path, SQLite::OPEN_READWRITE);
    store::operator_action a;
    a.at = at(started + 700);
    a.user = name + "-admin";
    a.uid = 0;
    a.command = "release";
    a.address = "bob@example.test";
    a.reason = "flood over";
    a.result = "ok";
    store::insert_operator_action(db, a);
    return path;
  };
  const std::string mx1 = node_db("mx1", t0, "mx1:" + std::to_string(t0));
  const std::string mx2 = node_db("mx2", t0 + 3, "mx1:" + std::to_string(t0));

  const result r =
      run(t0 + 3600, {"alerts", "-d", mx1, "-d", mx2, "--since", "2h", "--format", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<json> rows = records_of(r.out);
  ASSERT_EQ(rows.size(), 4U);
  EXPECT_EQ(rows[0]["node"], "mx2");  // carol on mx2 started last
  EXPECT_EQ(rows[0]["recipient"], "carol@example.test");
  EXPECT_TRUE(rows[0]["cluster_id"].is_null());
  EXPECT_EQ(rows[1]["node"], "mx1");
  EXPECT_EQ(rows[2]["node"], "mx2");
  EXPECT_EQ(rows[2]["recipient"], "bob@example.test");
  EXPECT_EQ(rows[3]["node"], "mx1");
  EXPECT_EQ(rows[2]["cluster_id"], rows[3]["cluster_id"]) << "one flood, one id";
  EXPECT_EQ(summary_of(r.out)["total"], 4);

  // A table names the node and the flood; a cut applies to the list as a whole.
  const result table =
      run(t0 + 3600, {"alerts", "-d", mx1, "-d", mx2, "--since", "2h", "--limit", "3"});
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_NE(table.out.find("NODE"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("FLOOD"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("3 of 4 alert episodes"), std::string::npos) << table.out;

  const result actions = run(t0 + 3600, {"actions", "-d", mx1, "-d", mx2, "--format", "json"});
  ASSERT_EQ(actions.code, 0) << actions.err;
  const std::vector<json> done = records_of(actions.out);
  ASSERT_EQ(done.size(), 2U);
  EXPECT_EQ(done[0]["node"], "mx2");
  EXPECT_EQ(done[0]["user"], "mx2-admin");
  EXPECT_EQ(done[1]["node"], "mx1");

  // Explain reads one database.
  const result explain = run(t0 + 3600, {"explain", "bob@example.test", "-d", mx1, "-d", mx2});
  EXPECT_EQ(explain.code, 2);
  EXPECT_NE(explain.err.find("explain reads one database"), std::string::npos) << explain.err;
}

// ---------------------------------------------------------------------------------------------
// The window across a DST change, in Berlin: summer time began on 2024-03-31 at 02:00 CET, so
// "24 hours before 12:00 CEST" is 11:00 CET the day before. A reader that took the current
// offset for both ends would take 09:00Z and include the first episode, or 10:00Z for the end
// and include the last.

TEST(ReviewDst, AbsoluteLocalTimesSelectWhatDurationsSelect) {
  const zone berlin("Europe/Berlin");
  test_support::temp_dir dir;
  const std::string db = dir.file("dst.db");
  const std::int64_t now = 1711879200;      // 2024-03-31T10:00:00Z, 12:00 CEST
  const std::int64_t saturday = now - day;  // 2024-03-30T10:00:00Z, 11:00 CET
  {
    store::store s(store::testing::options_for(db));
    decision::outbox b;
    b.episodes = {episode("early@example.test", saturday - 3600, saturday - 1800, true),
                  episode("first@example.test", saturday + 900, saturday + 1800, true),
                  episode("last@example.test", now - 5400, now - 4500, true),
                  episode("late@example.test", now - 2700, now - 2000, true)};
    for (const std::int64_t t : {saturday - 1800, saturday + 600, now - 4000, now - 1200}) {
      b.deliveries.push_back(delivery(t, "bob@example.test", "alice@example.test", true));
      b.verdicts.push_back(verdict(t, "bob@example.test"));
    }
    s.apply(b);
  }
  const auto recipients = [](const std::string& out) {
    std::vector<std::string> names;
    for (const json& line : records_of(out)) names.push_back(line["recipient"]);
    return names;
  };
  for (const char* view : {"alerts", "top", "explain"}) {
    SCOPED_TRACE(view);
    std::vector<std::string> base{view};
    if (std::string_view{view} == "explain") base.push_back("bob@example.test");
    base.insert(base.end(), {"-d", db, "--format", "json"});
    std::vector<std::string> relative = base;
    relative.insert(relative.end(), {"--since", "24h", "--until", "1h"});
    const result expected = run(now, relative);
    ASSERT_EQ(expected.code, 0) << expected.err;
    if (std::string_view{view} == "alerts") {
      EXPECT_EQ(recipients(expected.out),
                (std::vector<std::string>{"last@example.test", "first@example.test"}));
    }
    for (const std::vector<std::string>& window :
         {std::vector<std::string>{"--since", "2024-03-30T11:00", "--until", "2024-03-31 11:00"},
          {"--since", "2024-03-30 11:00:00", "--until", "2024-03-31T11:00:00"},
          {"--since", "2024-03-30T10:00Z", "--until", "2024-03-31T09:00Z"},
          {"--since", "2024-03-30T11:00+01:00", "--until", "2024-03-31T11:00+02:00"}}) {
      std::vector<std::string> absolute = base;
      absolute.insert(absolute.end(), window.begin(), window.end());
      const result got = run(now, absolute);
      ASSERT_EQ(got.code, 0) << got.err;
      EXPECT_EQ(got.out, expected.out) << window[1] << " .. " << window[3];
    }
  }
  // The flagged requests counted are those of the window itself.
  const result top = run(now, {"top", "-d", db, "--since", "2024-03-30T11:00", "--format", "json"});
  EXPECT_EQ(records_of(top.out).at(0)["verdicts"], 3);
}

// ---------------------------------------------------------------------------------------------

TEST_F(ReviewCommandTest, DatabaseComesFromTheSettingsLikeServe) {
  const std::string toml = dir_.file("rcptguard.toml");
  std::ofstream(toml) << "[store]\npath = \"" << db_ << "\"\n";
  const result from_file = review({"alerts", "-c", toml, "--format", "json"});
  ASSERT_EQ(from_file.code, 0) << from_file.err;
  EXPECT_EQ(records_of(from_file.out).size(), 3u);

  const result from_override = review({"top", "-o", "store.path=" + db_, "--since", "3h"});
  ASSERT_EQ(from_override.code, 0) << from_override.err;
  EXPECT_NE(from_override.out.find("bob@example.test"), std::string::npos);

  const result bad = review({"alerts", "-o", "store.no_such_key=1"});
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("invalid"), std::string::npos) << bad.err;
}

TEST_F(ReviewCommandTest, MissingOrForeignDatabaseFails) {
  const std::string missing = dir_.file("missing.db");
  const result r = review({"alerts", "-d", missing});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("does not exist"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(missing));  // never created

  const std::string junk = dir_.file("junk.db");
  std::ofstream(junk) << "not a database at all, just text that is long enough to be a header";
  const result j = review({"top", "-d", junk});
  EXPECT_EQ(j.code, 1);
  EXPECT_NE(j.err.find("cannot read database"), std::string::npos) << j.err;
}

TEST_F(ReviewCommandTest, UsageErrorsExitTwo) {
  EXPECT_EQ(review({}).code, 2);
  const result unknown = review({"nonsense"});
  EXPECT_EQ(unknown.code, 2);
  EXPECT_NE(unknown.err.find("unknown subcommand"), std::string::npos);
  EXPECT_EQ(review({"alerts", "-d", db_, "--bogus"}).code, 2);
  EXPECT_EQ(review({"alerts", "-d", db_, "stray"}).code, 2);
  EXPECT_EQ(review({"alerts", "-d", db_, "--format", "xml"}).code, 2);
  EXPECT_EQ(review({"alerts", "-d", db_, "--limit", "-1"}).code, 2);
  EXPECT_EQ(review({"alerts", "-d", db_, "--limit", "many"}).code, 2);
  EXPECT_EQ(review({"explain", "-d", db_}).code, 2);  // no ADDRESS
  EXPECT_EQ(review({"recipient", "-d", db_}).code, 2);
  EXPECT_EQ(review({"explain", "a@x.test", "b@x.test", "-d", db_}).code, 2);
  EXPECT_EQ(review({"explain", "<>", "-d", db_}).code, 2);
}

TEST_F(ReviewCommandTest, BadTimesAreUsageErrorsThatSayWhy) {
  const zone berlin("Europe/Berlin");
  // Malformed: the accepted forms are named.
  for (const char* bad : {"yesterday", "2024-13-01", "2024-03-04T25:00", "2024-03-04T10:00+2"}) {
    const result r = review({"alerts", "-d", db_, "--since", bad});
    EXPECT_EQ(r.code, 2) << bad;
    EXPECT_NE(r.err.find(std::string{"--since '"} + bad +
                         "' is not a time: give a duration back "
                         "from now (7d, 24h, 90m, 30s) or a "
                         "time: 2026-10-01, 2026-10-01T14:00"),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("in local time unless it ends in Z or an offset like +02:00"),
              std::string::npos);
  }
  const result until = review({"top", "-d", db_, "--until", "soon"});
  EXPECT_EQ(until.code, 2);
  EXPECT_NE(until.err.find("--until 'soon' is not a time"), std::string::npos) << until.err;
  // A local time the clock skipped.
  const result skipped = review({"alerts", "-d", db_, "--since", "2024-03-31T02:30"});
  EXPECT_EQ(skipped.code, 2);
  EXPECT_NE(skipped.err.find("--since '2024-03-31T02:30' does not exist in the local time zone"),
            std::string::npos)
      << skipped.err;
  // since after until: both values, as given and as instants.
  const result backwards =
      review({"alerts", "-d", db_, "--since", "2024-03-04T12:00", "--until", "3h"});
  EXPECT_EQ(backwards.code, 2);
  EXPECT_NE(backwards.err.find("--since 2024-03-04T12:00 (2024-03-04 11:00:00 UTC) is after "
                               "--until 3h (2024-03-04 09:00:00 UTC)"),
            std::string::npos)
      << backwards.err;
  const result future = review({"alerts", "-d", db_, "--since", "2024-03-05"});
  EXPECT_EQ(future.code, 2);
  EXPECT_NE(future.err.find("is after --until now (2024-03-04 12:00:00 UTC)"), std::string::npos)
      << future.err;
  // An empty window is not an error.
  EXPECT_EQ(review({"alerts", "-d", db_, "--since", "1h", "--until", "1h"}).code, 0);
}

TEST_F(ReviewCommandTest, HelpForEachSubcommand) {
  const result top = review({"--help"});
  EXPECT_EQ(top.code, 0);
  EXPECT_NE(top.out.find("explain ADDRESS"), std::string::npos);
  EXPECT_NE(top.out.find("'recipient' is"), std::string::npos);
  EXPECT_NE(top.out.find("local time zone (TZ)"), std::string::npos);
  EXPECT_NE(top.out.find("Deviation (top, explain)"), std::string::npos);
  // cxxopts wraps the option texts: compare with runs of blanks as one space.
  const auto words = [](const std::string& text) {
    std::string joined;
    for (const std::string& w : words_of(text)) joined += (joined.empty() ? "" : " ") + w;
    return joined;
  };
  for (const char* sub : {"alerts", "top", "explain", "recipient"}) {
    const result r = review({sub, "--help"});
    EXPECT_EQ(r.code, 0) << sub;
    const std::string help = words(r.out);
    for (const char* option : {"--since", "--until", "--format", "--limit", "--database"}) {
      EXPECT_NE(help.find(option), std::string::npos) << sub << " " << option;
    }
    EXPECT_NE(help.find("in local time unless it ends in Z or an offset like +02:00"),
              std::string::npos)
        << sub;
    EXPECT_NE(help.find("or csv (RFC 4180"), std::string::npos) << sub;
    EXPECT_NE(help.find("0 for all"), std::string::npos) << sub;
  }
  const std::string top_help = words(review({"top", "--help"}).out);
  EXPECT_NE(top_help.find("--by"), std::string::npos);
  EXPECT_NE(top_help.find("plus baseline_spread_weight times its spread"), std::string::npos);
}

}  // namespace
}  // namespace rcptguard::cli
