// SIGHUP reloads: everything but the table sizes applies at once, tracked recipients are
// re-classified, open episodes keep their state.
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
using testing::test_settings;

constexpr std::string_view victim = "bob@example.test";
constexpr std::string_view list = "dev@lists.example.test";

recipient_class busy_lists() {
  recipient_class lists;
  lists.name = "lists";
  lists.recipients = {"*@lists.example.test"};
  lists.limits.minute = {100, 30.0, 200, 60.0};
  lists.limits.ten_minutes = {200, 8.0, 400, 15.0};
  lists.limits.hour = {600, 5.0, 1200, 10.0};
  return lists;
}

bool contains(const std::vector<std::string_view>& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

TEST(Reconfigure, ClassAddedForATrackedRecipientStopsItsAlerts) {
  // The list is tracked (10 quiet messages) before the operator adds its class.
  driver with_class;
  driver without;
  EXPECT_EQ(with_class.flood(list, 10, 0, 20).level, verdict_level::dunno);
  EXPECT_EQ(without.flood(list, 10, 0, 20).level, verdict_level::dunno);
  settings next = test_settings();
  next.classes.push_back(busy_lists());
  const reconfigure_result result = with_class.eng().reconfigure(next, at_seconds(200));
  EXPECT_TRUE(result.reclassified);
  EXPECT_TRUE(result.restart_required.empty());
  // The next 90 in the same 10 minutes: far below the class's points, a flood by default.
  EXPECT_EQ(with_class.flood(list, 90, 200, 4).level, verdict_level::dunno);
  EXPECT_TRUE(with_class.eng().pending().verdicts.empty());
  EXPECT_EQ(without.flood(list, 90, 200, 4).level, verdict_level::defer);
}

TEST(Reconfigure, OpenEpisodeKeepsItsStateAndReleasesByTheNewThresholds) {
  // 30 messages in 10 minutes (a WARN by default), and the list keeps that pace for 40 minutes.
  driver with_class;
  driver without;
  ASSERT_EQ(with_class.flood(list, 30, 0, 20).level, verdict_level::warn);
  ASSERT_EQ(without.flood(list, 30, 0, 20).level, verdict_level::warn);
  const recipient_view before = with_class.eng().inspect(list, at_seconds(600));
  ASSERT_TRUE(before.in_episode);

  settings next = test_settings();
  next.classes.push_back(busy_lists());
  const reconfigure_result result = with_class.eng().reconfigure(next, at_seconds(600));
  EXPECT_EQ(result.episodes_reclassified, 1U);
  // Same episode, same held level; the score is already the class's.
  const recipient_view after = with_class.eng().inspect(list, at_seconds(600));
  EXPECT_TRUE(after.in_episode);
  EXPECT_EQ(after.episode_started, before.episode_started);
  EXPECT_EQ(after.held, verdict_level::warn);
  EXPECT_LT(after.score, 0.5);

  // Held for the cool-down (15 minutes from the last alerting score), then released.
  EXPECT_EQ(with_class.flood(list, 30, 600, 20).level, verdict_level::warn);
  EXPECT_EQ(with_class.flood(list, 30, 1200, 20, 5, 5).level, verdict_level::dunno);
  EXPECT_FALSE(with_class.eng().inspect(list, at_seconds(1800)).in_episode);
  const auto& episodes = with_class.eng().pending().episodes;
  ASSERT_FALSE(episodes.empty());
  EXPECT_TRUE(episodes.back().ended);
  EXPECT_EQ(episodes.back().started, before.episode_started);
  EXPECT_EQ(with_class.flood(list, 30, 1800, 20).level, verdict_level::dunno);
  // Without the class the same traffic keeps alerting.
  EXPECT_NE(without.flood(list, 90, 600, 20).level, verdict_level::dunno);
}

TEST(Reconfigure, MonitorToEnforceMakesTheNextFloodRequestDefer) {
  settings monitor = test_settings();
  monitor.mode = detection_mode::monitor;
  driver d(monitor);
  const verdict warned = d.flood(victim, 60, 0, 8);
  EXPECT_EQ(warned.level, verdict_level::warn);
  ASSERT_TRUE(d.eng().pending().verdicts.back().monitor_only);
  const time_point started = d.eng().inspect(victim, at_seconds(480)).episode_started;

  settings enforce = monitor;
  enforce.mode = detection_mode::enforce;
  const reconfigure_result result = d.eng().reconfigure(enforce, at_seconds(480));
  EXPECT_FALSE(result.reclassified);
  EXPECT_TRUE(result.restart_required.empty());
  const verdict next = d.message(victim, "x@ex.org", "198.18.0.1", at_seconds(481));
  EXPECT_EQ(next.level, verdict_level::defer);
  EXPECT_EQ(next.action.verb, protocol::action_verb::defer_if_permit);
  EXPECT_FALSE(d.eng().pending().verdicts.back().monitor_only);
  EXPECT_EQ(d.eng().inspect(victim, at_seconds(481)).episode_started, started);
  EXPECT_EQ(d.eng().stats().reconfigurations, 1U);
}

TEST(Reconfigure, TableSizesKeepTheirRunningValuesAndAreReported) {
  driver d;
  d.flood(victim, 45, 0, 13);
  settings next = test_settings();
  next.max_tracked_recipients = 50;
  next.pair_slots = 1 << 10;
  next.client_session_slots = 1 << 8;
  next.max_recipients_per_transaction = 5;
  next.defer_action = protocol::policy_action{protocol::action_verb::smtp_code, "450", "4.7.1"};
  next.transaction_timeout = std::chrono::minutes{5};
  next.allow_clients = {"192.0.2.0/24", "not-a-network"};

  const reconfigure_result result = d.eng().reconfigure(next, at_seconds(600));
  EXPECT_EQ(result.restart_required.size(), 4U);
  EXPECT_TRUE(contains(result.restart_required, "max_tracked_recipients"));
  EXPECT_TRUE(contains(result.restart_required, "pair_slots"));
  EXPECT_TRUE(contains(result.restart_required, "client_session_slots"));
  EXPECT_TRUE(contains(result.restart_required, "max_recipients_per_transaction"));
  EXPECT_FALSE(contains(result.restart_required, "correspondent_slots"));
  ASSERT_EQ(result.invalid_allow_clients.size(), 1U);
  EXPECT_EQ(result.invalid_allow_clients.front(), "not-a-network");

  // The running sizes stay, the rest applied at once.
  EXPECT_EQ(d.eng().config().max_tracked_recipients, test_settings().max_tracked_recipients);
  EXPECT_EQ(d.eng().config().max_recipients_per_transaction, 1000U);
  EXPECT_EQ(d.eng().stats().max_tracked_recipients, test_settings().max_tracked_recipients);
  EXPECT_EQ(d.eng().config().transaction_timeout, std::chrono::minutes{5});
  const verdict v = d.message(victim, "x@ex.org", "198.18.0.1", at_seconds(601));
  EXPECT_EQ(v.level, verdict_level::defer);
  EXPECT_EQ(v.action.verb, protocol::action_verb::smtp_code);
  EXPECT_TRUE(d.eng().pending().verdicts.back().action_text.starts_with("450 4.7.1 rcptguard: "))
      << d.eng().pending().verdicts.back().action_text;
  // The new allow-listed client passes during the episode.
  EXPECT_EQ(d.message(victim, "x@ex.org", "192.0.2.9", at_seconds(602)).level,
            verdict_level::dunno);
  // Identical settings again: nothing to report, nothing to re-classify.
  const reconfigure_result again = d.eng().reconfigure(d.eng().config(), at_seconds(603));
  EXPECT_TRUE(again.restart_required.empty());
  EXPECT_FALSE(again.reclassified);
}

TEST(Reconfigure, AllowListedAndOverriddenRecipientsAreReclassifiedWhenNextSeen) {
  driver d;
  d.flood("ceo@example.test", 3, 0, 60);
  d.flood(list, 3, 0, 60);
  settings next = test_settings();
  next.allow_recipients = {"*@lists.example.test"};
  recipient_override tight;
  tight.recipient = "ceo@example.test";
  tight.limits.ten_minutes = {5, 8.0, 10, 15.0};
  next.overrides.push_back(tight);
  EXPECT_TRUE(d.eng().reconfigure(next, at_seconds(200)).reclassified);

  // inspect() already judges by the new class.
  EXPECT_NEAR(d.eng().inspect("ceo@example.test", at_seconds(200)).score, 3.0 / 5.0, 1e-9);
  EXPECT_EQ(d.flood("ceo@example.test", 2, 200, 10).level, verdict_level::warn);
  EXPECT_EQ(d.flood(list, 100, 200, 3).level, verdict_level::dunno);
  EXPECT_FALSE(d.eng().inspect(list, at_seconds(600)).in_episode);
  EXPECT_GT(d.eng().stats().allowlisted_passes, 0U);
}

}  // namespace
}  // namespace rcptguard::decision
