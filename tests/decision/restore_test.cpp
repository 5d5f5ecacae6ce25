// Restart continuity: windows, baselines, correspondents and open episodes come back from a
// restore_snapshot, so a flood in progress is still flagged after a restart.
#include <gtest/gtest.h>

#include <map>
#include <tuple>

#include "harness.hpp"

namespace rcptguard::decision {
namespace {

using testing::at_minutes;
using testing::at_seconds;
using testing::driver;

// What the store would hand back: per-minute rows from the delivery records and the latest
// state of each episode that has not ended.
restore_snapshot snapshot_of(const outbox& box) {
  restore_snapshot snap;
  std::map<std::pair<std::string, std::int64_t>, minute_count> minutes;
  for (const delivery_record& d : box.deliveries) {
    const std::int64_t minute = to_unix_seconds(d.at) / 60 * 60;
    minute_count& row = minutes[{d.recipient, minute}];
    row.recipient = d.recipient;
    row.minute_start = minute;
    ++row.attempted;
    if (d.accepted) ++row.accepted;
  }
  for (auto& [key, row] : minutes) snap.recent_minutes.push_back(row);
  std::map<std::string, episode_record> latest;
  for (const episode_record& e : box.episodes) latest[e.recipient] = e;
  for (auto& [recipient, e] : latest) {
    if (!e.ended) snap.open_episodes.push_back(e);
  }
  return snap;
}

TEST(Restore, FloodInProgressIsStillFlaggedAfterRestart) {
  driver before;
  ASSERT_EQ(before.flood("bob@example.test", 45, 0, 12).level, verdict_level::defer);
  restore_snapshot snap = snapshot_of(before.eng().pending());
  correspondent_pair friendly;
  friendly.recipient = "bob@example.test";
  friendly.sender = "alice@friends.example";
  friendly.first_seen = to_unix_seconds(at_minutes(-600));
  friendly.last_seen = to_unix_seconds(at_minutes(-300));
  friendly.messages = 4;
  snap.correspondents.push_back(friendly);

  driver after(testing::test_settings(), 777);  // a new process, a new hash key
  after.eng().restore(snap, at_minutes(9.5));
  const recipient_view view = after.eng().inspect("bob@example.test", at_minutes(9.5));
  EXPECT_TRUE(view.in_episode);
  EXPECT_EQ(view.attempted[1], 45.0);
  EXPECT_EQ(view.held, verdict_level::defer);

  EXPECT_EQ(after.message("bob@example.test", "new@attacker.example", "198.18.0.1", at_minutes(9.6))
                .level,
            verdict_level::defer);
  EXPECT_EQ(
      after.message("bob@example.test", "alice@friends.example", "203.0.113.5", at_minutes(9.6))
          .level,
      verdict_level::dunno);
}

TEST(Restore, WindowsAloneReflagAfterRestart) {
  driver before;
  before.flood("bob@example.test", 45, 0, 12);
  restore_snapshot snap = snapshot_of(before.eng().pending());
  snap.open_episodes.clear();  // even without the episode rows
  driver after;
  after.eng().restore(snap, at_minutes(9.5));
  EXPECT_EQ(after.message("bob@example.test", "x@ex.org", "198.18.0.1", at_minutes(9.6)).level,
            verdict_level::defer);
}

TEST(Restore, BaselinesComeBackFromHistories) {
  restore_snapshot snap;
  recipient_history list;
  list.recipient = "list@example.test";
  const std::int64_t now_hour = to_unix_seconds(at_seconds(0)) / 3600;
  for (std::int64_t h = now_hour - 2 * 168; h < now_hour; ++h) {
    list.hours.push_back(hourly_count{h * 3600, 120, 120, 40});
  }
  snap.histories.push_back(list);
  driver after;
  after.eng().restore(snap, at_seconds(0));
  const recipient_view view = after.eng().inspect("list@example.test", at_seconds(0));
  EXPECT_TRUE(view.learned);
  EXPECT_NEAR(view.baseline_hourly, 120.0, 1e-3);
  EXPECT_EQ(after.flood("list@example.test", 30, 0, 20, 20, 5).level, verdict_level::dunno);
}

TEST(Restore, StaleOpenEpisodeIsClosed) {
  restore_snapshot snap;
  episode_record old;
  old.recipient = "bob@example.test";
  old.started = at_minutes(-3000);
  old.updated = at_minutes(-2000);
  old.peak_level = verdict_level::defer;
  snap.open_episodes.push_back(old);
  driver after;
  after.eng().restore(snap, at_seconds(0));
  EXPECT_FALSE(after.eng().inspect("bob@example.test", at_seconds(0)).in_episode);
  ASSERT_EQ(after.eng().pending().episodes.size(), 1U);
  EXPECT_TRUE(after.eng().pending().episodes[0].ended);
  EXPECT_EQ(after.eng().pending().episodes[0].started, old.started);
}

TEST(Restore, LiveHoursAreFoldedIntoTheBaseline) {
  // No stored history yet, but 3 hours of our own traffic at 30 an hour: update_histories with
  // an empty history for the recipient still learns from the live hours.
  driver d;
  for (int h = 0; h < 3; ++h) d.flood("busy@example.test", 30, h * 3600.0, 100);
  recipient_history empty;
  empty.recipient = "busy@example.test";
  d.eng().update_histories(std::span<const recipient_history>(&empty, 1), at_seconds(3 * 3600));
  const recipient_view view = d.eng().inspect("busy@example.test", at_seconds(3 * 3600));
  EXPECT_TRUE(view.learned);
  // 3 of cold_start_hours (24): mostly the prior, some of the own 30 an hour.
  const double w = 3.0 / 24.0;
  EXPECT_NEAR(view.baseline_hourly, w * 30.0 + (1 - w) * 0.25, 1e-3);
}

}  // namespace
}  // namespace rcptguard::decision
