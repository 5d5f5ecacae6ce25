// Postfix/Sendmail line parsing and timestamps: hand-picked lines, the grok-pattern oracle and
// per-file parsed/skipped counts over every log in the shared corpus.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "ingest/line_parser.hpp"
#include "ingest/postfix_parser.hpp"
#include "ingest/reader.hpp"
#include "ingest/timestamp.hpp"
#include "tests/common/corpus.hpp"

namespace rcptguard::ingest {
namespace {

using namespace std::chrono_literals;

const std::filesystem::path corpus = std::filesystem::path(RCPTGUARD_CORPUS_DIR) / "logs";

std::int64_t unix_of(time_point t) {
  return to_unix_seconds(t);
}

timestamp_options utc_at(std::int64_t reference) {
  timestamp_options o;
  o.reference = from_unix_seconds(reference);
  o.utc_offset = 0s;
  return o;
}

// 2026-01-10T12:00:00Z
constexpr std::int64_t jan_2026 = 1768046400;

TEST(Timestamp, ClassicSyslogInfersTheYearFromTheReference) {
  timestamp_parser clock(utc_at(jan_2026));
  time_point t;
  ASSERT_EQ(clock.parse("Jan  9 08:00:01 host x: y", t), 15U);
  EXPECT_EQ(unix_of(t), 1767945601);  // 2026-01-09T08:00:01Z
}

TEST(Timestamp, DecemberReadInJanuaryIsLastYear) {
  timestamp_parser clock(utc_at(jan_2026));
  time_point t;
  ASSERT_NE(clock.parse("Dec 31 23:59:59 host", t), 0U);
  EXPECT_EQ(unix_of(t), 1767225599);  // 2025-12-31T23:59:59Z
  // The log then runs on across New Year.
  ASSERT_NE(clock.parse("Jan  1 00:00:01 host", t), 0U);
  EXPECT_EQ(unix_of(t), 1767225601);  // 2026-01-01T00:00:01Z
  // A slightly out-of-order December line stays in December 2025.
  ASSERT_NE(clock.parse("Dec 31 23:59:58 host", t), 0U);
  EXPECT_EQ(unix_of(t), 1767225598);
}

TEST(Timestamp, ExplicitYearAndRollover) {
  timestamp_options o = utc_at(jan_2026);
  o.year = 2019;
  timestamp_parser clock(o);
  time_point t;
  ASSERT_NE(clock.parse("Nov 27 00:00:01 h", t), 0U);
  EXPECT_EQ(unix_of(t), 1574812801);  // 2019-11-27
  ASSERT_NE(clock.parse("Feb  1 00:00:00 h", t), 0U);
  EXPECT_EQ(unix_of(t), 1580515200);  // 2020-02-01
}

TEST(Timestamp, DayPaddingVariants) {
  timestamp_parser clock(utc_at(jan_2026));
  time_point a;
  time_point b;
  time_point c;
  ASSERT_NE(clock.parse("Jun 04 10:00:00 h", a), 0U);
  ASSERT_NE(clock.parse("Jun  4 10:00:00 h", b), 0U);
  ASSERT_NE(clock.parse("Jun 4 10:00:00 h", c), 0U);
  EXPECT_EQ(a, b);
  EXPECT_EQ(b, c);
  EXPECT_EQ(clock.parse("Jux 4 10:00:00 h", a), 0U);
  EXPECT_EQ(clock.parse("Jun 4 10:00", a), 0U);
}

TEST(Timestamp, UtcOffsetAppliesToClassicLines) {
  timestamp_options o = utc_at(jan_2026);
  o.utc_offset = 3600s;  // +01:00
  timestamp_parser clock(o);
  time_point t;
  ASSERT_NE(clock.parse("Jan  9 08:00:01 h", t), 0U);
  EXPECT_EQ(unix_of(t), 1767945601 - 3600);
}

TEST(Timestamp, IsoWithFractionsAndOffsets) {
  timestamp_parser clock(utc_at(jan_2026));
  time_point t;
  ASSERT_EQ(clock.parse("2023-03-14T00:00:31.185246+01:00 host", t), 32U);
  EXPECT_EQ(unix_of(t), 1678748431);  // 2023-03-13T23:00:31Z
  EXPECT_EQ(t.time_since_epoch().count() % 1000000, 185246);
  ASSERT_NE(clock.parse("2026-11-27T01:06:55.698371+00:00 h", t), 0U);
  EXPECT_EQ(unix_of(t), 1795741615);
  ASSERT_NE(clock.parse("2003-10-11T22:14:15.003Z h", t), 0U);
  EXPECT_EQ(unix_of(t), 1065910455);
  EXPECT_EQ(t.time_since_epoch().count() % 1000000, 3000);
  ASSERT_NE(clock.parse("2020-01-30T06:26:05-0500 h", t), 0U);
  EXPECT_EQ(unix_of(t), 1580383565);
  EXPECT_EQ(clock.parse("2020-13-30T06:26:05Z", t), 0U);
  EXPECT_EQ(clock.parse("2020-01-30T06:26:05+25:00", t), 0U);
}

TEST(Timestamp, OffsetOption) {
  EXPECT_EQ(parse_utc_offset("+02:00"), 7200s);
  EXPECT_EQ(parse_utc_offset("-0530"), -19800s);
  EXPECT_EQ(parse_utc_offset("Z"), 0s);
  EXPECT_EQ(parse_utc_offset("+5"), std::nullopt);
  EXPECT_EQ(parse_utc_offset("02:00"), std::nullopt);
}

TEST(Syslog, Rfc5424) {
  line_parser parser(utc_at(jan_2026));
  syslog_line env;
  mail_line mail;
  EXPECT_EQ(parser.parse("<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - "
                         "'su root' failed",
                         env, mail),
            line_result::other_program);
  EXPECT_EQ(env.host, "mymachine.example.com");
  EXPECT_EQ(env.program, "su");
  EXPECT_EQ(env.message, "'su root' failed");
  EXPECT_EQ(unix_of(env.time), 1065910455);
  EXPECT_EQ(parser.parse("<165>1 2003-10-11T22:14:15.003Z h postfix/smtpd 12 - "
                         "[x@1 a=\"]\"] connect from a[192.0.2.1]",
                         env, mail),
            line_result::mail);
  EXPECT_EQ(mail.type, line_type::connect);
  EXPECT_EQ(mail.client_address, "192.0.2.1");
}

TEST(Syslog, BrokenEnvelopes) {
  line_parser parser(utc_at(jan_2026));
  syslog_line env;
  mail_line mail;
  EXPECT_EQ(parser.parse("", env, mail), line_result::blank);
  EXPECT_EQ(parser.parse("# failJSON: {}", env, mail), line_result::no_timestamp);
  EXPECT_EQ(parser.parse("Jan 31 09:50", env, mail), line_result::no_timestamp);
  EXPECT_EQ(parser.parse("Jan 31 09:50:02", env, mail), line_result::malformed);
  EXPECT_EQ(parser.parse("Jan 31 09:50:02 host", env, mail), line_result::malformed);
  // Missing ':' after [pid] is tolerated.
  EXPECT_EQ(parser.parse("Jan 31 09:50:02 h postfix/smtpd[1] connect from a[1.2.3.4]", env, mail),
            line_result::mail);
  EXPECT_EQ(mail.client_address, "1.2.3.4");
}

mail_line parse_one(std::string_view line) {
  static line_parser parser(utc_at(jan_2026));
  syslog_line env;
  mail_line mail;
  parser.parse(line, env, mail);
  return mail;
}

TEST(Postfix, MessageLifecycle) {
  mail_line m = parse_one(
      "Jan 31 09:50:08 raptor postfix/smtpd[15802]: 4B80DE08044: client=stegosaurus.dinos.test"
      "[192.168.4.150], sasl_method=PLAIN, sasl_username=triceratops");
  EXPECT_EQ(m.type, line_type::client);
  EXPECT_EQ(m.queue_id, "4B80DE08044");
  EXPECT_EQ(m.client_name, "stegosaurus.dinos.test");
  EXPECT_EQ(m.client_address, "192.168.4.150");
  EXPECT_EQ(m.sasl_username, "triceratops");
  EXPECT_EQ(m.instance, "postfix");
  EXPECT_EQ(m.service, "smtpd");

  m = parse_one("Jan 31 09:50:08 raptor postfix/cleanup[21952]: 4B80DE08044: message-id=<g.1@x>");
  EXPECT_EQ(m.type, line_type::message_id);
  EXPECT_EQ(m.message_id, "g.1@x");

  m = parse_one(
      "Jan 31 09:50:08 raptor postfix/qmgr[26374]: 4B80DE08044: from=<t@dinos.test>, "
      "size=2703, nrcpt=2 (queue active)");
  EXPECT_EQ(m.type, line_type::sender);
  EXPECT_EQ(m.sender, "t@dinos.test");
  EXPECT_EQ(m.size, 2703U);
  EXPECT_EQ(m.nrcpt, 2U);

  m = parse_one(
      "Jan 31 09:50:08 raptor postfix/pipe[29598]: 4B80DE08044: to=<trex@dinos.test>, "
      "orig_to=<tyrannosaurus.rex@dinos.test>, relay=dovecot, delay=0.13, "
      "delays=0.04/0/0/0.09, dsn=2.0.0, status=sent (delivered via dovecot service)");
  EXPECT_EQ(m.type, line_type::delivery);
  EXPECT_EQ(m.recipients, "<trex@dinos.test>");
  EXPECT_EQ(m.orig_to, "tyrannosaurus.rex@dinos.test");
  EXPECT_EQ(m.relay, "dovecot");
  EXPECT_EQ(m.status, delivery_status::sent);
  EXPECT_EQ(m.service, "pipe");

  m = parse_one("Jan 31 09:50:08 raptor postfix/qmgr[26374]: 4B80DE08044: removed");
  EXPECT_EQ(m.type, line_type::removed);
  m = parse_one(
      "Jan 31 09:50:08 r postfix/qmgr[1]: 4B80DE08044: from=<a@b>, status=expired, "
      "returned to sender");
  EXPECT_EQ(m.type, line_type::other);
}

TEST(Postfix, ServiceNamesAndInstances) {
  mail_line m = parse_one(
      "Mar 11 23:27:54 s postfix-smo/submission/smtpd[22427]: "
      "44JCRG5tYPzCqt2: reject: BDAT from signing-milter.example.com"
      "[192.0.2.109]: 550 5.5.3 <DATA>: Data command rejected; from=<a@b> "
      "to=<c@d> proto=ESMTP helo=<x>");
  EXPECT_EQ(m.type, line_type::reject);
  EXPECT_EQ(m.instance, "postfix-smo/submission");
  EXPECT_EQ(m.service, "smtpd");
  EXPECT_EQ(m.queue_id, "44JCRG5tYPzCqt2");
  EXPECT_EQ(m.action, "reject");
  EXPECT_EQ(m.stage, "BDAT");
  EXPECT_EQ(m.client_address, "192.0.2.109");
  EXPECT_EQ(m.sender, "a@b");
  EXPECT_EQ(m.recipients, "<c@d>");

  m = parse_one(
      "Jan 1 00:00:00 h postfix-out/smtp[5]: ABCDEF123: to=<x@y>, relay=none, "
      "delay=1, status=deferred (connect refused)");
  EXPECT_EQ(m.instance, "postfix-out");
  EXPECT_EQ(m.status, delivery_status::deferred);

  // A policy service's WARN, as Postfix logs it.
  m = parse_one(
      "Jan 1 00:00:00 h postfix/smtpd[5]: NOQUEUE: warn: RCPT from a[192.0.2.9]: "
      "rcptguard: 240 msgs/10m; from=<s@x> to=<r@y> proto=ESMTP helo=<a>");
  EXPECT_EQ(m.type, line_type::reject);
  EXPECT_EQ(m.action, "warn");
  EXPECT_EQ(m.stage, "RCPT");

  m = parse_one(
      "Jan 1 00:00:00 h postfix/smtpd[5]: warning: unknown[1.1.1.1]: SASL LOGIN "
      "authentication failed: Password:");
  EXPECT_EQ(m.type, line_type::other);

  m = parse_one(
      "May  5 15:51:11 x postfix/postscreen[1148]: NOQUEUE: reject: RCPT from "
      "[216.245.194.173]:60591: 550 5.7.1 Service unavailable; from=<s@e> to=<u@e> "
      "proto=ESMTP helo=<x>");
  EXPECT_EQ(m.type, line_type::reject);
  EXPECT_EQ(m.client_address, "216.245.194.173");
  m = parse_one("May  5 15:51:11 x postfix/postscreen[1148]: PASS NEW [192.0.2.8]:5000");
  EXPECT_EQ(m.type, line_type::postscreen);
  EXPECT_EQ(m.client_address, "192.0.2.8");
}

TEST(Sendmail, Lifecycle) {
  mail_line m = parse_one(
      "Apr  2 00:15:25 mta001 sendmail[32300]: u31FFPtp032300: from=<g@gmail.com>, size=5938, "
      "class=0, nrcpts=7, msgid=<2016@gmail.com>, proto=ESMTP, daemon=MTA, relay=[64.233.187.27]");
  EXPECT_EQ(m.origin, mta::sendmail);
  EXPECT_EQ(m.type, line_type::sender);
  EXPECT_EQ(m.queue_id, "u31FFPtp032300");
  EXPECT_EQ(m.sender, "g@gmail.com");
  EXPECT_EQ(m.size, 5938U);
  EXPECT_EQ(m.nrcpt, 7U);
  EXPECT_EQ(m.client_address, "64.233.187.27");

  m = parse_one(
      "Apr  2 00:15:25 mta001 sendmail[32302]: u31FFPtp032300: to=<s1@example.com>,"
      "<s2@example.com>, delay=00:00:00, xdelay=00:00:00, mailer=esmtp, pri=245938, "
      "relay=[93.184.216.34] [93.184.216.34], dsn=2.0.0, stat=Sent (ok: accepted)");
  EXPECT_EQ(m.type, line_type::delivery);
  EXPECT_EQ(m.recipients, "<s1@example.com>,<s2@example.com>");
  EXPECT_EQ(m.service, "esmtp");
  EXPECT_EQ(m.status, delivery_status::sent);
  std::vector<std::string> each;
  for_each_address(m.recipients, [&](std::string_view a) { each.emplace_back(a); });
  EXPECT_EQ(each, (std::vector<std::string>{"s1@example.com", "s2@example.com"}));

  m = parse_one(
      "Apr  2 00:15:25 mta001 sendmail[32302]: u31FFPtp032300: to=root@localhost, "
      "ctladdr=root@localhost (0/0), delay=00:00:00, mailer=local, pri=1, dsn=2.0.0, "
      "stat=Sent");
  EXPECT_EQ(m.recipients, "root@localhost");
  EXPECT_EQ(m.service, "local");
  EXPECT_EQ(m.status, delivery_status::sent);

  m = parse_one(
      "Apr  3 00:15:40 mta001 sendmail[12566]: u31FFPtp032300: to=<d@example.com>, "
      "delay=1+00:00:15, mailer=esmtp, dsn=4.3.5, stat=Deferred: 451 4.3.5 problem");
  EXPECT_EQ(m.status, delivery_status::deferred);

  m = parse_one(
      "Feb 25 14:34:10 kismet sm-acceptingconnections[27713]: s1P819mk027713: "
      "ruleset=check_rcpt, arg1=<a@freemailhost.ru>, relay=128-68.corbina.ru "
      "[128.68.136.133], reject=550 5.7.1 <a@freemailhost.ru>... Relaying denied");
  EXPECT_EQ(m.type, line_type::reject);
  EXPECT_EQ(m.stage, "check_rcpt");
  EXPECT_EQ(m.client_address, "128.68.136.133");
  EXPECT_EQ(m.recipients, "<a@freemailhost.ru>");
}

// ---------------------------------------------------------------------------------------------
// The grok-pattern corpus: message parts with expected fields. We check the fields we extract.

struct grok_case {
  std::string file;
  std::string data;
  std::map<std::string, std::string> results;
};

std::string unquote(std::string v) {
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') {
    std::string out;
    for (std::size_t i = 1; i + 1 < v.size(); ++i) {
      if (v[i] == '\\' && i + 2 < v.size()) ++i;
      out.push_back(v[i]);
    }
    return out;
  }
  return v;
}

// The corpus YAML is flat: "pattern:", "data:", "results:" and indented "key: value" lines.
grok_case read_yaml(const std::filesystem::path& path) {
  grok_case c;
  c.file = path.filename().string();
  std::ifstream in(path);
  std::string line;
  bool in_results = false;
  while (std::getline(in, line)) {
    if (line.starts_with("data: ")) {
      c.data = unquote(line.substr(6));
    } else if (line.starts_with("results:")) {
      in_results = true;
    } else if (in_results && line.starts_with("    ")) {
      const std::size_t colon = line.find(": ");
      if (colon == std::string::npos) continue;
      c.results[line.substr(4, colon - 4)] = unquote(line.substr(colon + 2));
    }
  }
  return c;
}

TEST(GrokCorpus, ExtractedFieldsMatchTheOracle) {
  RCPTGUARD_NEEDS_CORPUS();
  const auto dir = corpus / "postfix-grok-patterns" / "yaml";
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
  std::size_t cases = 0;
  std::size_t checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const grok_case c = read_yaml(entry.path());
    ++cases;
    // The daemon name is the file's prefix ("smtpd_0001.yaml").
    std::string service = c.file.substr(0, c.file.rfind('_'));
    if (service == "tls_features" || service == "command_counter_data" || service == "delays" ||
        service == "relay" || service == "error") {
      service = "smtp";
    }
    mail_line m;
    parse_postfix("postfix", service, c.data, m);
    const auto expect = [&](const char* key, std::string_view got) {
      const auto it = c.results.find(key);
      if (it == c.results.end()) return;
      ++checked;
      EXPECT_EQ(got, it->second) << c.file << ": " << key << " in " << c.data;
    };
    if (m.type == line_type::client || m.type == line_type::connect ||
        m.type == line_type::disconnect || m.type == line_type::reject ||
        m.type == line_type::postscreen) {
      expect("postfix_client_ip", m.client_address);
    }
    if (m.type == line_type::client || m.type == line_type::connect) {
      expect("postfix_client_hostname", m.client_name);
    }
    if (m.type == line_type::reject && !m.queue_id.empty()) expect("postfix_queueid", m.queue_id);
    if (m.type == line_type::reject) {
      expect("postfix_action", m.action);
      expect("postfix_smtp_stage", m.stage);
    }
    if (m.type == line_type::delivery || m.type == line_type::sender ||
        m.type == line_type::client || m.type == line_type::message_id ||
        m.type == line_type::removed) {
      expect("postfix_queueid", m.queue_id);
    }
    // Verify probes ("undeliverable-but-not-cached") are deliveries of no status we count.
    if (m.type == line_type::delivery && m.status != delivery_status::other) {
      expect("postfix_status", status_name(m.status));
    }
    if (m.type == line_type::message_id) expect("postfix_message-id", m.message_id);
    // Every case whose oracle has a delivery status must be recognised as a delivery (qmgr's
    // "status=expired, returned to sender" has no recipient and is not one).
    if (c.results.contains("postfix_status") && c.data.find("to=") != std::string::npos) {
      EXPECT_EQ(m.type, line_type::delivery) << c.file;
    }
    if (c.results.contains("postfix_action") && c.results.contains("postfix_smtp_stage")) {
      EXPECT_EQ(m.type, line_type::reject) << c.file;
    }
  }
  EXPECT_EQ(cases, 191U);
  EXPECT_EQ(checked, 119U);
}

// ---------------------------------------------------------------------------------------------
// Every log file of the corpus: no crash, and the counts are what they are.

struct file_counts {
  std::uint64_t lines, mail, mail_other, other_program, blank, no_timestamp, malformed;
};

parse_counts parse_file(const std::filesystem::path& path) {
  timestamp_options o = utc_at(jan_2026);
  line_parser parser(o);
  line_reader reader(path.string());
  std::string_view line;
  syslog_line env;
  mail_line mail;
  while (reader.next(line)) parser.parse(line, env, mail);
  return parser.counts();
}

TEST(LogCorpus, EveryFileParsesWithKnownCounts) {
  RCPTGUARD_NEEDS_CORPUS();
  // lines, mail, mail_other, other_program, blank, no_timestamp, malformed
  const std::map<std::string, file_counts> expected{
      {"fail2ban/postfix.log", {203, 34, 29, 0, 52, 88, 0}},
      {"fail2ban/sendmail-auth.log", {36, 0, 13, 0, 9, 14, 0}},
      {"fail2ban/sendmail-reject.log", {131, 30, 15, 0, 38, 48, 0}},
      {"fluent-plugin-sendmail/sendmail-delivery.log", {10, 7, 3, 0, 0, 0, 0}},
      {"lograptor/postfix.log", {21, 18, 3, 0, 0, 0, 0}},
      {"lograptor/rfc5424.log", {3, 0, 0, 3, 0, 0, 0}},
      {"pixelpark-postfix-logsums/mail.log.first12000lines.log", {12000, 8430, 3533, 37, 0, 0, 0}},
      {"postfix-grok-patterns/messages.txt", {191, 0, 0, 0, 0, 191, 0}},
      {"youyo-postfix-log-parser/test-iso8601.log", {22, 22, 0, 0, 0, 0, 0}},
      {"youyo-postfix-log-parser/test-milter.log", {16, 12, 0, 0, 3, 1, 0}},
      {"youyo-postfix-log-parser/test.log", {22, 22, 0, 0, 0, 0, 0}},
  };
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(corpus)) {
    if (!entry.is_regular_file()) continue;
    const auto rel = std::filesystem::relative(entry.path(), corpus).generic_string();
    // xz needs liblzma (not a dependency); its first 12000 lines are beside it, decompressed.
    // The YAML and JSONL files are the grok oracle, read by the test above.
    if (rel.ends_with(".xz") || rel.ends_with(".yaml") || rel.ends_with(".jsonl")) continue;
    ++files;
    const parse_counts got = parse_file(entry.path());
    EXPECT_EQ(got.parsed() + got.skipped(), got.lines) << rel;
    const auto it = expected.find(rel);
    ASSERT_NE(it, expected.end()) << "new corpus file " << rel << ": " << got.lines;
    const file_counts& e = it->second;
    EXPECT_EQ(got.lines, e.lines) << rel;
    EXPECT_EQ(got.mail, e.mail) << rel;
    EXPECT_EQ(got.mail_other, e.mail_other) << rel;
    EXPECT_EQ(got.other_program, e.other_program) << rel;
    EXPECT_EQ(got.blank, e.blank) << rel;
    EXPECT_EQ(got.no_timestamp, e.no_timestamp) << rel;
    EXPECT_EQ(got.malformed, e.malformed) << rel;
  }
  EXPECT_EQ(files, expected.size());
}

}  // namespace
}  // namespace rcptguard::ingest
