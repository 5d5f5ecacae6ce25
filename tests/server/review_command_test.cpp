// `rcptguard review` end to end in-process: a real database written by store::apply(), the argv
// front end, and the output parsed back (JSON Lines by a strict little parser, tables by text).
#include "server/review_command.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>  // open_memstream (POSIX)
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "decision/events.hpp"
#include "store/review.hpp"
#include "store/store.hpp"
#include "tests/common/temp_dir.hpp"
#include "tests/store/store_test_util.hpp"

namespace rcptguard::server {
namespace {

// ---------------------------------------------------------------------------------------------
// A strict JSON parser, enough to prove every line is well-formed and to read its fields.

struct json;
using json_object_map = std::map<std::string, json>;
using json_array = std::vector<json>;
struct json {
  std::variant<std::nullptr_t, bool, double, std::string, json_array, json_object_map> v;

  bool is_null() const { return std::holds_alternative<std::nullptr_t>(v); }
  const std::string& str() const { return std::get<std::string>(v); }
  double num() const { return std::get<double>(v); }
  bool boolean() const { return std::get<bool>(v); }
  const json_array& arr() const { return std::get<json_array>(v); }
  const json_object_map& obj() const { return std::get<json_object_map>(v); }
  const json& operator[](const std::string& key) const { return obj().at(key); }
};

class json_parser {
 public:
  explicit json_parser(std::string_view text) : s_(text) {}

  json parse_document() {
    json value = parse_value();
    skip_space();
    if (i_ != s_.size()) fail("trailing text");
    return value;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error(what + " at offset " + std::to_string(i_) + " in " + std::string{s_});
  }
  void skip_space() {
    while (i_ < s_.size() &&
           (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) {
      ++i_;
    }
  }
  char peek() {
    skip_space();
    if (i_ >= s_.size()) fail("unexpected end");
    return s_[i_];
  }
  void expect(char c) {
    if (peek() != c) fail(std::string{"expected '"} + c + "'");
    ++i_;
  }
  bool literal(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }

  json parse_value() {
    const char c = peek();
    if (c == '{') return parse_object();
    if (c == '[') return parse_array();
    if (c == '"') return json{parse_string()};
    if (literal("true")) return json{true};
    if (literal("false")) return json{false};
    if (literal("null")) return json{nullptr};
    return json{parse_number()};
  }

  json parse_object() {
    expect('{');
    json_object_map members;
    if (peek() == '}') {
      ++i_;
      return json{members};
    }
    for (;;) {
      if (peek() != '"') fail("expected a key");
      std::string key = parse_string();
      expect(':');
      if (!members.emplace(key, parse_value()).second) fail("duplicate key " + key);
      if (peek() == ',') {
        ++i_;
        continue;
      }
      expect('}');
      return json{members};
    }
  }

  json parse_array() {
    expect('[');
    json_array items;
    if (peek() == ']') {
      ++i_;
      return json{items};
    }
    for (;;) {
      items.push_back(parse_value());
      if (peek() == ',') {
        ++i_;
        continue;
      }
      expect(']');
      return json{items};
    }
  }

  std::string parse_string() {
    expect('"');
    std::string out;
    while (i_ < s_.size()) {
      const auto c = static_cast<unsigned char>(s_[i_++]);
      if (c == '"') return out;
      if (c < 0x20) fail("raw control character in a string");
      if (c != '\\') {
        out.push_back(static_cast<char>(c));
        continue;
      }
      if (i_ >= s_.size()) fail("dangling escape");
      const char e = s_[i_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out.push_back(e);
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'u': {
          if (i_ + 4 > s_.size()) fail("short \\u escape");
          const unsigned long code = std::stoul(std::string{s_.substr(i_, 4)}, nullptr, 16);
          i_ += 4;
          if (code >= 0x80) fail("only \\u00XX escapes are expected here");
          out.push_back(static_cast<char>(code));
          break;
        }
        default:
          fail("bad escape");
      }
    }
    fail("unterminated string");
  }

  double parse_number() {
    const std::size_t start = i_;
    while (i_ < s_.size() &&
           std::string_view{"+-0123456789.eE"}.find(s_[i_]) != std::string_view::npos) {
      ++i_;
    }
    if (start == i_) fail("expected a value");
    return std::stod(std::string{s_.substr(start, i_ - start)});
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

std::vector<json> parse_lines(const std::string& text) {
  std::vector<json> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t end = text.find('\n', start);
    if (end == std::string::npos) throw std::runtime_error("last line not terminated");
    lines.push_back(
        json_parser{std::string_view{text}.substr(start, end - start)}.parse_document());
    start = end + 1;
  }
  return lines;
}

std::set<std::string> keys_of(const json& j) {
  std::set<std::string> keys;
  for (const auto& [k, v] : j.obj()) keys.insert(k);
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
  EXPECT_EQ(bob["type"].str(), "episode");
  EXPECT_EQ(bob["time"].str(), "2024-03-04T10:03:20Z");
  EXPECT_EQ(bob["recipient"].str(), "bob@example.test");
  EXPECT_EQ(bob["state"].str(), "closed");
  EXPECT_EQ(bob["verdict"].str(), "defer");
  EXPECT_DOUBLE_EQ(bob["score"].num(), 4.5);
  EXPECT_EQ(bob["window"].str(), "10m");
  EXPECT_DOUBLE_EQ(bob["observed"].num(), 240);
  EXPECT_DOUBLE_EQ(bob["baseline"].num(), 6);
  EXPECT_EQ(bob["reasons"].str(), "rcptguard: bob@example.test 240 msgs/10m, baseline 6");
  EXPECT_EQ(bob["source"].str(), "policy");
  ASSERT_EQ(bob["attack"].arr().size(), 2u);
  EXPECT_EQ(bob["attack"].arr()[0].str(), "T1667");
  EXPECT_EQ(bob["attack"].arr()[1].str(), "AN1009");
  EXPECT_EQ(bob["ended"].str(), "2024-03-04T10:30:00Z");
  EXPECT_DOUBLE_EQ(bob["duration_s"].num(), 1600);
  EXPECT_DOUBLE_EQ(bob["verdicts"].num(), 2);

  const json& carol = lines[1];
  EXPECT_EQ(carol["recipient"].str(), "carol@example.test");
  EXPECT_EQ(carol["state"].str(), "open");
  EXPECT_TRUE(carol["ended"].is_null());

  // Control characters escaped, valid UTF-8 kept, the invalid byte replaced.
  EXPECT_EQ(lines[0]["recipient"].str(), "ev\x1b[31mil\n\"q\\\xc3\xa9?@x.test");
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
  EXPECT_EQ(parse_lines(dash.out)[0]["recipient"].str(), "bob@example.test");
}

TEST_F(ReviewCommandTest, RecipientJsonLines) {
  const result r = review({"recipient", "bob@example.test", "-d", db_, "--format", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<json> lines = parse_lines(r.out);
  ASSERT_EQ(lines.size(), 1u + 2u + 2u + 1u);  // summary, hours, verdicts, episodes
  EXPECT_EQ(lines[0]["type"].str(), "recipient");
  EXPECT_DOUBLE_EQ(lines[0]["correspondents"].num(), 7);
  EXPECT_EQ(lines[1]["type"].str(), "hour");
  EXPECT_EQ(lines[1]["time"].str(), "2024-03-04T10:00:00Z");
  EXPECT_DOUBLE_EQ(lines[1]["accepted"].num(), 6);

  const json& v = lines[3];
  EXPECT_EQ(keys_of(v),
            (std::set<std::string>{"type", "time", "recipient", "sender", "client", "verdict",
                                   "monitor_only", "score", "action", "reasons", "reason_details",
                                   "source", "attack", "id"}));
  EXPECT_EQ(v["time"].str(), "2024-03-04T10:05:00Z");  // newest first
  EXPECT_EQ(v["verdict"].str(), "defer");
  EXPECT_TRUE(v["monitor_only"].boolean());
  EXPECT_EQ(v["action"].str(), "WARN rcptguard: flood");
  EXPECT_EQ(v["reasons"].str(),
            "volume_10m=2.00 (240 msgs/10m, baseline 6); sender_diversity=1.50 (180 senders)");
  ASSERT_EQ(v["reason_details"].arr().size(), 2u);
  EXPECT_EQ(v["reason_details"].arr()[1]["name"].str(), "sender_diversity");
  EXPECT_DOUBLE_EQ(v["reason_details"].arr()[0]["observed"].num(), 240);
  EXPECT_FALSE(lines[4]["monitor_only"].boolean());
  EXPECT_EQ(lines[5]["type"].str(), "episode");
  EXPECT_EQ(lines[5]["recipient"].str(), "bob@example.test");
}

TEST_F(ReviewCommandTest, TopRecipients) {
  const result table = review({"top", "-d", db_, "--since", "3h"});
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_LT(table.out.find("bob@example.test"), table.out.find("carol@example.test")) << table.out;

  const result json_out = review({"top", "-d", db_, "--since", "3h", "--format", "json"});
  ASSERT_EQ(json_out.code, 0);
  const std::vector<json> lines = parse_lines(json_out.out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["recipient"].str(), "bob@example.test");
  EXPECT_DOUBLE_EQ(lines[0]["accepted"].num(), 7);
  EXPECT_DOUBLE_EQ(lines[0]["verdicts"].num(), 2);
  EXPECT_DOUBLE_EQ(lines[1]["attempted"].num(), 2);

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

TEST(JsonQuote, EscapesWhatJsonRequires) {
  EXPECT_EQ(json_quote("plain"), "\"plain\"");
  EXPECT_EQ(json_quote("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(json_quote("\n\r\t\b\f"), R"("\n\r\t\b\f")");
  EXPECT_EQ(json_quote(std::string{"\x00\x01\x1f\x7f", 4}), R"("\u0000\u0001\u001f\u007f")");
  EXPECT_EQ(json_quote("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa7"),
            "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa7\"");  // valid UTF-8 kept
  EXPECT_EQ(json_quote("a\xffz"), "\"a?z\"");
  EXPECT_EQ(json_quote("\xc3"), "\"?\"");            // truncated sequence
  EXPECT_EQ(json_quote("\xc0\xaf"), "\"??\"");       // overlong '/'
  EXPECT_EQ(json_quote("\xed\xa0\x80"), "\"???\"");  // surrogate
  EXPECT_EQ(json_quote("\xc3\x22"), "\"?\\\"\"");    // a quote never hides in a sequence
  EXPECT_EQ(json_quote(""), "\"\"");
}

}  // namespace
}  // namespace rcptguard::server
