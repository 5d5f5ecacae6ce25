// Deliveries seen in the mail log (engine::observe_delivery): the same counting and verdicts as
// the policy path's RCPT + END-OF-MESSAGE, but always accepted (the mail is delivered already),
// never an enforced DEFER, marked as log records, and invisible to END-OF-MESSAGE detection.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "harness.hpp"

namespace rcptguard::decision {
namespace {

using testing::at_minutes;
using testing::at_seconds;
using testing::driver;
using testing::test_settings;

constexpr std::string_view victim = "bob@example.test";

/// One recipient of one message, fed either way.
struct mail {
  std::string recipient;
  std::string sender;
  std::string client;
  time_point at;
  bool authenticated = false;
};

verdict by_log(engine& e, const mail& m) {
  observed_delivery d;
  d.recipient = m.recipient;
  d.sender = m.sender;
  d.client_address = m.client;
  d.size = 1000;
  d.authenticated = m.authenticated;
  return e.observe_delivery(d, m.at);
}

verdict by_log(engine& e, std::string_view recipient, std::string_view sender,
               std::string_view client, time_point at, bool authenticated = false) {
  return by_log(
      e, mail{std::string(recipient), std::string(sender), std::string(client), at, authenticated});
}

/// RCPT, then END-OF-MESSAGE unless the RCPT was deferred: what Postfix sends for one message.
verdict by_policy(engine& e, const mail& m, const std::string& instance) {
  protocol::policy_request rcpt = testing::rcpt_request(m.recipient, m.sender, m.client, instance);
  if (m.authenticated) rcpt.sasl_username = "someone";
  verdict v = e.decide(rcpt, 1, m.at);
  if (v.level != verdict_level::defer) {
    e.decide(testing::eom_request(instance, m.recipient, 1, 1000, m.sender, m.client), 1, m.at);
  }
  return v;
}

/// `count` messages to `recipient`, `step_seconds` apart from `start_seconds`, rotating over
/// `senders` senders and `clients` clients, as logged deliveries. Returns every verdict.
std::vector<verdict> log_flood(engine& e, std::string_view recipient, int count,
                               double start_seconds, double step_seconds, int senders = 5,
                               int clients = 5) {
  std::vector<verdict> out;
  for (int i = 0; i < count; ++i) {
    out.push_back(by_log(e, recipient, driver::sender(i % senders), driver::client(i % clients),
                         at_minutes((start_seconds + i * step_seconds) / 60.0)));
  }
  return out;
}

/// A mailbox life: correspondence two hours before, then a 16-minute flood from many senders
/// and a few clients (crossing warn and defer), with the victim's correspondents, the null
/// sender and other recipients' ordinary mail mixed in, then quiet.
std::vector<mail> life() {
  std::vector<mail> out;
  out.push_back({std::string(victim), "alice@friends.example", "203.0.113.5", at_minutes(-120)});
  out.push_back(
      {"carol@partner.example", "Bob+out@example.test", "10.0.0.5", at_minutes(-119), true});
  out.push_back({"dave@example.test", "news@lists.example", "203.0.113.80", at_minutes(-60)});
  for (int i = 0; i < 240; ++i) {
    const time_point t = at_seconds(i * 4);
    std::string sender = driver::sender(i % 40, "spam.example");
    if (i % 17 == 0) sender = "";
    if (i % 23 == 0) sender = "Alice+x@friends.example";
    if (i % 29 == 0) sender = "carol@partner.example";
    out.push_back({std::string(victim), sender, driver::client(i % 6), t});
    if (i % 3 == 0) {
      out.push_back({"r" + std::to_string(i % 20) + "@example.test", "list@ex.org",
                     driver::client(50 + i % 4), t});
    }
  }
  out.push_back({std::string(victim), "late@ex.org", "192.0.2.50", at_minutes(40)});
  return out;
}

void expect_same_verdict(const verdict& policy, const verdict& log, std::size_t n) {
  EXPECT_EQ(policy.level, log.level) << "message " << n;
  EXPECT_EQ(policy.action.verb, log.action.verb) << "message " << n;
  EXPECT_EQ(policy.action.text, log.action.text) << "message " << n;
  ASSERT_EQ(policy.reasons.size(), log.reasons.size()) << "message " << n;
  for (std::size_t r = 0; r < policy.reasons.size(); ++r) {
    EXPECT_EQ(policy.reasons[r].name, log.reasons[r].name) << "message " << n;
    EXPECT_DOUBLE_EQ(policy.reasons[r].weight, log.reasons[r].weight) << "message " << n;
    EXPECT_DOUBLE_EQ(policy.reasons[r].observed, log.reasons[r].observed) << "message " << n;
    EXPECT_DOUBLE_EQ(policy.reasons[r].baseline, log.reasons[r].baseline) << "message " << n;
    EXPECT_EQ(policy.reasons[r].detail, log.reasons[r].detail) << "message " << n;
  }
}

void expect_same_view(const recipient_view& policy, const recipient_view& log,
                      std::string_view who) {
  EXPECT_TRUE(policy.tracked) << who;
  EXPECT_EQ(policy.tracked, log.tracked) << who;
  for (std::size_t w = 0; w < all_windows.size(); ++w) {
    EXPECT_DOUBLE_EQ(policy.attempted[w], log.attempted[w]) << who << " window " << w;
    EXPECT_DOUBLE_EQ(policy.accepted[w], log.accepted[w]) << who << " window " << w;
    EXPECT_DOUBLE_EQ(policy.expected[w], log.expected[w]) << who << " window " << w;
  }
  EXPECT_DOUBLE_EQ(policy.senders_ten, log.senders_ten) << who;
  EXPECT_DOUBLE_EQ(policy.senders_hour, log.senders_hour) << who;
  EXPECT_DOUBLE_EQ(policy.clients_ten, log.clients_ten) << who;
  EXPECT_DOUBLE_EQ(policy.top_client_share, log.top_client_share) << who;
  EXPECT_DOUBLE_EQ(policy.score, log.score) << who;
  EXPECT_EQ(policy.in_episode, log.in_episode) << who;
  EXPECT_EQ(policy.held, log.held) << who;
}

// --- The same message counted either way -------------------------------------------------------

class SameAsPolicy : public ::testing::TestWithParam<eom_hook> {};

TEST_P(SameAsPolicy, CountsVerdictsAndRecordsMatchAcrossAFlood) {
  // Monitor mode: there the policy path accepts every message too (a would-be DEFER is a WARN
  // and END-OF-MESSAGE follows), so both engines must end up with the same state.
  settings s = test_settings();
  s.mode = detection_mode::monitor;
  s.end_of_message_hook = GetParam();
  engine policy(s, 42);
  engine log(s, 42);

  const std::vector<mail> mails = life();
  int warned = 0;
  recipient_view mid;
  for (std::size_t n = 0; n < mails.size(); ++n) {
    const mail& m = mails[n];
    const verdict p = by_policy(policy, m, "1f2e.65a1b2c3." + std::to_string(n));
    const verdict l = by_log(log, m);
    expect_same_verdict(p, l, n);
    warned += l.level == verdict_level::warn ? 1 : 0;
    const recipient_view seen = log.inspect(m.recipient, m.at);
    expect_same_view(policy.inspect(m.recipient, m.at), seen, m.recipient);
    if (m.recipient == victim && m.at == at_seconds(596)) mid = seen;
  }
  // The flood crossed both thresholds, and the known correspondents passed.
  EXPECT_GT(warned, 100);
  const time_point end = mails.back().at;
  expect_same_view(policy.inspect(victim, end), log.inspect(victim, end), "victim");
  expect_same_view(policy.inspect("r3@example.test", at_seconds(950)),
                   log.inspect("r3@example.test", at_seconds(950)), "r3");
  expect_same_view(policy.inspect("carol@partner.example", end),
                   log.inspect("carol@partner.example", end), "carol");
  ASSERT_TRUE(mid.tracked);
  EXPECT_DOUBLE_EQ(mid.attempted[1], 150.0);  // minutes 0-9 of one every 4 seconds
  EXPECT_DOUBLE_EQ(mid.accepted[1], 150.0);
  EXPECT_TRUE(mid.in_episode);
  EXPECT_EQ(mid.held, verdict_level::defer);

  const engine_stats ps = policy.stats();
  const engine_stats ls = log.stats();
  EXPECT_GT(ls.monitor_would_defer, 50U);
  EXPECT_EQ(ps.monitor_would_defer, ls.monitor_would_defer);
  EXPECT_EQ(ps.verdicts_warn, ls.verdicts_warn);
  EXPECT_EQ(ls.verdicts_defer, 0U);
  EXPECT_GT(ls.correspondent_passes, 5U);
  EXPECT_EQ(ps.correspondent_passes, ls.correspondent_passes);
  EXPECT_EQ(ps.correspondents, ls.correspondents);
  EXPECT_EQ(ps.tracked_recipients, ls.tracked_recipients);
  EXPECT_EQ(ps.open_episodes, ls.open_episodes);
  EXPECT_EQ(ls.observed_deliveries, mails.size());
  EXPECT_EQ(ps.observed_deliveries, 0U);
  EXPECT_EQ(ls.requests, 0U);
  EXPECT_EQ(ls.rcpt_requests, 0U);
  EXPECT_EQ(ls.end_of_message_requests, 0U);

  // The records say the same, each marked with its source.
  const outbox& pb = policy.pending();
  const outbox& lb = log.pending();
  ASSERT_EQ(pb.deliveries.size(), lb.deliveries.size());
  for (std::size_t i = 0; i < lb.deliveries.size(); ++i) {
    EXPECT_EQ(pb.deliveries[i].recipient, lb.deliveries[i].recipient) << i;
    EXPECT_EQ(pb.deliveries[i].sender, lb.deliveries[i].sender) << i;
    EXPECT_EQ(pb.deliveries[i].client, lb.deliveries[i].client) << i;
    EXPECT_EQ(pb.deliveries[i].at, lb.deliveries[i].at) << i;
    EXPECT_EQ(pb.deliveries[i].authenticated, lb.deliveries[i].authenticated) << i;
    EXPECT_TRUE(pb.deliveries[i].accepted) << i;
    EXPECT_TRUE(lb.deliveries[i].accepted) << i;
    EXPECT_EQ(pb.deliveries[i].source, event_source::policy) << i;
    EXPECT_EQ(lb.deliveries[i].source, event_source::log) << i;
  }
  ASSERT_EQ(pb.verdicts.size(), lb.verdicts.size());
  for (std::size_t i = 0; i < lb.verdicts.size(); ++i) {
    EXPECT_EQ(pb.verdicts[i].level, lb.verdicts[i].level) << i;
    EXPECT_EQ(pb.verdicts[i].monitor_only, lb.verdicts[i].monitor_only) << i;
    EXPECT_DOUBLE_EQ(pb.verdicts[i].score, lb.verdicts[i].score) << i;
    EXPECT_EQ(pb.verdicts[i].action_text, lb.verdicts[i].action_text) << i;
    EXPECT_EQ(pb.verdicts[i].reasons.size(), lb.verdicts[i].reasons.size()) << i;
    EXPECT_EQ(lb.verdicts[i].source, event_source::log) << i;
  }
  ASSERT_EQ(pb.episodes.size(), lb.episodes.size());
  for (std::size_t i = 0; i < lb.episodes.size(); ++i) {
    EXPECT_EQ(pb.episodes[i].started, lb.episodes[i].started) << i;
    EXPECT_EQ(pb.episodes[i].peak_level, lb.episodes[i].peak_level) << i;
    EXPECT_DOUBLE_EQ(pb.episodes[i].peak_score, lb.episodes[i].peak_score) << i;
    EXPECT_EQ(pb.episodes[i].summary, lb.episodes[i].summary) << i;
    EXPECT_EQ(lb.episodes[i].source, event_source::log) << i;
  }

  // Housekeeping on the same clock closes the episodes the same way (once the flood has left
  // the 24-hour window too: it holds the score above the warn exit until then).
  for (int m = 41; m <= 26 * 60; m += 5) {
    policy.tick(at_minutes(m));
    log.tick(at_minutes(m));
  }
  EXPECT_FALSE(policy.inspect(victim, at_minutes(26 * 60)).in_episode);
  EXPECT_FALSE(log.inspect(victim, at_minutes(26 * 60)).in_episode);
  ASSERT_EQ(pb.episodes.size(), lb.episodes.size());
  ASSERT_FALSE(lb.episodes.empty());
  EXPECT_TRUE(lb.episodes.back().ended);
  EXPECT_EQ(lb.episodes.back().source, event_source::log);
  EXPECT_EQ(pb.episodes.back().updated, lb.episodes.back().updated);
}

INSTANTIATE_TEST_SUITE_P(Hook, SameAsPolicy,
                         ::testing::Values(eom_hook::present, eom_hook::auto_detect),
                         [](const ::testing::TestParamInfo<eom_hook>& param) {
                           return param.param == eom_hook::present ? std::string("Present")
                                                                   : std::string("Auto");
                         });

// --- Records -----------------------------------------------------------------------------------

TEST(ObservedDelivery, RecordsAreLogRecordsAndAccepted) {
  engine e(test_settings(), 42);
  observed_delivery d;
  d.recipient = "Bob+tag@Example.TEST";
  d.sender = "Carol@Partner.example";
  d.client_address = "2001:db8:1:2::7";
  d.size = 4321;
  d.authenticated = true;
  EXPECT_EQ(e.observe_delivery(d, at_seconds(0)).level, verdict_level::dunno);

  ASSERT_EQ(e.pending().deliveries.size(), 1U);
  const delivery_record& first = e.pending().deliveries.front();
  EXPECT_EQ(first.recipient, "bob@example.test");
  EXPECT_EQ(first.sender, "carol@partner.example");
  EXPECT_EQ(first.client, "2001:db8:1:2::/64");  // ipv6_prefix 64
  EXPECT_EQ(first.size, 4321U);
  EXPECT_EQ(first.at, at_seconds(0));
  EXPECT_TRUE(first.accepted);
  EXPECT_TRUE(first.authenticated);
  EXPECT_EQ(first.source, event_source::log);

  // 20 in 10 minutes: a WARN, recorded as a log verdict in a log episode.
  const std::vector<verdict> answers = log_flood(e, victim, 19, 30, 30);
  EXPECT_EQ(answers.back().level, verdict_level::warn);
  const outbox& box = e.pending();
  ASSERT_EQ(box.deliveries.size(), 20U);
  for (const delivery_record& r : box.deliveries) {
    EXPECT_TRUE(r.accepted);
    EXPECT_EQ(r.source, event_source::log);
  }
  ASSERT_EQ(box.verdicts.size(), 1U);
  EXPECT_EQ(box.verdicts.front().level, verdict_level::warn);
  EXPECT_FALSE(box.verdicts.front().monitor_only);
  EXPECT_EQ(box.verdicts.front().source, event_source::log);
  EXPECT_EQ(box.verdicts.front().action_text,
            "WARN rcptguard: bob@example.test 20 msgs/10m, baseline 0.1, 6 senders");
  ASSERT_EQ(box.episodes.size(), 1U);
  EXPECT_EQ(box.episodes.front().source, event_source::log);

  // The source is not sticky: the next policy request records as policy again, while the
  // episode the log opened keeps its source.
  const verdict v =
      e.decide(testing::rcpt_request(victim, "x@ex.org", "192.0.2.9", "i-1"), 1, at_minutes(10.1));
  EXPECT_EQ(v.level, verdict_level::warn);
  e.decide(testing::eom_request("i-1", victim, 1, 10, "x@ex.org", "192.0.2.9"), 1,
           at_minutes(10.1));
  EXPECT_EQ(box.deliveries.back().source, event_source::policy);
  EXPECT_EQ(box.verdicts.back().source, event_source::policy);
  for (const episode_record& r : box.episodes) EXPECT_EQ(r.source, event_source::log);
}

// --- Never an enforced DEFER -------------------------------------------------------------------

TEST(ObservedDelivery, EnforceModeRecordsWouldDeferAndCountsAccepted) {
  settings s = test_settings();
  ASSERT_EQ(s.mode, detection_mode::enforce);
  engine e(s, 42);
  const std::vector<verdict> answers = log_flood(e, victim, 60, 0, 8);
  for (const verdict& v : answers) {
    EXPECT_NE(v.level, verdict_level::defer);
    EXPECT_NE(v.action.verb, protocol::action_verb::defer_if_permit);
  }
  const verdict& last = answers.back();
  EXPECT_EQ(last.level, verdict_level::warn);
  EXPECT_EQ(last.action.verb, protocol::action_verb::warn);
  EXPECT_NE(last.action.text.find("(monitor: would defer)"), std::string::npos) << last.action.text;
  ASSERT_FALSE(last.reasons.empty());
  EXPECT_EQ(last.reasons.front().name, "volume_10m");

  const recipient_view view = e.inspect(victim, at_seconds(472));
  EXPECT_DOUBLE_EQ(view.attempted[1], 60.0);
  EXPECT_DOUBLE_EQ(view.accepted[1], 60.0);  // a deferred RCPT would not have been
  EXPECT_EQ(view.held, verdict_level::defer);

  const outbox& box = e.pending();
  ASSERT_EQ(box.deliveries.size(), 60U);
  for (const delivery_record& r : box.deliveries) EXPECT_TRUE(r.accepted);
  ASSERT_FALSE(box.verdicts.empty());
  const verdict_record& record = box.verdicts.back();
  EXPECT_EQ(record.level, verdict_level::defer);
  EXPECT_TRUE(record.monitor_only);
  EXPECT_EQ(record.source, event_source::log);
  EXPECT_TRUE(record.action_text.starts_with("WARN rcptguard: bob@example.test 60 msgs/10m"))
      << record.action_text;
  EXPECT_EQ(box.episodes.back().peak_level, verdict_level::defer);

  const engine_stats st = e.stats();
  EXPECT_EQ(st.verdicts_defer, 0U);
  EXPECT_EQ(st.monitor_would_defer, 21U);  // the 40th to the 60th
  EXPECT_EQ(st.observed_deliveries, 60U);

  // The same flood as policy requests in the same mode is deferred for real.
  driver d(s);
  EXPECT_EQ(d.flood(victim, 60, 0, 8).level, verdict_level::defer);
}

// --- END-OF-MESSAGE auto-detection -------------------------------------------------------------

TEST(ObservedDelivery, DoesNotMakeAnAutoDetectEngineTwoPhase) {
  settings s = test_settings();
  ASSERT_EQ(s.end_of_message_hook, eom_hook::auto_detect);
  engine e(s, 42);
  log_flood(e, victim, 30, 0, 10);
  engine_stats st = e.stats();
  EXPECT_FALSE(st.two_phase);
  EXPECT_EQ(st.open_transactions, 0U);
  EXPECT_EQ(st.transactions_committed, 0U);
  EXPECT_EQ(st.requests, 0U);
  EXPECT_EQ(st.observed_deliveries, 30U);

  // So a policy RCPT still counts as accepted at once, as before any END-OF-MESSAGE.
  e.decide(testing::rcpt_request("amy@example.test", "x@ex.org", "192.0.2.9", "i-1"), 1,
           at_seconds(400));
  EXPECT_FALSE(e.stats().two_phase);
  const delivery_record& last = e.pending().deliveries.back();
  EXPECT_EQ(last.recipient, "amy@example.test");
  EXPECT_TRUE(last.accepted);
  EXPECT_EQ(last.source, event_source::policy);
  EXPECT_DOUBLE_EQ(e.inspect("amy@example.test", at_seconds(400)).accepted[1], 1.0);
}

// --- Never the victim's DoS, on the log path too ------------------------------------------------

TEST(ObservedDelivery, KnownCorrespondentsPassUnknownWouldBeDeferred) {
  engine e(test_settings(), 42);
  // Two hours before the flood: alice writes to bob; bob (logged in) writes to carol.
  by_log(e, victim, "alice@friends.example", "203.0.113.5", at_minutes(-120));
  by_log(e, "carol@partner.example", victim, "10.0.0.5", at_minutes(-119), true);

  ASSERT_EQ(log_flood(e, victim, 60, 0, 8).back().level, verdict_level::warn);
  ASSERT_EQ(e.pending().verdicts.back().level, verdict_level::defer);
  const time_point during = at_minutes(8.5);
  const std::size_t before = e.pending().verdicts.size();
  EXPECT_EQ(by_log(e, victim, "Alice+news@friends.example", "203.0.113.9", during).level,
            verdict_level::dunno);
  EXPECT_EQ(by_log(e, victim, "carol@partner.example", "198.18.0.1", during).level,
            verdict_level::dunno);
  EXPECT_EQ(e.pending().verdicts.size(), before);  // DUNNO: no verdict record
  const verdict stranger = by_log(e, victim, "stranger@unknown.example", "198.18.0.2", during);
  EXPECT_EQ(stranger.level, verdict_level::warn);
  EXPECT_EQ(e.pending().verdicts.back().level, verdict_level::defer);
  EXPECT_TRUE(e.pending().verdicts.back().monitor_only);
  // The null sender is never a correspondent.
  EXPECT_EQ(by_log(e, victim, "", "198.18.0.3", during).level, verdict_level::warn);
  EXPECT_EQ(e.pending().verdicts.size(), before + 2);
  EXPECT_EQ(e.stats().correspondent_passes, 2U);
}

TEST(ObservedDelivery, AllowListedRecipientSenderAndClientPassAndAreStillCounted) {
  settings s = test_settings();
  s.allow_recipients = {"*@lists.example.test"};
  s.allow_senders = {"alerts@monitoring.example"};
  // Narrower than ipv6_prefix: matched against the address as logged, not its /64 key.
  s.allow_clients = {"192.0.2.0/24", "2001:db8:5::1/128"};
  engine e(s, 42);

  const std::vector<verdict> list = log_flood(e, "dev@lists.example.test", 100, 0, 5);
  for (const verdict& v : list) EXPECT_EQ(v.level, verdict_level::dunno);
  const recipient_view dev = e.inspect("dev@lists.example.test", at_seconds(500));
  EXPECT_DOUBLE_EQ(dev.attempted[1], 100.0);
  EXPECT_DOUBLE_EQ(dev.accepted[1], 100.0);
  EXPECT_FALSE(dev.in_episode);  // an allow-listed recipient never opens an episode
  EXPECT_TRUE(e.pending().verdicts.empty());
  const std::uint64_t after_list = e.stats().allowlisted_passes;
  EXPECT_GT(after_list, 0U);

  ASSERT_EQ(log_flood(e, victim, 60, 0, 8).back().level, verdict_level::warn);
  const time_point during = at_minutes(8.5);
  const std::uint64_t passes = e.stats().allowlisted_passes;
  EXPECT_EQ(by_log(e, victim, "Alerts+x@Monitoring.example", "198.18.0.1", during).level,
            verdict_level::dunno);
  EXPECT_EQ(by_log(e, victim, "x@unknown.example", "192.0.2.44", during).level,
            verdict_level::dunno);
  EXPECT_EQ(by_log(e, victim, "x@unknown.example", "2001:db8:5::1", during).level,
            verdict_level::dunno);
  EXPECT_EQ(e.stats().allowlisted_passes, passes + 3);
  const std::size_t before = e.pending().verdicts.size();
  EXPECT_EQ(by_log(e, victim, "x@unknown.example", "2001:db8:5::2", during).level,
            verdict_level::warn);
  EXPECT_EQ(by_log(e, victim, "x@unknown.example", "198.18.0.1", during).level,
            verdict_level::warn);
  ASSERT_EQ(e.pending().verdicts.size(), before + 2);
  EXPECT_EQ(e.pending().verdicts.back().level, verdict_level::defer);
  // Passed or not, every one of them was counted as delivered.
  EXPECT_DOUBLE_EQ(e.inspect(victim, during).accepted[1], 65.0);
}

}  // namespace
}  // namespace rcptguard::decision
