// The engine's verdicts: every threshold from both sides, the bomb shapes, hysteresis, monitor
// mode, the victim's correspondents, allow-lists and classes, spool evidence and its records.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "harness.hpp"

namespace rcptguard::decision {
namespace {

using testing::at_minutes;
using testing::at_seconds;
using testing::driver;
using testing::rcpt_request;
using testing::test_settings;

constexpr std::string_view victim = "bob@example.test";

bool has_reason(const verdict& v, std::string_view name) {
  return std::any_of(v.reasons.begin(), v.reasons.end(),
                     [&](const reason& r) { return r.name == name; });
}

// --- Each window's warn and defer point, from both sides --------------------------------------
// A quiet mailbox (the prior: 0.25 an hour) and five rotating senders and clients, so only
// volume counts. The n-th message is the one judged.

TEST(Thresholds, TenMinuteWarnPoint) {
  driver below;
  EXPECT_EQ(below.flood(victim, 19, 0, 30).level, verdict_level::dunno);
  driver above;
  const verdict v = above.flood(victim, 20, 0, 30);
  EXPECT_EQ(v.level, verdict_level::warn);
  EXPECT_EQ(v.action.verb, protocol::action_verb::warn);
  EXPECT_EQ(v.reasons.front().name, "volume_10m");
}

TEST(Thresholds, TenMinuteDeferPoint) {
  driver below;
  EXPECT_EQ(below.flood(victim, 39, 0, 15).level, verdict_level::warn);
  driver above;
  const verdict v = above.flood(victim, 40, 0, 15);
  EXPECT_EQ(v.level, verdict_level::defer);
  EXPECT_EQ(v.action.verb, protocol::action_verb::defer_if_permit);
  EXPECT_TRUE(v.action.text.starts_with("4.2.1 rcptguard: bob@example.test 40 msgs/10m"))
      << v.action.text;
}

TEST(Thresholds, MinuteWarnAndDeferPoints) {
  // All in the same second: the 1-minute window sees them all.
  EXPECT_EQ(driver{}.flood(victim, 11, 0, 0).level, verdict_level::dunno);
  const verdict warn = driver{}.flood(victim, 12, 0, 0);
  EXPECT_EQ(warn.level, verdict_level::warn);
  EXPECT_EQ(warn.reasons.front().name, "volume_1m");
  EXPECT_EQ(driver{}.flood(victim, 29, 0, 0).level, verdict_level::warn);
  EXPECT_EQ(driver{}.flood(victim, 30, 0, 0).level, verdict_level::defer);
}

TEST(Thresholds, HourWarnAndDeferPoints) {
  // One a minute from the top of the hour: 10 per 10 minutes, well below that window.
  EXPECT_EQ(driver{}.flood(victim, 59, 0, 60).level, verdict_level::dunno);
  const verdict warn = driver{}.flood(victim, 60, 0, 60);
  EXPECT_EQ(warn.level, verdict_level::warn);
  EXPECT_EQ(warn.reasons.front().name, "volume_1h");
  // Two a minute: 20 per 10 minutes is itself a warning, so compare defer only.
  EXPECT_EQ(driver{}.flood(victim, 119, 0, 30).level, verdict_level::warn);
  EXPECT_EQ(driver{}.flood(victim, 120, 0, 30).level, verdict_level::defer);
}

// A recipient with two quiet days of its own history: the 24-hour window is judged.
driver with_two_quiet_days() {
  driver d;
  recipient_history h{std::string(victim), {}};
  h.hours.push_back({testing::origin - 48 * 3600, 1, 1, 1});
  d.eng().update_histories(std::span<const recipient_history>(&h, 1), at_seconds(0));
  return d;
}

TEST(Thresholds, DayWarnPoint) {
  // Evenly over 24 hours: about 17 an hour.
  EXPECT_EQ(with_two_quiet_days().flood(victim, 399, 0, 216).level, verdict_level::dunno);
  const verdict warn = with_two_quiet_days().flood(victim, 400, 0, 216);
  EXPECT_EQ(warn.level, verdict_level::warn);
  ASSERT_FALSE(warn.reasons.empty());
  EXPECT_EQ(warn.reasons.front().name, "volume_24h");
  // Without a day of its own history the 24-hour window waits (the shorter ones judge).
  EXPECT_EQ(driver{}.flood(victim, 400, 0, 216).level, verdict_level::dunno);
}

TEST(Thresholds, QuietMailboxGettingThreeMailsIsNothing) {
  driver d;
  EXPECT_EQ(d.flood(victim, 3, 0, 1, 3, 3).level, verdict_level::dunno);
  EXPECT_TRUE(d.eng().pending().verdicts.empty());
}

// --- Bomb shapes -------------------------------------------------------------------------------

TEST(Bombs, SubscriptionBombIsCaughtBySenderDiversity) {
  driver d;
  verdict last;
  // 300 different list servers and senders confirm a subscription within 10 minutes.
  for (int i = 0; i < 300; ++i) {
    last = d.message(victim, driver::sender(i, "list" + std::to_string(i) + ".example"),
                     driver::client(i), at_seconds(i * 2));
  }
  EXPECT_EQ(last.level, verdict_level::defer);
  EXPECT_TRUE(has_reason(last, "sender_diversity"));
  EXPECT_TRUE(has_reason(last, "client_diversity"));
  EXPECT_FALSE(has_reason(last, "single_client"));
  EXPECT_NE(last.action.text.find("300 senders"), std::string::npos) << last.action.text;
}

TEST(Bombs, SenderDiversityLowersTheDeferPoint) {
  // 30 messages in 10 minutes: 1.5 on volume alone (a WARN). From 30 distinct senders it is a
  // subscription-bomb shape and crosses to DEFER; from 5 senders it stays a WARN.
  EXPECT_EQ(driver{}.flood(victim, 30, 0, 20, 5, 5).level, verdict_level::warn);
  const verdict diverse = driver{}.flood(victim, 30, 0, 20, 30, 5);
  EXPECT_EQ(diverse.level, verdict_level::defer);
  EXPECT_TRUE(has_reason(diverse, "sender_diversity"));
  EXPECT_EQ(driver{}.flood(victim, 29, 0, 20, 29, 5).level, verdict_level::warn);
}

TEST(Bombs, SingleSourceBombIsCaughtBySingleClient) {
  driver d;
  const verdict last = d.flood(victim, 60, 0, 10, 1, 1);
  EXPECT_EQ(last.level, verdict_level::defer);
  EXPECT_TRUE(has_reason(last, "single_client"));
  EXPECT_FALSE(has_reason(last, "sender_diversity"));
  EXPECT_NE(last.action.text.find("100% from one client"), std::string::npos) << last.action.text;
}

TEST(Bombs, ConcentrationNeedsMeaningfulTotals) {
  settings s = test_settings();
  driver d(s);
  // 300 other recipients get one message each in the same 10 minutes...
  for (int i = 0; i < 300; ++i) {
    d.message("user" + std::to_string(i) + "@example.test", "a@ex.org", "192.0.2.9", at_seconds(i));
  }
  // ... and bob gets 150 of all 450: a third of the inbound mail.
  const verdict v = d.flood(victim, 150, 300, 2, 5, 5);
  EXPECT_TRUE(has_reason(v, "concentration"));
  // Alone on a server, 20 messages are 100 % of the inbound but prove nothing by share.
  EXPECT_FALSE(has_reason(driver{}.flood(victim, 20, 0, 30), "concentration"));
}

// --- Learned baselines -------------------------------------------------------------------------

std::vector<recipient_history> histories_with(std::string_view recipient, double per_hour,
                                              time_point now) {
  std::vector<recipient_history> out;
  const std::int64_t now_hour = to_unix_seconds(now) / 3600;
  recipient_history one;
  one.recipient = recipient;
  for (std::int64_t h = now_hour - 4 * 168; h < now_hour; ++h) {
    hourly_count c;
    c.hour_start = h * 3600;
    c.attempted = c.accepted = static_cast<std::uint32_t>(per_hour);
    c.distinct_senders = static_cast<std::uint32_t>(per_hour / 3);
    one.hours.push_back(c);
  }
  out.push_back(one);
  return out;
}

TEST(Baselines, BusyListAccountUnderNormalLoadGetsNoAlert) {
  driver d;
  const time_point start = at_seconds(0);
  auto histories = histories_with("list@example.test", 120, start);
  const auto quiet = histories_with("quiet@example.test", 1, start);
  histories.insert(histories.end(), quiet.begin(), quiet.end());
  d.eng().update_histories(histories, start);
  EXPECT_TRUE(d.eng().inspect("list@example.test", start).learned);

  // 30 messages in 10 minutes from 20 senders: a normal 10 minutes for the list ...
  EXPECT_EQ(d.flood("list@example.test", 30, 0, 20, 20, 5).level, verdict_level::dunno);
  EXPECT_TRUE(d.eng().pending().verdicts.empty());
  // ... and a flood for the quiet mailbox, learned or not.
  EXPECT_NE(d.flood("quiet@example.test", 30, 0, 20, 20, 5).level, verdict_level::dunno);
  EXPECT_NE(d.flood("new@example.test", 30, 0, 20, 20, 5).level, verdict_level::dunno);
}

TEST(Baselines, BusyAccountStillAlertsOnItsOwnFlood) {
  driver d;
  d.eng().update_histories(histories_with("list@example.test", 120, at_seconds(0)), at_seconds(0));
  // Expected 20 per 10 minutes: warn at 8x = 160, defer at 15x = 300.
  EXPECT_EQ(d.flood("list@example.test", 159, 0, 3, 5, 5).level, verdict_level::dunno);
  driver e;
  e.eng().update_histories(histories_with("list@example.test", 120, at_seconds(0)), at_seconds(0));
  EXPECT_EQ(e.flood("list@example.test", 160, 0, 3, 5, 5).level, verdict_level::warn);
}

TEST(Baselines, ColdStartUsesTheServerWidePrior) {
  driver d;
  std::vector<recipient_history> population;
  for (int i = 0; i < 25; ++i) {
    const auto one = histories_with("r" + std::to_string(i) + "@example.test", 12, at_seconds(0));
    population.push_back(one.front());
  }
  d.eng().update_histories(population, at_seconds(0));
  EXPECT_NEAR(d.eng().stats().prior.hourly, 12.0, 1e-9);
  const recipient_view fresh = [&] {
    d.message("newcomer@example.test", "a@ex.org", "192.0.2.1", at_seconds(0));
    return d.eng().inspect("newcomer@example.test", at_seconds(0));
  }();
  EXPECT_FALSE(fresh.learned);
  EXPECT_NEAR(fresh.baseline_hourly, 12.0, 1e-9);
  // Expected per 10 minutes: (12 + spread 12) / 6 = 4, so warn at max(20, 32) = 32.
  driver e;
  e.eng().update_histories(population, at_seconds(0));
  EXPECT_EQ(e.flood("newcomer@example.test", 31, 0, 18).level, verdict_level::dunno);
  driver f;
  f.eng().update_histories(population, at_seconds(0));
  EXPECT_EQ(f.flood("newcomer@example.test", 32, 0, 18).level, verdict_level::warn);
}

// --- Hysteresis and cool-down ------------------------------------------------------------------

TEST(Hysteresis, StaysFlaggedWhileHighAndReleasesAfterCoolDown) {
  driver d;
  // 30 minutes of 6 a minute: deferred from the 40th message on, every message after that too.
  int deferred = 0;
  for (int i = 0; i < 180; ++i) {
    const verdict v =
        d.message(victim, driver::sender(i % 5), driver::client(i % 5), at_seconds(i * 10));
    if (i >= 45) {
      EXPECT_EQ(v.level, verdict_level::defer) << i;
    }
    deferred += v.level == verdict_level::defer ? 1 : 0;
  }
  EXPECT_GT(deferred, 130);

  // The flood stopped at 30 minutes. 12 minutes later the 10-minute window is empty, but the
  // cool-down (15 minutes) has not passed: still deferred.
  EXPECT_EQ(d.message(victim, "late@ex.org", "192.0.2.50", at_minutes(42)).level,
            verdict_level::defer);
  // Long after, with housekeeping ticks: the episode closes and mail flows again.
  for (int m = 43; m <= 150; ++m) d.eng().tick(at_minutes(m));
  EXPECT_FALSE(d.eng().inspect(victim, at_minutes(150)).in_episode);
  EXPECT_EQ(d.message(victim, "later@ex.org", "192.0.2.50", at_minutes(151)).level,
            verdict_level::dunno);
  const auto& episodes = d.eng().pending().episodes;
  ASSERT_FALSE(episodes.empty());
  EXPECT_TRUE(episodes.back().ended);
  EXPECT_EQ(episodes.back().peak_level, verdict_level::defer);
}

TEST(Hysteresis, OneQuietRequestDoesNotRelease) {
  driver d;
  d.flood(victim, 45, 0, 13);  // deferred at the end (10 minutes)
  // Two minutes later the window has lost a few; the score is below the defer point again but
  // above the exit score, so the level holds.
  const verdict v = d.message(victim, "x@ex.org", "192.0.2.77", at_minutes(12));
  EXPECT_EQ(v.level, verdict_level::defer);
}

// --- Monitor mode ------------------------------------------------------------------------------

TEST(Monitor, NeverDefersButRecordsWhatItWouldHaveDone) {
  settings s = test_settings();
  s.mode = detection_mode::monitor;
  driver d(s);
  for (int i = 0; i < 200; ++i) {
    const verdict v = d.message(victim, driver::sender(i), driver::client(i), at_seconds(i));
    EXPECT_NE(v.level, verdict_level::defer);
    EXPECT_NE(v.action.verb, protocol::action_verb::defer_if_permit);
  }
  const auto& verdicts = d.eng().pending().verdicts;
  ASSERT_FALSE(verdicts.empty());
  const verdict_record& last = verdicts.back();
  EXPECT_EQ(last.level, verdict_level::defer);
  EXPECT_TRUE(last.monitor_only);
  EXPECT_TRUE(last.action_text.starts_with("WARN rcptguard: bob@example.test")) << last.action_text;
  EXPECT_NE(last.action_text.find("(monitor: would defer)"), std::string::npos);
  EXPECT_GT(d.eng().stats().monitor_would_defer, 0U);
  EXPECT_EQ(d.eng().stats().verdicts_defer, 0U);
}

// --- Never the victim's DoS --------------------------------------------------------------------

TEST(Correspondents, KnownSendersPassUnknownAreDeferred) {
  driver d;
  // Two hours before the flood: alice writes to bob; bob (logged in) writes to carol.
  d.message(victim, "alice@friends.example", "203.0.113.5", at_minutes(-120));
  protocol::policy_request out = rcpt_request("carol@partner.example", victim, "10.0.0.5", "out-1");
  out.sasl_username = "bob";
  d.eng().decide(out, 9, at_minutes(-119));
  d.eng().decide(testing::eom_request("out-1", "carol@partner.example", 1, 500, victim, "10.0.0.5"),
                 9, at_minutes(-119));

  ASSERT_EQ(d.flood(victim, 60, 0, 8).level, verdict_level::defer);
  const time_point during = at_minutes(8.5);
  EXPECT_EQ(d.message(victim, "Alice+news@friends.example", "203.0.113.9", during).level,
            verdict_level::dunno);
  EXPECT_EQ(d.message(victim, "carol@partner.example", "198.18.0.1", during).level,
            verdict_level::dunno);
  EXPECT_EQ(d.message(victim, "stranger@unknown.example", "198.18.0.2", during).level,
            verdict_level::defer);
  // The null sender is never a correspondent: a backscatter flood stays deferred.
  EXPECT_EQ(d.message(victim, "", "198.18.0.3", during).level, verdict_level::defer);
  EXPECT_EQ(d.eng().stats().correspondent_passes, 2U);
}

TEST(Correspondents, FirstContactJustBeforeTheFloodDoesNotCount) {
  driver d;
  // A sender first seen 10 minutes before the episode: too recent (correspondent_min_age 1 h).
  d.message(victim, "prewarm@attacker.example", "203.0.113.66", at_minutes(-10));
  ASSERT_EQ(d.flood(victim, 60, 0, 8).level, verdict_level::defer);
  EXPECT_EQ(d.message(victim, "prewarm@attacker.example", "203.0.113.66", at_minutes(8.5)).level,
            verdict_level::defer);
}

// --- Allow-lists and classes -------------------------------------------------------------------

TEST(AllowLists, AllowedRecipientSenderAndClientAreAlwaysDunnoAndStillCounted) {
  settings s = test_settings();
  s.allow_recipients = {"*@lists.example.test"};
  s.allow_senders = {"alerts@monitoring.example"};
  s.allow_clients = {"192.0.2.0/24"};
  driver d(s);
  EXPECT_EQ(d.flood("dev@lists.example.test", 100, 0, 5).level, verdict_level::dunno);
  EXPECT_EQ(d.eng().inspect("dev@lists.example.test", at_seconds(500)).attempted[1], 100.0);

  ASSERT_EQ(d.flood(victim, 60, 0, 8).level, verdict_level::defer);
  const std::uint64_t passes = d.eng().stats().allowlisted_passes;
  EXPECT_EQ(d.message(victim, "alerts@monitoring.example", "198.18.0.1", at_minutes(8.5)).level,
            verdict_level::dunno);
  EXPECT_EQ(d.message(victim, "x@unknown.example", "192.0.2.44", at_minutes(8.5)).level,
            verdict_level::dunno);
  EXPECT_EQ(d.message(victim, "x@unknown.example", "198.18.0.1", at_minutes(8.5)).level,
            verdict_level::defer);
  EXPECT_EQ(d.eng().stats().allowlisted_passes, passes + 2);
  // An allow-listed recipient never opens an episode.
  EXPECT_FALSE(d.eng().inspect("dev@lists.example.test", at_minutes(8.5)).in_episode);
}

TEST(Classes, ClassAndPerRecipientOverridesReplaceThresholds) {
  settings s = test_settings();
  recipient_class tickets;
  tickets.name = "tickets";
  tickets.recipients = {"support@*", "*@helpdesk.example.test"};
  tickets.limits.ten_minutes = {200, 8.0, 400, 15.0};
  tickets.limits.minute = {100, 30.0, 200, 60.0};
  tickets.limits.hour = {600, 5.0, 1200, 10.0};
  s.classes.push_back(tickets);
  recipient_override tight;
  tight.recipient = "ceo@example.test";
  tight.limits.ten_minutes = {5, 8.0, 10, 15.0};
  s.overrides.push_back(tight);
  recipient_override wins;
  wins.recipient = "support@example.test";  // an override beats the class
  s.overrides.push_back(wins);

  EXPECT_EQ(driver(s).flood("support@acme.test", 150, 0, 4).level, verdict_level::dunno);
  EXPECT_EQ(driver(s).flood("queue@helpdesk.example.test", 199, 0, 3).level, verdict_level::dunno);
  EXPECT_EQ(driver(s).flood("queue@helpdesk.example.test", 200, 0, 3).level, verdict_level::warn);
  EXPECT_EQ(driver(s).flood("support@example.test", 150, 0, 4).level, verdict_level::defer);
  EXPECT_EQ(driver(s).flood("ceo@example.test", 4, 0, 60).level, verdict_level::dunno);
  EXPECT_EQ(driver(s).flood("ceo@example.test", 5, 0, 60).level, verdict_level::warn);
}

// --- Spool evidence ----------------------------------------------------------------------------

TEST(SpoolEvidence, LowersTheDeferPoint) {
  const auto with_evidence = [](time_point found) {
    driver d;
    spool_evidence e;
    e.repeats = 12;
    e.sha256_prefix = "9f86d081";
    e.window = std::chrono::hours{1};
    e.at = found;
    d.eng().update_spool_evidence("Bob+x@example.test", e, found);
    return d;
  };
  // 30 in 10 minutes: 1.5, a WARN on volume alone ...
  EXPECT_EQ(driver{}.flood(victim, 30, 0, 20).level, verdict_level::warn);
  // ... plus fresh evidence (0.75): DEFER.
  driver fresh = with_evidence(at_seconds(0));
  const verdict v = fresh.flood(victim, 30, 0, 20);
  EXPECT_EQ(v.level, verdict_level::defer);
  ASSERT_TRUE(has_reason(v, "spool_evidence"));
  const auto r = std::find_if(v.reasons.begin(), v.reasons.end(),
                              [](const reason& x) { return x.name == "spool_evidence"; });
  EXPECT_EQ(r->detail, "12 identical attachments, sha256 9f86d081");
  // Stale evidence (older than a day) no longer counts.
  driver stale = with_evidence(at_seconds(-2 * 86400));
  EXPECT_EQ(stale.flood(victim, 30, 0, 20).level, verdict_level::warn);
  // Evidence alone, without volume, is no verdict.
  driver alone = with_evidence(at_seconds(0));
  EXPECT_EQ(alone.flood(victim, 5, 0, 60).level, verdict_level::dunno);
}

// --- Records -----------------------------------------------------------------------------------

TEST(Records, DeliveriesVerdictsAndEpisodesCarryTheRightFields) {
  driver d;
  d.flood(victim, 40, 0, 15);
  outbox& box = d.eng().pending();

  ASSERT_EQ(box.deliveries.size(), 40U);
  const delivery_record& first = box.deliveries.front();
  EXPECT_EQ(first.recipient, "bob@example.test");
  EXPECT_EQ(first.sender, "user0@ex.org");
  EXPECT_EQ(first.client, "198.51.100.1");
  EXPECT_TRUE(first.accepted);
  // Before the first END-OF-MESSAGE the hook is not known to exist: the first RCPT counted as
  // accepted at once, without a size. From then on END-OF-MESSAGE commits, with the size.
  EXPECT_EQ(first.size, 0U);
  EXPECT_EQ(box.deliveries[1].size, 1000U);
  EXPECT_EQ(first.source, event_source::policy);
  const delivery_record& last = box.deliveries.back();
  EXPECT_FALSE(last.accepted);  // the 40th was deferred
  EXPECT_EQ(last.size, 0U);

  // 20th..39th warned, the 40th deferred.
  ASSERT_EQ(box.verdicts.size(), 21U);
  const verdict_record& warn = box.verdicts.front();
  EXPECT_EQ(warn.level, verdict_level::warn);
  EXPECT_EQ(warn.recipient, "bob@example.test");
  EXPECT_EQ(warn.action_text,
            "WARN rcptguard: bob@example.test 20 msgs/10m, baseline 0.1, 5 senders");
  const verdict_record& defer = box.verdicts.back();
  EXPECT_EQ(defer.level, verdict_level::defer);
  EXPECT_FALSE(defer.monitor_only);
  EXPECT_EQ(
      defer.action_text,
      "DEFER_IF_PERMIT 4.2.1 rcptguard: bob@example.test 40 msgs/10m, baseline 0.1, 5 senders");
  ASSERT_FALSE(defer.reasons.empty());
  EXPECT_EQ(defer.reasons.front().name, "volume_10m");
  EXPECT_DOUBLE_EQ(defer.reasons.front().observed, 40.0);
  EXPECT_DOUBLE_EQ(defer.score, 2.0);
  EXPECT_EQ(defer.reasons.front().detail, "40 msgs/10m, baseline 0.1, warn at 20, defer at 40");

  // Opened at the 20th (warn), new peaks as it grew, the defer level at the 40th.
  ASSERT_GE(box.episodes.size(), 2U);
  EXPECT_EQ(box.episodes.front().recipient, "bob@example.test");
  EXPECT_EQ(box.episodes.front().peak_level, verdict_level::warn);
  EXPECT_FALSE(box.episodes.front().ended);
  const episode_record& peak = box.episodes.back();
  EXPECT_EQ(peak.started, box.episodes.front().started);
  EXPECT_EQ(peak.peak_level, verdict_level::defer);
  EXPECT_EQ(peak.peak_window, "10m");
  EXPECT_DOUBLE_EQ(peak.peak_observed, 40.0);
  EXPECT_TRUE(peak.summary.starts_with("rcptguard: bob@example.test 40 msgs/10m"));
  EXPECT_LT(box.episodes.size(), 20U);  // not one record per message
}

TEST(Records, CustomDeferActionIsUsed) {
  settings s = test_settings();
  s.defer_action = protocol::policy_action{protocol::action_verb::smtp_code, "450", "4.2.1"};
  driver d(s);
  const verdict v = d.flood(victim, 40, 0, 15);
  EXPECT_EQ(v.action.verb, protocol::action_verb::smtp_code);
  EXPECT_TRUE(d.eng().pending().verdicts.back().action_text.starts_with("450 4.2.1 rcptguard: "));
}

// --- The key cap -------------------------------------------------------------------------------

TEST(Eviction, CapHoldsAndEvictionsAreCounted) {
  settings s = test_settings();
  s.max_tracked_recipients = 100;
  driver d(s);
  d.flood(victim, 25, 0, 20);  // flagged (WARN): an open episode protects it from eviction
  for (int i = 0; i < 250; ++i) {
    d.message("r" + std::to_string(i) + "@example.test", "a@ex.org", "192.0.2.1",
              at_seconds(500 + i));
  }
  const engine_stats st = d.eng().stats();
  EXPECT_EQ(st.tracked_recipients, 100U);
  EXPECT_EQ(st.recipient_evictions, 151U);
  EXPECT_TRUE(d.eng().inspect(victim, at_seconds(760)).in_episode);
  EXPECT_EQ(d.message(victim, "a@ex.org", "192.0.2.1", at_seconds(761)).level, verdict_level::warn);
}

TEST(Expiry, IdleKeysAreForgottenByTick) {
  driver d;
  d.message("idle@example.test", "a@ex.org", "192.0.2.1", at_seconds(0));
  d.eng().tick(at_seconds(3600));
  EXPECT_TRUE(d.eng().inspect("idle@example.test", at_seconds(3600)).tracked);
  d.eng().tick(at_seconds(26 * 3600));
  EXPECT_FALSE(d.eng().inspect("idle@example.test", at_seconds(26 * 3600)).tracked);
  EXPECT_EQ(d.eng().stats().recipients_expired, 1U);
}

// --- The flag action ---------------------------------------------------------------------------

settings flagging() {
  settings s = test_settings();
  s.enforce_action = flood_action::flag;
  return s;
}

TEST(FlagAction, DeliversTheFloodWithAHeaderUntilTheHardDeferScore) {
  driver d(flagging());
  d.message(victim, "alice@friends.example", "203.0.113.5", at_minutes(-120));
  // 45 in nine minutes from five senders: past the 10-minute defer point (40), score 2.25.
  const verdict flagged = d.flood(victim, 45, 0, 12);
  ASSERT_EQ(flagged.level, verdict_level::defer);
  EXPECT_EQ(flagged.action.verb, protocol::action_verb::prepend);
  const std::string episode_start = format_utc(d.eng().pending().episodes.front().started);
  EXPECT_EQ(flagged.action.text,
            "X-Rcptguard-Flood: bob@example.test episode=" + episode_start + " score=2.25");
  std::string wire;
  protocol::format_reply(flagged.action, wire);
  EXPECT_EQ(wire.rfind("action=PREPEND X-Rcptguard-Flood: bob@example.test episode=", 0), 0U)
      << wire;
  const verdict_record& record = d.eng().pending().verdicts.back();
  EXPECT_TRUE(record.header_flagged);
  EXPECT_FALSE(record.monitor_only);
  EXPECT_EQ(record.action_text.rfind("PREPEND ", 0), 0U);
  EXPECT_GT(d.eng().stats().verdicts_flagged, 0U);
  EXPECT_EQ(d.eng().stats().verdicts_defer, 0U);
  // Delivered, so accepted; but a flagged message makes its sender no correspondent.
  const delivery_record& delivered = d.eng().pending().deliveries.back();
  EXPECT_TRUE(delivered.accepted);
  EXPECT_TRUE(delivered.header_flagged);
  const std::size_t correspondents = d.eng().stats().correspondents;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(d.message(victim, "new" + std::to_string(i) + "@flood.example", "198.18.1.1",
                        at_minutes(8.8))
                  .action.verb,
              protocol::action_verb::prepend);
  }
  EXPECT_EQ(d.eng().stats().correspondents, correspondents);

  // A known correspondent gets neither the header nor a deferral.
  const verdict friendly = d.message(victim, "alice@friends.example", "203.0.113.9", at_minutes(9));
  EXPECT_EQ(friendly.level, verdict_level::dunno);
  EXPECT_EQ(friendly.action.verb, protocol::action_verb::dunno);

  // Far past the defer point the score reaches hard_defer_score (3): deferred after all.
  const verdict extreme = d.flood(victim, 40, 9 * 60, 3);
  EXPECT_EQ(extreme.level, verdict_level::defer);
  EXPECT_EQ(extreme.action.verb, protocol::action_verb::defer_if_permit);
  EXPECT_FALSE(d.eng().pending().verdicts.back().header_flagged);
}

TEST(FlagAction, MonitorModeStillOnlyWarnsAndTheHeaderNameIsConfigurable) {
  settings s = flagging();
  s.flag_header = "X-Flood";
  driver enforce(s);
  EXPECT_EQ(enforce.flood(victim, 45, 0, 12).action.text.rfind("X-Flood: bob@example.test", 0), 0U);
  s.mode = detection_mode::monitor;
  driver monitor(s);
  const verdict v = monitor.flood(victim, 45, 0, 12);
  EXPECT_EQ(v.action.verb, protocol::action_verb::warn);
  EXPECT_TRUE(monitor.eng().pending().verdicts.back().monitor_only);
}

}  // namespace
}  // namespace rcptguard::decision
