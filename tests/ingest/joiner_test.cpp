// Queue-id joining: which deliveries become message events, with what, and bounded state.
#include "ingest/joiner.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "ingest/line_parser.hpp"
#include "ingest/reader.hpp"
#include "tests/common/corpus.hpp"

namespace rcptguard::ingest {
namespace {

using namespace std::chrono_literals;

const std::filesystem::path corpus = std::filesystem::path(RCPTGUARD_CORPUS_DIR) / "logs";

timestamp_options utc() {
  timestamp_options o;
  o.reference = from_unix_seconds(1768046400);  // 2026-01-10
  o.utc_offset = 0s;
  return o;
}

struct run {
  std::vector<message_event> events;
  joiner_stats stats;
};

run join_lines(const std::vector<std::string>& lines, joiner_options options = {}) {
  line_parser parser(utc());
  joiner j(std::move(options));
  run r;
  syslog_line env;
  mail_line mail;
  for (const std::string& l : lines) {
    if (parser.parse(l, env, mail) == line_result::mail) j.add(env.time, env.host, mail, r.events);
  }
  r.stats = j.stats();
  return r;
}

run join_file(const std::filesystem::path& path, joiner_options options = {}) {
  line_reader reader(path.string());
  std::vector<std::string> lines;
  std::string_view l;
  while (reader.next(l)) lines.emplace_back(l);
  return join_lines(lines, std::move(options));
}

TEST(Joiner, PostfixLocalDeliveryCarriesTheArrival) {
  RCPTGUARD_NEEDS_CORPUS();
  const run r = join_file(corpus / "lograptor" / "postfix.log");
  ASSERT_EQ(r.events.size(), 1U);
  const message_event& e = r.events[0];
  // orig_to: what the client sent in RCPT TO, as the policy hook would have seen it.
  EXPECT_EQ(e.recipient, "tyrannosaurus.rex@dinos.test");
  EXPECT_EQ(e.sender, "triceratops@dinos.test");
  EXPECT_EQ(e.client_address, "192.168.4.150");
  EXPECT_EQ(e.size, 2703U);
  EXPECT_TRUE(e.authenticated);
  EXPECT_EQ(e.status, delivery_status::sent);
  EXPECT_EQ(e.queue_id, "4B80DE08044");
  EXPECT_EQ(e.source_host, "raptor");
  EXPECT_EQ(e.instance, "postfix");
  EXPECT_EQ(to_unix_seconds(e.time) % 86400, 9 * 3600 + 50 * 60 + 8);
  EXPECT_EQ(r.stats.relayed, 5U);  // smtp to the content filter and outside
  EXPECT_EQ(r.stats.messages_removed, 3U);
  EXPECT_EQ(r.stats.open_messages, 0U);
}

TEST(Joiner, SendmailMailersAndRepeats) {
  RCPTGUARD_NEEDS_CORPUS();
  const run local = join_file(corpus / "fluent-plugin-sendmail" / "sendmail-delivery.log");
  ASSERT_EQ(local.events.size(), 1U);
  EXPECT_EQ(local.events[0].recipient, "root@localhost.localdomain");
  EXPECT_EQ(local.events[0].sender, "grandeur09@gmail.com");
  EXPECT_EQ(local.events[0].client_address, "64.233.187.27");
  EXPECT_EQ(local.events[0].size, 5938U);
  EXPECT_EQ(local.events[0].origin, mta::sendmail);
  EXPECT_EQ(local.stats.relayed, 5U);

  // On a gateway the esmtp deliveries are the inbound ones.
  joiner_options gateway;
  gateway.delivery_agents = {"esmtp", "local"};
  const run all = join_file(corpus / "fluent-plugin-sendmail" / "sendmail-delivery.log", gateway);
  std::vector<std::string> got;
  for (const auto& e : all.events)
    got.push_back(e.recipient + ":" + std::string(status_name(e.status)));
  EXPECT_EQ(
      got, (std::vector<std::string>{
               "sent1@example.com:sent", "sent2@example.com:sent", "deferred1@example.com:deferred",
               "deferred2@example.com:deferred", "sent3@example2.com:sent",
               "sent4@example2.com:sent", "root@localhost.localdomain:sent"}));
  EXPECT_EQ(all.stats.repeated, 1U);  // deferred1's later success is the same message
}

std::vector<std::string> message(const std::string& qid, const std::string& service,
                                 const std::string& time, const std::string& rcpt) {
  return {
      "Jan 10 " + time + " mx postfix/" + service + "[1]: " + qid + ": client=a[192.0.2.7]",
      "Jan 10 " + time + " mx postfix/qmgr[2]: " + qid + ": from=<s@x.test>, size=10, nrcpt=1",
      "Jan 10 " + time + " mx postfix/local[3]: " + qid + ": to=<" + rcpt +
          ">, relay=local, delay=0.1, status=sent (delivered to mailbox)",
      "Jan 10 " + time + " mx postfix/qmgr[2]: " + qid + ": removed",
  };
}

TEST(Joiner, InstanceSelectionKeepsThePolicyCoveredServiceOut) {
  std::vector<std::string> lines = message("AAAA1", "smtpd", "10:00:00", "a@y.test");
  const auto submission = message("BBBB2", "submission/smtpd", "10:00:01", "b@y.test");
  lines.insert(lines.end(), submission.begin(), submission.end());
  joiner_options options;
  options.instances = {"postfix/submission"};
  const run r = join_lines(lines, options);
  ASSERT_EQ(r.events.size(), 1U);
  EXPECT_EQ(r.events[0].recipient, "b@y.test");
  EXPECT_EQ(r.events[0].instance, "postfix/submission");
  EXPECT_EQ(r.stats.filtered, 1U);
}

TEST(Joiner, IncompleteMessagesExpireAndTheCapHolds) {
  std::vector<std::string> lines;
  for (int i = 0; i < 50; ++i) {
    lines.push_back("Jan 10 10:00:" + std::string(i < 10 ? "0" : "") + std::to_string(i) +
                    " mx postfix/smtpd[1]: C0FFEE" + std::to_string(10 + i) +
                    ": client=a[192.0.2.1]");
  }
  joiner_options capped;
  capped.max_open_messages = 20;
  const run r = join_lines(lines, capped);
  EXPECT_EQ(r.stats.open_messages, 20U);
  EXPECT_EQ(r.stats.messages_evicted, 30U);

  lines.push_back("Jan 10 13:00:00 mx postfix/anvil[1]: ABCDEF1: client=a[192.0.2.1]");
  joiner_options hour;
  hour.expiry = 1h;
  const run expired = join_lines(lines, hour);
  EXPECT_EQ(expired.stats.messages_expired, 50U);
  EXPECT_EQ(expired.stats.open_messages, 1U);
}

TEST(Joiner, DeliveryWithoutArrivalIsAnOrphanButCounted) {
  const run r =
      join_lines({"Jan 10 10:00:00 mx postfix/virtual[3]: DEAD12345: to=<u@y.test>, "
                  "relay=virtual, delay=0.1, status=bounced (mailbox full)"});
  ASSERT_EQ(r.events.size(), 1U);
  EXPECT_EQ(r.events[0].status, delivery_status::bounced);
  EXPECT_EQ(r.events[0].sender, "");
  EXPECT_EQ(r.stats.orphan_deliveries, 1U);
}

TEST(Joiner, PixelparkContentFilterIsCountedOnce) {
  RCPTGUARD_NEEDS_CORPUS();
  // smtpd -> amavis (postfix/amavis/smtp, relayed) -> postfix/10025/smtpd -> pipe to dovecot.
  const run r = join_file(corpus / "pixelpark-postfix-logsums" / "mail.log.first12000lines.log");
  // 28 pipe deliveries of re-injected mail plus root's local mail, which came from pickup.
  EXPECT_EQ(r.stats.events, 29U);
  EXPECT_EQ(r.stats.relayed, 28U);
  std::size_t reinjected = 0;
  for (const auto& e : r.events) reinjected += e.instance == "postfix/10025" ? 1 : 0;
  EXPECT_EQ(reinjected, 28U);
}

}  // namespace
}  // namespace rcptguard::ingest
