// `rcptguard review` end to end in-process: a real database written by store::apply(), the argv
// front end, and the output parsed back (JSON Lines by a strict little parser, tables by text).
#include "cli/review_command.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>  // open_memstream (POSIX)
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "decision/events.hpp"
#include "store/review.hpp"
#include "store/store.hpp"
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

std::set<std::string> keys_of(const json& j) {
  std::set<std::string> keys;
  for (const auto& item : j.items()) keys.insert(item.key());
  return keys;
}

// ---------------------------------------------------------------------------------------------
// Fixture: a database with episodes, verdicts with reasons, deliveries and correspondents.

// Records shaped as the store tests build them; every episode here peaks at score 4.5.
using store::testing::at;
using store::testing::delivery;
using store::testing::t0;
using store::testing::verdict;

/// The review's "now": two hours after t0.
constexpr std::int64_t now_s = t0 + 7200;

decision::episode_record episode(std::string recipient, std::int64_t started, std::int64_t updated,
                                 bool ended) {
  return store::testing::episode(std::move(recipient), started, updated, ended, 4.5);
}

// Hostile text from the network: an ANSI escape, a newline, a quote, a backslash, valid UTF-8
// (é) and an invalid byte.
const std::string hostile_recipient = "ev\x1b[31mil\n\"q\\\xc3\xa9\xff@x.test";

class ReviewCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = dir_.file("rcptguard.db");

    store::store_options o;
    o.database.path = db_;
    store::store s(o);
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

  struct result {
    int code = -1;
    std::string out;
    std::string err;
  };

  /// Runs `rcptguard review ARGS...` in-process with stdout and stderr captured.
  static result review(std::initializer_list<std::string> args) {
    std::vector<std::string> storage{"review"};
    storage.insert(storage.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : storage) argv.push_back(a.data());
    argv.push_back(nullptr);

    char* out_buf = nullptr;
    std::size_t out_len = 0;
    char* err_buf = nullptr;
    std::size_t err_len = 0;
    std::FILE* out = ::open_memstream(&out_buf, &out_len);
    std::FILE* err = ::open_memstream(&err_buf, &err_len);
    result r;
    r.code = command_review(static_cast<int>(storage.size()), argv.data(),
                            review_io{.out = out, .err = err, .now = at(now_s)});
    std::fclose(out);
    std::fclose(err);
    r.out.assign(out_buf, out_len);
    r.err.assign(err_buf, err_len);
    std::free(out_buf);
    std::free(err_buf);
    return r;
  }

  test_support::temp_dir dir_;
  std::string db_;
};

// ---------------------------------------------------------------------------------------------

TEST_F(ReviewCommandTest, AlertsJsonLinesHaveTheSiemShape) {
  const result r = review({"alerts", "-d", db_, "--format", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<json> lines = parse_lines(r.out);
  ASSERT_EQ(lines.size(), 3u);  // the 30-day-old episode is outside the default 7d

  const std::set<std::string> expected_keys{
      "type",    "time",     "recipient",  "state",    "verdict", "score",
      "window",  "observed", "baseline",   "reasons",  "source",  "attack",
      "updated", "ended",    "duration_s", "verdicts", "id"};
  for (const json& line : lines) EXPECT_EQ(keys_of(line), expected_keys);

  // Newest start first: hostile (t0+6000), carol (t0+5000), bob (t0+200).
  const json& bob = lines[2];
  EXPECT_EQ(bob["type"].get<std::string>(), "episode");
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
}

TEST_F(ReviewCommandTest, AlertsTableIsAlignedAndSanitised) {
  const result r = review({"alerts", "-d", db_});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("RECIPIENT"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("bob@example.test"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("carol@example.test"), std::string::npos);
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
  std::vector<std::string> lines;
  for (std::size_t start = 0; start < r.out.size();) {
    const std::size_t end = r.out.find('\n', start);
    lines.push_back(r.out.substr(start, end - start));
    start = end + 1;
  }
  ASSERT_EQ(lines.size(), 4u);
  const std::size_t column = lines[0].find("RECIPIENT");
  for (std::size_t i = 1; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i].find(i == 3 ? "bob" : i == 2 ? "carol" : "ev"), column) << lines[i];
  }

  const result limited = review({"alerts", "-d", db_, "--limit", "1", "--since", "90d"});
  ASSERT_EQ(limited.code, 0);
  EXPECT_EQ(std::count(limited.out.begin(), limited.out.end(), '\n'), 2);
  const result all = review({"alerts", "-d", db_, "--since", "90d", "--format", "json"});
  EXPECT_EQ(parse_lines(all.out).size(), 4u);
  const result none = review({"alerts", "-d", db_, "--since", "1m"});
  ASSERT_EQ(none.code, 0);
  EXPECT_NE(none.out.find("No alert episodes"), std::string::npos);
}

TEST_F(ReviewCommandTest, RecipientIsNormalisedAndToldInFull) {
  const result r = review({"recipient", "<Bob+Lists@Example.TEST>", "-d", db_});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("bob@example.test"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Known correspondents:   7"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2024-03-04 10:00:00"), std::string::npos);  // an hourly row
  EXPECT_NE(r.out.find("volume_10m"), std::string::npos);
  EXPECT_NE(r.out.find("180 senders"), std::string::npos);
  EXPECT_NE(r.out.find("monitor: warned only"), std::string::npos);
  EXPECT_NE(r.out.find("Episodes (1)"), std::string::npos);

  // Another delimiter: "bob-x" is only bob's mailbox when '-' is a delimiter.
  const result dash = review(
      {"recipient", "bob-x@example.test", "--delimiters", "-", "-d", db_, "--format", "json"});
  ASSERT_EQ(dash.code, 0) << dash.err;
  EXPECT_EQ(parse_lines(dash.out)[0]["recipient"].get<std::string>(), "bob@example.test");
}

TEST_F(ReviewCommandTest, RecipientJsonLines) {
  const result r = review({"recipient", "bob@example.test", "-d", db_, "--format", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<json> lines = parse_lines(r.out);
  ASSERT_EQ(lines.size(), 1u + 2u + 2u + 1u);  // summary, hours, verdicts, episodes
  EXPECT_EQ(lines[0]["type"].get<std::string>(), "recipient");
  EXPECT_DOUBLE_EQ(lines[0]["correspondents"].get<double>(), 7);
  EXPECT_EQ(lines[1]["type"].get<std::string>(), "hour");
  EXPECT_EQ(lines[1]["time"].get<std::string>(), "2024-03-04T10:00:00Z");
  EXPECT_DOUBLE_EQ(lines[1]["accepted"].get<double>(), 6);

  const json& v = lines[3];
  EXPECT_EQ(keys_of(v),
            (std::set<std::string>{"type", "time", "recipient", "sender", "client", "verdict",
                                   "monitor_only", "score", "action", "reasons", "reason_details",
                                   "source", "attack", "id"}));
  EXPECT_EQ(v["time"].get<std::string>(), "2024-03-04T10:05:00Z");  // newest first
  EXPECT_EQ(v["verdict"].get<std::string>(), "defer");
  EXPECT_TRUE(v["monitor_only"].get<bool>());
  EXPECT_EQ(v["action"].get<std::string>(), "WARN rcptguard: flood");
  EXPECT_EQ(v["reasons"].get<std::string>(),
            "volume_10m=2.00 (240 msgs/10m, baseline 6); sender_diversity=1.50 (180 senders)");
  ASSERT_EQ(v["reason_details"].size(), 2u);
  EXPECT_EQ(v["reason_details"][1]["name"].get<std::string>(), "sender_diversity");
  EXPECT_DOUBLE_EQ(v["reason_details"][0]["observed"].get<double>(), 240);
  EXPECT_FALSE(lines[4]["monitor_only"].get<bool>());
  EXPECT_EQ(lines[5]["type"].get<std::string>(), "episode");
  EXPECT_EQ(lines[5]["recipient"].get<std::string>(), "bob@example.test");
}

TEST_F(ReviewCommandTest, TopRecipients) {
  const result table = review({"top", "-d", db_, "--since", "3h"});
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_LT(table.out.find("bob@example.test"), table.out.find("carol@example.test")) << table.out;

  const result json_out = review({"top", "-d", db_, "--since", "3h", "--format", "json"});
  ASSERT_EQ(json_out.code, 0);
  const std::vector<json> lines = parse_lines(json_out.out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["recipient"].get<std::string>(), "bob@example.test");
  EXPECT_DOUBLE_EQ(lines[0]["accepted"].get<double>(), 7);
  EXPECT_DOUBLE_EQ(lines[0]["verdicts"].get<double>(), 2);
  EXPECT_DOUBLE_EQ(lines[1]["attempted"].get<double>(), 2);

  EXPECT_EQ(parse_lines(
                review({"top", "-d", db_, "--since", "3h", "--limit", "1", "--format", "json"}).out)
                .size(),
            1u);
}

TEST_F(ReviewCommandTest, DatabaseComesFromTheSettingsLikeServe) {
  const std::string toml = dir_.file("rcptguard.toml");
  std::ofstream(toml) << "[store]\npath = \"" << db_ << "\"\n";
  const result from_file = review({"alerts", "-c", toml, "--format", "json"});
  ASSERT_EQ(from_file.code, 0) << from_file.err;
  EXPECT_EQ(parse_lines(from_file.out).size(), 3u);

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
  EXPECT_EQ(review({"alerts", "-d", db_, "--since", "yesterday"}).code, 2);
  EXPECT_EQ(review({"alerts", "-d", db_, "--format", "xml"}).code, 2);
  EXPECT_EQ(review({"alerts", "-d", db_, "--limit", "0"}).code, 2);
  EXPECT_EQ(review({"alerts", "-d", db_, "--limit", "many"}).code, 2);
  EXPECT_EQ(review({"recipient", "-d", db_}).code, 2);  // no ADDRESS
  EXPECT_EQ(review({"recipient", "a@x.test", "b@x.test", "-d", db_}).code, 2);
  EXPECT_EQ(review({"recipient", "<>", "-d", db_}).code, 2);
}

TEST_F(ReviewCommandTest, HelpForEachSubcommand) {
  const result top = review({"--help"});
  EXPECT_EQ(top.code, 0);
  EXPECT_NE(top.out.find("recipient ADDRESS"), std::string::npos);
  for (const char* sub : {"alerts", "recipient", "top"}) {
    const result r = review({sub, "--help"});
    EXPECT_EQ(r.code, 0) << sub;
    EXPECT_NE(r.out.find("--since"), std::string::npos) << sub;
    EXPECT_NE(r.out.find("--database"), std::string::npos) << sub;
  }
}

}  // namespace
}  // namespace rcptguard::cli
