// cluster/correspondent_queue.hpp: each pair published once per run with its earliest minute,
// a failed publish given back, bounded waiting and remembering.
#include "cluster/correspondent_queue.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <utility>

namespace rcptguard::cluster {
namespace {

std::map<std::pair<std::string, std::string>, std::uint32_t> rows_of(
    const std::vector<pair_row>& rows) {
  std::map<std::pair<std::string, std::string>, std::uint32_t> out;
  for (const pair_row& r : rows) out[{r.recipient, r.sender}] = r.minute;
  return out;
}

TEST(CorrespondentQueue, EachPairIsPublishedOnceWithItsEarliestMinute) {
  correspondent_queue q(100, 100, 7);
  q.add("bob@x.test", "alice@y.test", 20);
  q.add("bob@x.test", "alice@y.test", 10);
  q.add("alice@y.test", "bob@x.test", 20);  // the other way round is a pair of its own
  EXPECT_EQ(rows_of(q.take()),
            (std::map<std::pair<std::string, std::string>, std::uint32_t>{
                {{"bob@x.test", "alice@y.test"}, 10}, {{"alice@y.test", "bob@x.test"}, 20}}));
  q.add("bob@x.test", "alice@y.test", 30);  // published already
  EXPECT_TRUE(q.take().empty());
  EXPECT_EQ(q.stats().queued, 2U);
  EXPECT_EQ(q.stats().remembered, 2U);
}

TEST(CorrespondentQueue, AFailedPublishIsGivenBackAndAForgottenStoreGetsThemAgain) {
  correspondent_queue q(100, 100, 7);
  q.add("bob@x.test", "alice@y.test", 10);
  std::vector<pair_row> rows = q.take();
  q.give_back(std::move(rows));
  EXPECT_EQ(q.take().size(), 1U);

  q.forget_published();
  q.add("bob@x.test", "alice@y.test", 40);
  const std::vector<pair_row> again = q.take();
  ASSERT_EQ(again.size(), 1U);
  EXPECT_EQ(again[0].minute, 40U);
}

TEST(CorrespondentQueue, WaitingAndRememberingAreBounded) {
  correspondent_queue q(2, 3, 7);
  q.add("a@x.test", "s@y.test", 1);
  q.add("b@x.test", "s@y.test", 1);
  q.add("c@x.test", "s@y.test", 1);  // refused: two wait
  EXPECT_EQ(q.stats().refused_full, 1U);
  EXPECT_EQ(q.take().size(), 2U);
  q.add("c@x.test", "s@y.test", 1);
  q.add("d@x.test", "s@y.test", 1);
  // Remembering four would pass the bound of three: it starts again, with these two.
  EXPECT_EQ(q.take().size(), 2U);
  EXPECT_EQ(q.stats().remembered, 2U);
  q.add("a@x.test", "s@y.test", 1);  // forgotten: published once more
  EXPECT_EQ(q.take().size(), 1U);
}

}  // namespace
}  // namespace rcptguard::cluster
