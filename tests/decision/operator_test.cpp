// The operator controls on the engine: allow (recipient and sender, for good and until a time),
// unallow, reset and release act from the next request; allow entries are bounded and come
// back through restore(), and a reset keeps its minute rows out of a restore.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "harness.hpp"

namespace rcptguard::decision {
namespace {

using testing::at_minutes;
using testing::driver;

constexpr std::string_view victim = "bob@example.test";

// 40 messages in 10 minutes from five senders: the 10-minute defer point.
driver deferred_victim() {
  driver d;
  EXPECT_EQ(d.flood(victim, 40, 0, 15).level, verdict_level::defer);
  return d;
}

operator_allow_entry allow_entry(std::string_view address, allow_kind kind = allow_kind::recipient,
                                 time_point until = {}) {
  operator_allow_entry entry;
  entry.address = address;
  entry.kind = kind;
  entry.until = until;
  entry.user = "root";
  entry.reason = "test";
  return entry;
}

// The message after the flood's last (which came at 9:45).
constexpr double next_minute = 9.8;

TEST(OperatorAllow, AFloodedRecipientIsDunnoFromTheNextRequestAndStillCounted) {
  driver d = deferred_victim();
  const double before = d.eng().inspect(victim, at_minutes(next_minute)).attempted[1];
  // Another spelling of the same key: case and extension are normalised like a request's.
  const operator_result allowed =
      d.eng().operator_allow(allow_entry("Bob+Tag@Example.TEST"), at_minutes(next_minute));
  ASSERT_TRUE(allowed.ok) << allowed.message;
  EXPECT_EQ(allowed.key, victim);
  EXPECT_EQ(d.message(victim, "x1@attack.example", "203.0.113.1", at_minutes(next_minute)).level,
            verdict_level::dunno);
  EXPECT_EQ(d.message(victim, "x2@attack.example", "203.0.113.2", at_minutes(next_minute)).level,
            verdict_level::dunno);
  EXPECT_EQ(d.eng().inspect(victim, at_minutes(next_minute)).attempted[1], before + 2);
  // Other recipients are judged as before.
  EXPECT_EQ(d.flood("carol@example.test", 40, 0, 0).level, verdict_level::defer);
}

TEST(OperatorAllow, UntilExpiresInTick) {
  driver d = deferred_victim();
  ASSERT_TRUE(d.eng()
                  .operator_allow(allow_entry(victim, allow_kind::recipient, at_minutes(11)),
                                  at_minutes(next_minute))
                  .ok);
  EXPECT_EQ(d.message(victim, "x@attack.example", "203.0.113.1", at_minutes(10)).level,
            verdict_level::dunno);
  d.eng().tick(at_minutes(10.9));
  EXPECT_EQ(d.eng().operator_allows().size(), 1U);
  d.eng().tick(at_minutes(11));
  EXPECT_TRUE(d.eng().operator_allows().empty());
  // The flood goes on: judged again from the request after the tick.
  EXPECT_EQ(d.flood(victim, 20, 11 * 60, 1).level, verdict_level::defer);
}

TEST(OperatorAllow, AnEndTimeNotInTheFutureIsRefused) {
  driver d;
  const operator_result r = d.eng().operator_allow(
      allow_entry(victim, allow_kind::recipient, at_minutes(5)), at_minutes(5));
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.message.find("not in the future"), std::string::npos) << r.message;
  EXPECT_TRUE(d.eng().operator_allows().empty());
}

TEST(OperatorAllow, ASenderPassesWhileOthersAreDeferred) {
  driver d = deferred_victim();
  ASSERT_TRUE(d.eng()
                  .operator_allow(allow_entry("Helpdesk@Vendor.example", allow_kind::sender),
                                  at_minutes(next_minute))
                  .ok);
  EXPECT_EQ(
      d.message(victim, "helpdesk@vendor.example", "203.0.113.9", at_minutes(next_minute)).level,
      verdict_level::dunno);
  EXPECT_EQ(d.message(victim, "x@attack.example", "203.0.113.1", at_minutes(next_minute)).level,
            verdict_level::defer);
  // A sender entry is not a recipient entry.
  EXPECT_FALSE(d.eng()
                   .operator_unallow("helpdesk@vendor.example", allow_kind::recipient,
                                     at_minutes(next_minute))
                   .ok);
}

TEST(OperatorAllow, UnallowJudgesTheRecipientAgain) {
  driver d = deferred_victim();
  ASSERT_TRUE(d.eng().operator_allow(allow_entry(victim), at_minutes(next_minute)).ok);
  EXPECT_EQ(d.message(victim, "x@attack.example", "203.0.113.1", at_minutes(next_minute)).level,
            verdict_level::dunno);
  const operator_result removed =
      d.eng().operator_unallow(victim, allow_kind::recipient, at_minutes(next_minute));
  ASSERT_TRUE(removed.ok) << removed.message;
  EXPECT_EQ(d.message(victim, "x@attack.example", "203.0.113.1", at_minutes(next_minute)).level,
            verdict_level::defer);
  EXPECT_FALSE(d.eng().operator_unallow(victim, allow_kind::recipient, at_minutes(10)).ok);
}

TEST(OperatorAllow, TheListIsBounded) {
  driver d;
  for (std::size_t i = 0; i < operator_allowlist::max_entries; ++i) {
    ASSERT_TRUE(
        d.eng()
            .operator_allow(allow_entry("r" + std::to_string(i) + "@example.test"), at_minutes(0))
            .ok);
  }
  const operator_result full =
      d.eng().operator_allow(allow_entry("one-more@example.test"), at_minutes(0));
  EXPECT_FALSE(full.ok);
  EXPECT_NE(full.message.find("full"), std::string::npos);
  // Replacing an entry is not growing the list.
  EXPECT_TRUE(
      d.eng()
          .operator_allow(allow_entry("r7@example.test", allow_kind::recipient, at_minutes(60)),
                          at_minutes(0))
          .ok);
}

TEST(OperatorRelease, EndsTheEpisodeAndTheNextRequestIsDunno) {
  driver d = deferred_victim();
  d.eng().pending().clear();
  const operator_result released = d.eng().operator_release("BOB@example.test", at_minutes(9.8));
  ASSERT_TRUE(released.ok) << released.message;
  // The episode's closing record says why it closed.
  const auto& episodes = d.eng().pending().episodes;
  ASSERT_EQ(episodes.size(), 1U);
  EXPECT_TRUE(episodes[0].ended);
  EXPECT_EQ(episodes[0].closed_by, close_cause::released);
  EXPECT_EQ(episodes[0].peak_level, verdict_level::defer);

  EXPECT_FALSE(d.eng().inspect(victim, at_minutes(9.8)).in_episode);
  EXPECT_EQ(d.message(victim, "x@attack.example", "203.0.113.1", at_minutes(9.9)).level,
            verdict_level::dunno);
  EXPECT_EQ(d.eng().inspect(victim, at_minutes(9.9)).attempted[1], 1.0);
  EXPECT_TRUE(d.eng().open_episodes(at_minutes(9.9)).empty());
  // A flood that goes on opens a new episode.
  EXPECT_EQ(d.flood(victim, 40, 10 * 60, 1).level, verdict_level::defer);
}

TEST(OperatorRelease, WithoutAnOpenEpisodeNothingChanges) {
  driver d;
  d.flood(victim, 10, 0, 15);
  const operator_result r = d.eng().operator_release(victim, at_minutes(3));
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.message.find("no open episode"), std::string::npos);
  EXPECT_EQ(d.eng().inspect(victim, at_minutes(3)).attempted[1], 10.0);
}

TEST(OperatorReset, ZeroesTheCountsAndTheEpisodeCoolsDownByItsRules) {
  driver d = deferred_victim();
  const operator_result reset = d.eng().operator_reset(victim, at_minutes(next_minute));
  ASSERT_TRUE(reset.ok) << reset.message;
  const recipient_view view = d.eng().inspect(victim, at_minutes(next_minute));
  for (const double n : view.attempted) EXPECT_EQ(n, 0.0);
  for (const double n : view.accepted) EXPECT_EQ(n, 0.0);
  EXPECT_EQ(view.senders_ten, 0.0);
  EXPECT_EQ(view.senders_hour, 0.0);
  EXPECT_EQ(view.clients_ten, 0.0);
  EXPECT_EQ(view.score, 0.0);
  // Still open and held: a reset is not a release.
  EXPECT_TRUE(view.in_episode);
  EXPECT_EQ(d.message(victim, "user0@ex.org", "198.51.100.1", at_minutes(10)).level,
            verdict_level::defer);
  // A sender seen before the reset is new again to the distinct-sender counts.
  EXPECT_EQ(d.eng().inspect(victim, at_minutes(10)).senders_ten, 1.0);
  // Quiet from here: defer holds for the cool-down, then warn for another, then it is over.
  d.eng().tick(at_minutes(10 + 15.1));
  d.eng().tick(at_minutes(10 + 30.2));
  EXPECT_FALSE(d.eng().inspect(victim, at_minutes(40.3)).in_episode);
}

TEST(OperatorReset, AnUntrackedRecipientHasNothingToReset) {
  driver d;
  const operator_result r = d.eng().operator_reset("nobody@example.test", at_minutes(1));
  EXPECT_TRUE(r.ok);
  EXPECT_NE(r.message.find("not tracked"), std::string::npos);
}

TEST(OperatorRestore, AllowEntriesComeBackAndExpiredOnesDoNot) {
  restore_snapshot snap;
  snap.operator_allows.push_back(allow_entry(victim));
  snap.operator_allows.push_back(
      allow_entry("gone@example.test", allow_kind::recipient, at_minutes(-1)));
  snap.operator_allows.push_back(
      allow_entry("helpdesk@vendor.example", allow_kind::sender, at_minutes(60)));
  driver d;
  d.eng().restore(snap, at_minutes(0));
  const auto entries = d.eng().operator_allows();
  ASSERT_EQ(entries.size(), 2U);
  EXPECT_EQ(entries[0].address, victim);
  EXPECT_EQ(entries[1].kind, allow_kind::sender);
  EXPECT_EQ(d.flood(victim, 40, 0, 15).level, verdict_level::dunno);
  EXPECT_EQ(d.flood("gone@example.test", 40, 0, 15).level, verdict_level::defer);
}

TEST(OperatorRestore, MinuteRowsUpToAResetAreNotRestored) {
  restore_snapshot snap;
  for (int minute = 0; minute < 10; ++minute) {
    snap.recent_minutes.push_back({std::string(victim), to_unix_seconds(at_minutes(minute)), 4, 4});
    snap.recent_minutes.push_back(
        {"carol@example.test", to_unix_seconds(at_minutes(minute)), 4, 4});
  }
  snap.counter_resets.push_back({std::string(victim), at_minutes(7.5)});
  driver d;
  d.eng().restore(snap, at_minutes(9.9));
  // Minutes 8 and 9 of bob are after his reset; carol keeps all ten.
  EXPECT_EQ(d.eng().inspect(victim, at_minutes(9.9)).attempted[1], 8.0);
  EXPECT_EQ(d.eng().inspect("carol@example.test", at_minutes(9.9)).attempted[1], 40.0);
}

TEST(OperatorStatus, OpenEpisodesAreListedWithTheirLevel) {
  driver d = deferred_victim();
  d.flood("carol@example.test", 20, 0, 30);
  const auto episodes = d.eng().open_episodes(at_minutes(next_minute));
  ASSERT_EQ(episodes.size(), 2U);
  const auto bob = std::find_if(episodes.begin(), episodes.end(),
                                [](const episode_view& e) { return e.recipient == victim; });
  ASSERT_NE(bob, episodes.end());
  EXPECT_EQ(bob->level, verdict_level::defer);
  EXPECT_GE(bob->score, 2.0);
  EXPECT_GE(bob->peak_score, bob->score);
}

}  // namespace
}  // namespace rcptguard::decision
