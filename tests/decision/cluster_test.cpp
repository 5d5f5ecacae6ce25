// The other nodes' counts (decision/cluster.hpp): a flood split across nodes is judged on the
// cluster's volume while the counts are fresh, on this node's alone once they are stale or the
// store is lost; distinct senders are a union, not a sum; the cluster's correspondents pass;
// the table is bounded.
#include <gtest/gtest.h>

#include <string>

#include "harness.hpp"

namespace rcptguard::decision {
namespace {

using testing::at_minutes;
using testing::at_seconds;
using testing::driver;
using testing::test_settings;

constexpr std::string_view victim = "bob@example.test";

/// What the other nodes counted for `recipient` at `now`: `per_minute` RCPTs in each of the
/// last `minutes` minutes (the hour buckets carrying the same RCPTs).
cluster_counts others(std::string_view recipient, time_point now, std::uint32_t per_minute,
                      std::uint32_t minutes, std::uint32_t senders = 0) {
  cluster_counts c;
  c.recipient = std::string{recipient};
  c.minute = unix_minute(now);
  for (std::uint32_t k = 0; k < minutes && k < c.minutes.size(); ++k) {
    c.minutes[c.minutes.size() - 1 - k] = per_minute;
    const std::uint32_t hours_back = c.minute / 60 - (c.minute - k) / 60;
    c.hours[c.hours.size() - 1 - hours_back] += per_minute;
  }
  c.senders_ten = senders;
  c.senders_hour = senders;
  return c;
}

// 19 messages in 9 minutes: below the 10-minute warn point (20) on this node alone.
void nineteen_here(driver& d) {
  d.flood(victim, 19, 0, 30);
}

TEST(ClusterCounts, AFloodSplitAcrossNodesIsJudgedOnTheClustersVolume) {
  driver d;
  nineteen_here(d);
  const time_point now = at_seconds(570);
  // The other node took as many: 2 a minute for 10 minutes.
  const cluster_counts c = others(victim, now, 2, 10);
  d.eng().update_cluster_counts({&c, 1}, now);
  const verdict v = d.message(victim, "late@ex.org", "198.51.100.9", now);
  EXPECT_EQ(v.level, verdict_level::defer);
  EXPECT_TRUE(v.action.text.find("40 msgs/10m") != std::string::npos) << v.action.text;
  EXPECT_EQ(d.eng().inspect(victim, now).attempted[1], 40.0);
  EXPECT_EQ(d.eng().stats().cluster.updates, 1U);
  EXPECT_EQ(d.eng().stats().cluster.recipients, 1U);

  // Alone, the same 20th message only warns.
  driver alone;
  nineteen_here(alone);
  EXPECT_EQ(alone.message(victim, "late@ex.org", "198.51.100.9", now).level, verdict_level::warn);
}

TEST(ClusterCounts, StaleCountsAndALostStoreLeaveThisNodesOwn) {
  driver d;
  nineteen_here(d);
  const time_point read = at_seconds(570);
  const cluster_counts c = others(victim, read, 2, 10);
  d.eng().update_cluster_counts({&c, 1}, read);
  // Older than cluster_max_age (2 s) when judged: ignored.
  const time_point later = read + std::chrono::milliseconds(2001);
  EXPECT_EQ(d.eng().inspect(victim, later).attempted[1], 19.0);
  EXPECT_EQ(d.eng().inspect(victim, read + std::chrono::seconds(1)).attempted[1], 39.0);

  // Lost: at once, however fresh.
  d.eng().update_cluster_counts({&c, 1}, read);
  d.eng().cluster_lost(read);
  EXPECT_EQ(d.eng().inspect(victim, read).attempted[1], 19.0);
  EXPECT_EQ(d.eng().stats().cluster.losses, 1U);
  EXPECT_EQ(d.eng().stats().cluster.recipients, 0U);
  // The tick drops stale entries.
  d.eng().update_cluster_counts({&c, 1}, read);
  d.eng().tick(read + std::chrono::seconds(3));
  EXPECT_EQ(d.eng().stats().cluster.recipients, 0U);
}

TEST(ClusterCounts, HoursBeyondTheMinutesReachTheHourAndDayWindows) {
  driver d;
  const time_point now = at_seconds(3 * 3600 + 600);
  d.message(victim, "a@ex.org", "198.51.100.1", now);
  cluster_counts c = others(victim, now, 0, 0);
  c.hours[c.hours.size() - 1] = 30;   // this hour, none of it in the last 10 minutes
  c.hours[c.hours.size() - 3] = 100;  // two hours ago
  d.eng().update_cluster_counts({&c, 1}, now);
  const recipient_view v = d.eng().inspect(victim, now);
  EXPECT_EQ(v.attempted[1], 1.0);    // the 10-minute window: none of theirs
  EXPECT_GE(v.attempted[2], 31.0);   // the hour: ours and this hour of theirs
  EXPECT_LT(v.attempted[2], 131.0);  // not two hours ago
  EXPECT_EQ(v.attempted[3], 131.0);  // the day: all of it, each RCPT once
}

TEST(ClusterCounts, DistinctSendersAreTheClustersUnionNotASum) {
  driver d;
  d.flood(victim, 10, 0, 30, /*senders=*/10);
  const time_point now = at_seconds(300);
  EXPECT_EQ(d.eng().inspect(victim, now).senders_ten, 10.0);
  // The cluster's sketch counts 25 distinct, ours among them.
  cluster_counts c = others(victim, now, 1, 10, 25);
  d.eng().update_cluster_counts({&c, 1}, now);
  EXPECT_EQ(d.eng().inspect(victim, now).senders_ten, 25.0);
  // A sketch behind ours (published before our last senders) never lowers ours.
  c.senders_ten = 4;
  d.eng().update_cluster_counts({&c, 1}, now);
  EXPECT_EQ(d.eng().inspect(victim, now).senders_ten, 10.0);
}

TEST(ClusterCounts, EachCompletedHourOfTheOthersGoesToTheHistoryOnce) {
  driver d;
  const time_point now = at_seconds(5 * 3600 + 600);  // 05:10
  cluster_counts c = others(victim, now, 0, 0);
  c.hours[23] = 8;   // this hour: not complete, not recorded
  c.hours[22] = 30;  // 04:00
  c.hours[20] = 12;  // 02:00
  d.eng().update_cluster_counts({&c, 1}, now);
  const auto& recorded = d.eng().pending().cluster_hours;
  ASSERT_EQ(recorded.size(), 2U);
  EXPECT_EQ(recorded[0].hour_start, testing::origin + 2 * 3600);
  EXPECT_EQ(recorded[0].attempted, 12U);
  EXPECT_EQ(recorded[1].hour_start, testing::origin + 4 * 3600);
  EXPECT_EQ(recorded[1].attempted, 30U);
  EXPECT_EQ(recorded[1].recipient, victim);
  // The same hours again: nothing new.
  d.eng().update_cluster_counts({&c, 1}, now + std::chrono::seconds(1));
  EXPECT_EQ(d.eng().pending().cluster_hours.size(), 2U);
  // An hour later, 05:00 is complete: that one alone.
  const time_point later = now + std::chrono::hours(1);
  cluster_counts next = others(victim, later, 0, 0);
  next.hours[22] = 9;
  next.hours[21] = 30;
  d.eng().update_cluster_counts({&next, 1}, later);
  ASSERT_EQ(d.eng().pending().cluster_hours.size(), 3U);
  EXPECT_EQ(d.eng().pending().cluster_hours[2].hour_start, testing::origin + 5 * 3600);
  EXPECT_EQ(d.eng().pending().cluster_hours[2].attempted, 9U);
}

TEST(ClusterCounts, TheFloodsIdJoinsTheOpenEpisodeAndItsRecords) {
  driver d;
  d.flood(victim, 40, 0, 15);  // opens an episode
  const auto& records = d.eng().pending().episodes;
  ASSERT_FALSE(records.empty());
  const time_point started = records.front().started;
  const std::size_t before = records.size();
  d.eng().cluster_episode(victim, started + std::chrono::seconds(1), "mx9:1", at_seconds(600));
  EXPECT_EQ(records.size(), before) << "another episode's id is ignored";
  d.eng().cluster_episode(victim, started, "mx2:1699833600", at_seconds(600));
  ASSERT_EQ(records.size(), before + 1);
  EXPECT_EQ(records.back().cluster_id, "mx2:1699833600");
  EXPECT_EQ(records.back().started, started);
  d.eng().cluster_episode(victim, started, "mx2:1699833600", at_seconds(601));
  EXPECT_EQ(records.size(), before + 1) << "the same id again sends nothing";
  // Every later record of the episode carries it, the close included.
  d.eng().tick(at_seconds(6 * 3600));
  ASSERT_TRUE(records.back().ended);
  EXPECT_EQ(records.back().cluster_id, "mx2:1699833600");
}

TEST(ClusterCounts, AReleaseHereSticksAgainstTheOthersEarlierCounts) {
  driver d;
  nineteen_here(d);
  const time_point now = at_seconds(570);
  const cluster_counts c = others(victim, now, 2, 10);
  d.eng().update_cluster_counts({&c, 1}, now);
  EXPECT_EQ(d.message(victim, "late@ex.org", "198.51.100.9", now).level, verdict_level::defer);
  ASSERT_TRUE(d.eng().operator_release(victim, now).ok);
  // Housekeeping runs in between (it drops entries older than cluster.max_age), then the next
  // read brings the same counts of theirs: all from before the release.
  const time_point next = now + std::chrono::seconds(3);
  d.eng().tick(next);
  d.eng().update_cluster_counts({&c, 1}, next);
  EXPECT_EQ(d.eng().inspect(victim, next).attempted[1], 0.0);
  EXPECT_EQ(d.message(victim, "a@ex.org", "198.51.100.9", next).level, verdict_level::dunno);
  // What they count after it joins again.
  const time_point later = now + std::chrono::minutes(2);
  cluster_counts after = others(victim, later, 0, 0);
  after.minutes[9] = 7;
  after.hours[23] = 27;  // their whole hour: 20 before the release, 7 after
  d.eng().update_cluster_counts({&after, 1}, later);
  EXPECT_EQ(d.eng().inspect(victim, later).attempted[1], 8.0);  // 7 of theirs, 1 of ours
}

TEST(ClusterCounts, CorrespondentsSeenThroughOtherNodesPassHereToo) {
  driver d;
  ASSERT_EQ(d.flood(victim, 60, 0, 8).level, verdict_level::defer);
  const time_point during = at_minutes(8.5);
  // alice never wrote to bob through this node: deferred with the flood.
  EXPECT_EQ(d.message(victim, "alice@friends.example", "203.0.113.5", during).level,
            verdict_level::defer);

  // The cluster saw her two hours ago (through another MX), and a newcomer 10 minutes ago.
  known_senders known;
  known.recipient = std::string{victim};
  known.senders = {{"alice@friends.example", unix_minute(at_minutes(-120))},
                   {"newcomer@x.example", unix_minute(at_minutes(-10))}};
  d.eng().cluster_correspondents({&known, 1}, during);
  EXPECT_EQ(d.eng().stats().cluster_correspondents, 2U);
  EXPECT_EQ(d.message(victim, "Alice+news@friends.example", "203.0.113.9", during).level,
            verdict_level::dunno);
  // First contact just before the flood is too recent, wherever it was seen
  // (correspondent_min_age 1 h).
  EXPECT_EQ(d.message(victim, "newcomer@x.example", "203.0.113.10", during).level,
            verdict_level::defer);
  EXPECT_EQ(d.eng().stats().correspondent_passes, 1U);
}

TEST(ClusterCounts, TheTableIsBounded) {
  settings s = test_settings();
  s.max_cluster_recipients = 1;
  driver d(s);
  const time_point now = at_seconds(60);
  const cluster_counts first = others("a@example.test", now, 1, 1);
  const cluster_counts second = others("b@example.test", now, 1, 1);
  d.eng().update_cluster_counts({&first, 1}, now);
  d.eng().update_cluster_counts({&second, 1}, now);
  d.eng().update_cluster_counts({&first, 1}, now);  // a held key is replaced
  EXPECT_EQ(d.eng().stats().cluster.recipients, 1U);
  EXPECT_EQ(d.eng().stats().cluster.refused_full, 1U);
  EXPECT_EQ(d.eng().stats().cluster.updates, 2U);
}

}  // namespace
}  // namespace rcptguard::decision
