// Sliding windows, saturation, the pair tables and the per-key memory budget.
#include "decision/windows.hpp"

#include <gtest/gtest.h>

#include "decision/flat_index.hpp"
#include "decision/pairs.hpp"
#include "decision/recipients.hpp"

namespace rcptguard::decision {
namespace {

constexpr std::uint32_t base_minute = 28'330'560;  // a multiple of 60 (an hour start)

TEST(Windows, TenMinuteWindowSlides) {
  recipient_windows w;
  for (std::uint32_t m = 0; m < 10; ++m) {
    w.advance(base_minute + m);
    w.add_attempt();
    w.add_attempt();
  }
  EXPECT_EQ(w.attempted(window::ten_minutes, base_minute + 9, 0), 20.0);
  EXPECT_EQ(w.attempted(window::ten_minutes, base_minute + 10, 0), 18.0);
  EXPECT_EQ(w.attempted(window::ten_minutes, base_minute + 19, 0), 0.0);
  EXPECT_EQ(w.attempted(window::ten_minutes, base_minute + 500, 0), 0.0);
}

TEST(Windows, MinuteWindowWeighsThePreviousMinute) {
  recipient_windows w;
  w.advance(base_minute);
  for (int i = 0; i < 10; ++i) w.add_attempt();
  w.advance(base_minute + 1);
  for (int i = 0; i < 4; ++i) w.add_attempt();
  EXPECT_DOUBLE_EQ(w.attempted(window::minute, base_minute + 1, 0), 14.0);
  EXPECT_DOUBLE_EQ(w.attempted(window::minute, base_minute + 1, 30), 9.0);
  EXPECT_DOUBLE_EQ(w.attempted(window::minute, base_minute + 2, 0), 4.0);
}

TEST(Windows, HourAndDayWindows) {
  recipient_windows w;
  for (std::uint32_t h = 0; h < 30; ++h) {
    w.advance(base_minute + h * 60);
    for (int i = 0; i < 10; ++i) w.add_attempt();
  }
  const std::uint32_t now = base_minute + 29 * 60;
  EXPECT_DOUBLE_EQ(w.attempted(window::hour, now, 0), 20.0);  // previous hour still whole
  EXPECT_DOUBLE_EQ(w.attempted(window::hour, now + 30, 0), 15.0);
  EXPECT_DOUBLE_EQ(w.attempted(window::day, now, 0), 240.0);
  EXPECT_EQ(w.attempted_in_hour(now / 60 - 1), 10U);
  EXPECT_EQ(w.attempted_in_hour(now / 60 - 24), 0U);
}

TEST(Windows, SaturatesInsteadOfWrapping) {
  recipient_windows w;
  w.advance(base_minute);
  for (int i = 0; i < 70'000; ++i) w.add_attempt();
  for (int i = 0; i < 300; ++i) w.add_sender(true, true);
  EXPECT_EQ(w.attempted(window::ten_minutes, base_minute, 0), 65535.0);
  EXPECT_EQ(w.distinct_senders_ten_minutes(base_minute), 255.0);
  EXPECT_EQ(w.distinct_senders_hour(base_minute, 0), 300.0);
}

TEST(Windows, TimeGoingBackwardsCountsIntoTheNewestBucket) {
  recipient_windows w;
  w.advance(base_minute + 5);
  w.advance(base_minute + 2);
  w.add_attempt();
  EXPECT_EQ(w.newest_minute(), base_minute + 5);
  EXPECT_EQ(w.attempted(window::ten_minutes, base_minute + 5, 0), 1.0);
}

TEST(Windows, RestoreMinuteKeepsOnlyWhatIsStillInside) {
  recipient_windows w;
  w.advance(base_minute + 24 * 60);
  w.restore_minute(base_minute + 24 * 60 - 3, 2, 5);  // in the 10-minute window
  w.restore_minute(base_minute + 23 * 60 - 1, 1, 7);  // only in the day window
  w.restore_minute(base_minute - 1, 1, 100);          // older than 24 hours
  EXPECT_EQ(w.attempted(window::ten_minutes, base_minute + 24 * 60, 0), 5.0);
  EXPECT_EQ(w.accepted(window::ten_minutes, base_minute + 24 * 60, 0), 2.0);
  EXPECT_EQ(w.attempted(window::day, base_minute + 24 * 60, 0), 12.0);
}

TEST(Windows, TopClientShare) {
  recipient_windows w;
  w.advance(base_minute);
  for (std::uint32_t i = 1; i <= 18; ++i) {
    w.add_attempt();
    w.note_client_count(i);  // one client sends 18 ...
  }
  w.add_attempt();
  w.note_client_count(1);  // ... and another one 2
  w.add_attempt();
  w.note_client_count(2);
  double sample = 0;
  EXPECT_DOUBLE_EQ(w.top_client_share(base_minute, 20, sample), 0.9);
  EXPECT_EQ(sample, 20.0);
  EXPECT_EQ(w.top_client_share(base_minute, 21, sample), 0.0);  // too few to judge
}

TEST(PairTracker, CountsEachPairOncePerWindow) {
  pair_tracker pairs(1024);
  EXPECT_TRUE(pairs.observe(77, base_minute).new_ten);
  const auto again = pairs.observe(77, base_minute + 3);
  EXPECT_FALSE(again.new_ten);
  EXPECT_FALSE(again.new_hour);
  EXPECT_EQ(again.epoch_count, 2U);
  EXPECT_TRUE(pairs.observe(77, base_minute + 10).new_ten);  // left the 10-minute ring
  EXPECT_TRUE(pairs.observe(77, base_minute + 60).new_hour);
  EXPECT_TRUE(pairs.observe(78, base_minute).new_ten);
}

TEST(CorrespondentSet, KeepsEarliestSighting) {
  correspondent_set set(64);
  EXPECT_EQ(set.first_seen(5), 0U);
  set.observe(5, 100, 100);
  set.observe(5, 200, 200);
  set.observe(5, 50, 60);
  EXPECT_EQ(set.first_seen(5), 50U);
  EXPECT_EQ(set.size(), 1U);
}

TEST(FlatIndex, InsertFindEraseThroughGrowth) {
  flat_index index;
  for (std::uint32_t i = 0; i < 5000; ++i)
    index.insert(std::uint64_t{i} * 0x9e3779b97f4a7c15ULL, i);
  for (std::uint32_t i = 0; i < 5000; i += 2)
    index.erase(std::uint64_t{i} * 0x9e3779b97f4a7c15ULL, i);
  for (std::uint32_t i = 0; i < 5000; ++i) {
    const std::uint32_t found = index.find(std::uint64_t{i} * 0x9e3779b97f4a7c15ULL,
                                           [&](std::uint32_t v) { return v == i; });
    EXPECT_EQ(found, i % 2 == 0 ? flat_index::npos : i) << i;
  }
  EXPECT_EQ(index.size(), 2500U);
}

// The budget is 256 bytes resident per tracked recipient. What a key costs:
//   sizeof(recipient_state)                         (checked below, 208 on LP64)
//   index entry: 8 bytes at a load between 1/4 and 1/2  -> 16 to 32 bytes
//   storage: 4096-state chunks, one allocation each  -> < 0.01 byte
//   no key bytes (the 64-bit keyed hash is the identity; see recipients.hpp)
// = at most 240 bytes; the pair and correspondent tables are fixed-size and separate
// (pair_slots x 16 + correspondent_slots x 16 bytes, touched only as used).
TEST(MemoryBudget, RecipientStateFits) {
  EXPECT_LE(sizeof(recipient_state), 224U);
  EXPECT_LE(sizeof(recipient_state) + 32U, 256U);
}

}  // namespace
}  // namespace rcptguard::decision
