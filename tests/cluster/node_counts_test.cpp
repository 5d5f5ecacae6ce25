// cluster/node_counts.hpp: absolute counts per recipient and minute/hour, only what changed is
// published, a failed publish comes back whole, old buckets expire, the table is bounded.
#include "cluster/node_counts.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

namespace rcptguard::cluster {
namespace {

constexpr std::uint32_t m0 = 29'000'005;  // a Unix minute in 2025, 25 past an hour
constexpr std::uint32_t hour_start = m0 - m0 % 60;

count_event rcpt(std::string recipient, std::uint32_t minute, std::string sender,
                 std::string client = "192.0.2.1") {
  return {std::move(recipient), minute, std::move(sender), std::move(client)};
}

const count_row* find(const std::vector<count_row>& rows, std::string_view recipient,
                      std::uint32_t bucket) {
  const auto it = std::find_if(rows.begin(), rows.end(), [&](const count_row& r) {
    return r.recipient == recipient && r.bucket == bucket;
  });
  return it == rows.end() ? nullptr : &*it;
}

TEST(NodeCounts, PublishesAbsoluteCountsOfWhatChanged) {
  node_counts counts(1000);
  for (int i = 0; i < 3; ++i) counts.add(rcpt("bob@x.test", hour_start, "s" + std::to_string(i)));
  counts.add(rcpt("bob@x.test", hour_start + 1, "s0"));
  counts.add(rcpt("carol@x.test", hour_start + 1, "s9", "192.0.2.2"));
  publish_batch b = counts.take_changes();
  ASSERT_NE(find(b.minutes, "bob@x.test", hour_start), nullptr);
  EXPECT_EQ(find(b.minutes, "bob@x.test", hour_start)->count, 3U);
  EXPECT_EQ(find(b.minutes, "bob@x.test", hour_start + 1)->count, 1U);
  EXPECT_EQ(find(b.hours, "bob@x.test", hour_start / 60)->count, 4U);
  EXPECT_EQ(find(b.hours, "carol@x.test", hour_start / 60)->count, 1U);
  ASSERT_EQ(b.senders.size(), 3U);  // (bob, m), (bob, m+1), (carol, m+1)
  EXPECT_EQ(b.senders[0].items.size(), 3U);
  EXPECT_EQ(b.epoch_senders.size(), 2U);
  EXPECT_EQ(b.clients.size(), 3U);

  // Nothing changed: nothing to publish. One more RCPT: its minute and hour, as totals.
  EXPECT_TRUE(counts.take_changes().empty());
  counts.add(rcpt("bob@x.test", hour_start + 1, "s0"));
  b = counts.take_changes();
  ASSERT_EQ(b.minutes.size(), 1U);
  EXPECT_EQ(b.minutes[0].count, 2U);
  ASSERT_EQ(b.hours.size(), 1U);
  EXPECT_EQ(b.hours[0].count, 5U);
}

TEST(NodeCounts, AFailedPublishComesBackAndAReconnectSendsEverything) {
  node_counts counts(1000);
  counts.add(rcpt("bob@x.test", m0, "a@y.test"));
  publish_batch lost = counts.take_changes();
  counts.add(rcpt("bob@x.test", m0, "b@y.test"));  // meanwhile
  counts.give_back(std::move(lost));
  const publish_batch again = counts.take_changes();
  ASSERT_EQ(again.minutes.size(), 1U);
  EXPECT_EQ(again.minutes[0].count, 2U);  // the value now, not the one that was lost
  ASSERT_EQ(again.senders.size(), 1U);
  EXPECT_EQ(again.senders[0].items.size(), 2U);  // both senders, once each

  EXPECT_TRUE(counts.take_changes().empty());
  counts.mark_all_changed();
  const publish_batch all = counts.take_changes();
  EXPECT_EQ(all.minutes.size(), 1U);
  EXPECT_EQ(all.hours.size(), 1U);
}

TEST(NodeCounts, OldBucketsExpireAndActiveListsTheRecent) {
  node_counts counts(1000);
  counts.add(rcpt("old@x.test", m0, "s"));
  counts.add(rcpt("new@x.test", m0 + 9, "s"));
  counts.add(rcpt("newer@x.test", m0 + 10, "s"));
  EXPECT_EQ(counts.active(m0 + 10, 2, 10),
            (std::vector<std::string>{"newer@x.test", "new@x.test"}));
  EXPECT_EQ(counts.active(m0 + 10, 2, 1), (std::vector<std::string>{"newer@x.test"}));
  // The busiest before the most recent: a flood is what the others' counts are for.
  counts.add(rcpt("new@x.test", m0 + 9, "t"));
  EXPECT_EQ(counts.active(m0 + 10, 2, 1), (std::vector<std::string>{"new@x.test"}));
  counts.expire(m0 + 10);  // m0 is now 10 minutes back: gone; its hour stays
  const publish_batch b = counts.take_changes();
  EXPECT_EQ(find(b.minutes, "old@x.test", m0), nullptr);
  EXPECT_NE(find(b.hours, "old@x.test", m0 / 60), nullptr);
  EXPECT_TRUE(counts.active(m0 + 10, 60, 10).size() == 2U);
  counts.expire(m0 + 25 * 60);
  EXPECT_EQ(counts.stats().keys, 0U);
}

TEST(NodeCounts, ARecipientIsSharedOnceItHasMinCountHereAndThenWhole) {
  node_counts counts(1000, 2);
  counts.add(rcpt("once@x.test", m0, "s1"));
  counts.add(rcpt("twice@x.test", m0, "s1"));
  counts.add(rcpt("twice@x.test", m0 + 1, "s2"));
  publish_batch b = counts.take_changes();
  EXPECT_EQ(find(b.minutes, "once@x.test", m0), nullptr) << "one RCPT: not shared yet";
  ASSERT_NE(find(b.minutes, "twice@x.test", m0), nullptr);
  EXPECT_EQ(find(b.hours, "twice@x.test", m0 / 60)->count, 2U);
  ASSERT_EQ(b.senders.size(), 2U);  // twice's two minutes; once's sketch items wait
  EXPECT_EQ(counts.active(m0 + 1, 2, 10), (std::vector<std::string>{"twice@x.test"}));
  // The second RCPT shares it, the first included, sketches and all.
  counts.add(rcpt("once@x.test", m0 + 1, "s2"));
  b = counts.take_changes();
  ASSERT_NE(find(b.minutes, "once@x.test", m0), nullptr);
  EXPECT_EQ(find(b.minutes, "once@x.test", m0)->count, 1U);
  EXPECT_EQ(find(b.hours, "once@x.test", m0 / 60)->count, 2U);
  EXPECT_EQ(b.senders.size(), 2U);
  EXPECT_EQ(counts.active(m0 + 1, 2, 10).size(), 2U);
}

TEST(NodeCounts, TheTableIsBounded) {
  node_counts counts(4);  // two recipients' minute and hour
  counts.add(rcpt("a@x.test", m0, "s"));
  counts.add(rcpt("b@x.test", m0, "s"));
  counts.add(rcpt("c@x.test", m0, "s"));  // two new keys: refused
  counts.add(rcpt("a@x.test", m0, "t"));  // held keys: counted
  EXPECT_EQ(counts.stats().keys, 4U);
  EXPECT_EQ(counts.stats().refused_full, 1U);
  EXPECT_EQ(counts.stats().events, 4U);
  const publish_batch b = counts.take_changes();
  EXPECT_EQ(find(b.minutes, "a@x.test", m0)->count, 2U);
  EXPECT_EQ(find(b.minutes, "c@x.test", m0), nullptr);
}

}  // namespace
}  // namespace rcptguard::cluster
