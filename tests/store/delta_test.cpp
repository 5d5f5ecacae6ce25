// The in-memory aggregation (store/delta.hpp): codes, which verdicts are stored as
// explanations, merging, and the key bound.
#include "store/delta.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "store_test_util.hpp"

namespace rcptguard::store {
namespace {

using namespace testing;  // NOLINT(google-build-using-namespace): the test helpers
using decision::event_source;
using decision::verdict_level;

TEST(FlaggedCode, RoundTripsLevelModeAndSource) {
  for (const verdict_level level : {verdict_level::warn, verdict_level::defer}) {
    for (const bool monitor : {false, true}) {
      for (const event_source source : {event_source::policy, event_source::log}) {
        const std::uint8_t code = flagged_code(level, monitor, source);
        EXPECT_EQ(code_level(code), level);
        EXPECT_EQ(code_monitor_only(code), monitor);
        EXPECT_EQ(code_source(code), source);
      }
    }
  }
  // The values the schema documents (and the v6 migration computes).
  EXPECT_EQ(flagged_code(verdict_level::warn, false, event_source::policy), 1);
  EXPECT_EQ(flagged_code(verdict_level::defer, false, event_source::policy), 2);
  EXPECT_EQ(flagged_code(verdict_level::defer, true, event_source::log), 2 + 4 + 8);
  const std::uint8_t flagged =
      flagged_code(verdict_level::defer, false, event_source::policy, true);
  EXPECT_EQ(flagged, 2 + 16);
  EXPECT_TRUE(code_header_flagged(flagged));
  EXPECT_EQ(code_level(flagged), verdict_level::defer);
  EXPECT_FALSE(code_header_flagged(flagged_code(verdict_level::defer, false, event_source::log)));
}

TEST(ExplanationFilter, StoresAStoryWhenItStartsChangesOrPeaks) {
  explanation_filter f;
  decision::verdict_record v = verdict(t0, "bob@example.test");
  EXPECT_TRUE(f.wanted(v, false));  // the first of the recipient
  v.score = 7.0;
  v.reasons[0].observed = 999;
  v.sender = "other@x.test";
  EXPECT_FALSE(f.wanted(v, false));  // only numbers and the sender changed
  EXPECT_TRUE(f.wanted(v, true));    // a new peak
  v.level = verdict_level::warn;
  EXPECT_TRUE(f.wanted(v, false));  // level
  EXPECT_FALSE(f.wanted(v, false));
  v.monitor_only = true;
  EXPECT_TRUE(f.wanted(v, false));  // mode
  v.source = event_source::log;
  EXPECT_TRUE(f.wanted(v, false));  // source
  v.reasons.pop_back();
  EXPECT_TRUE(f.wanted(v, false));  // the set of reasons
  EXPECT_FALSE(f.wanted(v, false));
  EXPECT_TRUE(f.wanted(verdict(t0, "carol@example.test"), false));  // per recipient
  EXPECT_EQ(f.size(), 2u);
  f.episode_ended("bob@example.test");
  EXPECT_EQ(f.size(), 1u);
  EXPECT_TRUE(f.wanted(v, false));  // a new episode opens with its story
}

TEST(Delta, AddCountsAndMatchesPeaksToTheirVerdict) {
  explanation_filter f;
  delta d;
  decision::outbox b;
  b.deliveries = {delivery(t0 + 1, "bob@example.test", "a@x.test", true, 10),
                  delivery(t0 + 2, "bob@example.test", "a@x.test", false, 20),
                  delivery(t0 + 61, "bob@example.test", "", true, 30)};
  b.verdicts = {verdict(t0 + 5, "bob@example.test"), verdict(t0 + 6, "bob@example.test"),
                verdict(t0 + 6, "bob@example.test"), verdict(t0 + 7, "bob@example.test")};
  // A new peak at t0 + 7: that verdict is stored although its story did not change.
  b.episodes = {episode("bob@example.test", t0 + 5, t0 + 7, false, 3.5)};
  d.add(b, f);
  EXPECT_EQ(d.records(), 8u);
  ASSERT_EQ(d.minutes().size(), 2u);
  const minute_tally& first = d.minutes().begin()->second;
  EXPECT_EQ(first.attempted, 2u);
  EXPECT_EQ(first.accepted, 1u);
  EXPECT_EQ(first.bytes, 10u);
  EXPECT_EQ(d.senders().size(), 2u);  // a@x.test and the null sender, one hour
  EXPECT_EQ(d.pairs().size(), 1u);    // a bounce is not correspondence
  ASSERT_EQ(d.flagged().size(), 3u);  // t0 + 6 twice is one key
  std::uint32_t requests = 0;
  for (const auto& [key, n] : d.flagged()) requests += n;
  EXPECT_EQ(requests, 4u);
  ASSERT_EQ(d.explanations().size(), 2u);
  EXPECT_EQ(d.explanations()[0].at, at(t0 + 5));
  EXPECT_EQ(d.explanations()[1].at, at(t0 + 7));
  EXPECT_EQ(d.episodes().size(), 1u);
}

// Log lines have whole seconds, so a flood's verdicts share the time of the peak that one of
// them made: the peak is one explanation, not one per verdict of that second.
TEST(Delta, APeakStoresOneExplanationHoweverManyVerdictsShareItsTime) {
  explanation_filter f;
  delta d;
  decision::outbox b;
  for (int i = 0; i < 60; ++i) {
    decision::verdict_record v = verdict(t0 + 10, "bob@example.test");
    v.sender = "s" + std::to_string(i) + "@x.test";
    b.verdicts.push_back(v);
  }
  b.verdicts.push_back(verdict(t0 + 10, "carol@example.test"));
  b.episodes = {episode("bob@example.test", t0, t0 + 10, false, 3.5),
                episode("carol@example.test", t0, t0 + 10, false, 3.5)};
  d.add(b, f);
  ASSERT_EQ(d.explanations().size(), 2u);  // each recipient's first story

  // The next second: a new peak of bob's among 60 verdicts of the same story.
  delta next;
  decision::outbox more;
  for (int i = 0; i < 60; ++i) more.verdicts.push_back(verdict(t0 + 11, "bob@example.test"));
  more.episodes = {episode("bob@example.test", t0, t0 + 11, false, 4.0)};
  next.add(more, f);
  EXPECT_EQ(next.explanations().size(), 1u);
  ASSERT_EQ(next.flagged().size(), 1u);
  EXPECT_EQ(next.flagged().begin()->second, 60u);
}

TEST(Delta, MergeAddsCountsAndRemapsNames) {
  explanation_filter f;
  delta a;
  delta b;
  decision::outbox first;
  first.deliveries = {delivery(t0 + 1, "bob@example.test", "x@x.test", true, 100)};
  first.verdicts = {verdict(t0 + 2, "bob@example.test")};
  a.add(first, f);
  decision::outbox second;  // other names first, so the ids of b differ from those of a
  second.deliveries = {delivery(t0 + 3, "carol@example.test", "y@x.test", true, 5),
                       delivery(t0 + 500, "bob@example.test", "x@x.test", true, 50),
                       delivery(t0 + 4, "bob@example.test", "x@x.test", false, 7)};
  second.verdicts = {verdict(t0 + 2, "bob@example.test")};
  b.add(second, f);
  a.merge(std::move(b));
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(a.records(), 6u);

  const auto id = [&](const std::string& text) {
    for (std::uint32_t i = 0; i < a.names().size(); ++i) {
      if (a.names()[i] == text) return i;
    }
    ADD_FAILURE() << text << " is not a name";
    return std::uint32_t{0};
  };
  const minute_tally& bob0 = a.minutes().at({t0, id("bob@example.test")});
  EXPECT_EQ(bob0.attempted, 2u);
  EXPECT_EQ(bob0.accepted, 1u);
  EXPECT_EQ(bob0.bytes, 100u);
  EXPECT_EQ(a.minutes().at({t0 + 480, id("bob@example.test")}).bytes, 50u);
  EXPECT_EQ(a.minutes().at({t0, id("carol@example.test")}).accepted, 1u);
  const pair_tally& pair =
      a.pairs().at((std::uint64_t{id("bob@example.test")} << 32U) | id("x@x.test"));
  EXPECT_EQ(pair.messages, 2u);
  EXPECT_EQ(pair.first_seen, t0 + 1);
  EXPECT_EQ(pair.last_seen, t0 + 500);
  EXPECT_EQ(a.senders().size(), 2u);  // (bob, x) and (carol, y) in hour t0
  ASSERT_EQ(a.flagged().size(), 1u);
  EXPECT_EQ(a.flagged().begin()->second, 2u);
  EXPECT_EQ(a.flagged().begin()->first.recipient, id("bob@example.test"));
  EXPECT_EQ(a.flagged().begin()->first.sender, id("spam@bad.test"));
  EXPECT_EQ(a.explanations().size(), 1u);  // the second verdict told the same story
}

TEST(Delta, LogPositionsAreKeptLatestPerPathAndMergeIntoAnEmptyDelta) {
  delta held;
  delta d;
  d.set_log_position("/var/log/mail.log", 1, 2, 100, t0);
  d.set_log_position("/var/log/mail.log", 1, 2, 250, t0 + 1);
  EXPECT_FALSE(d.empty());
  held.merge(std::move(d));
  ASSERT_EQ(held.log_positions().size(), 1u);
  EXPECT_EQ(held.log_positions().at("/var/log/mail.log").offset, 250u);
  delta later;
  later.set_log_position("/var/log/mail.log", 1, 2, 400, t0 + 2);
  held.merge(std::move(later));
  EXPECT_EQ(held.log_positions().at("/var/log/mail.log").offset, 400u);
}

// Beyond key_limit, new distinct-sender keys, pairs and flagged identities are folded and
// counted; every count still adds up.
TEST(Delta, KeyLimitFoldsIdentitiesNeverCounts) {
  explanation_filter f;
  delta d(50);
  decision::outbox b;
  for (int i = 0; i < 400; ++i) {
    b.deliveries.push_back(
        delivery(t0 + i, "bob@example.test", "s" + std::to_string(i) + "@x.test", true, 10));
    decision::verdict_record v = verdict(t0 + i / 4, "bob@example.test");
    v.sender = "s" + std::to_string(i) + "@x.test";
    b.verdicts.push_back(v);
  }
  d.add(b, f);
  EXPECT_GT(d.folded(), 0u);
  std::uint64_t attempted = 0;
  std::uint64_t bytes = 0;
  for (const auto& [key, m] : d.minutes()) {
    attempted += m.attempted;
    bytes += m.bytes;
  }
  EXPECT_EQ(attempted, 400u);
  EXPECT_EQ(bytes, 4000u);
  std::uint64_t requests = 0;
  for (const auto& [key, n] : d.flagged()) requests += n;
  EXPECT_EQ(requests, 400u);
  EXPECT_LT(d.senders().size(), 50u);
  EXPECT_LT(d.pairs().size(), 50u);
  // A flagged request whose identity was folded keeps its second, recipient and answer.
  std::uint64_t anonymous = 0;
  for (const auto& [key, n] : d.flagged()) {
    if (d.names()[key.sender].empty()) anonymous += n;
  }
  EXPECT_GT(anonymous, 0u);

  // Merged into a bounded delta, the other's counts are kept too.
  delta held(50);
  held.merge(std::move(d));
  delta more(50);
  more.add(b, f);
  held.merge(std::move(more));
  attempted = 0;
  for (const auto& [key, m] : held.minutes()) attempted += m.attempted;
  EXPECT_EQ(attempted, 800u);
  requests = 0;
  for (const auto& [key, n] : held.flagged()) requests += n;
  EXPECT_EQ(requests, 800u);
}

// BUG (store/delta.cpp, delta::add): the key bound does not bound memory. The sender of every
// delivery and the sender and client of every verdict are interned in names_ before
// count()/add_flagged() decide to fold their keys, so a flood of distinct senders grows the
// delta (and writer_stats::queue_depth) by one name per request past max_pending_keys:
// 3,000 distinct senders against a bound of 200 hold 3,000+ keys. Enable once fixed.
TEST(Delta, KeysStayNearTheBoundUnderDistinctSenders) {
  explanation_filter f;
  delta d(200);
  decision::outbox b;
  for (int i = 0; i < 3000; ++i) {
    b.deliveries.push_back(
        delivery(t0 + i / 10, "bob@example.test", "s" + std::to_string(i) + "@x.test", true));
    decision::verdict_record v = verdict(t0 + i / 10, "bob@example.test");
    v.sender = "s" + std::to_string(i) + "@x.test";
    v.client = "10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256);
    b.verdicts.push_back(v);
  }
  d.add(b, f);
  EXPECT_GT(d.folded(), 0u);
  // The counts themselves (5 minute rows, one flagged key per second at most once folded)
  // may exceed the bound; names of folded identities must not.
  EXPECT_LE(d.keys(), 200u + d.minutes().size() + 300u);
  EXPECT_LT(d.names().size(), 400u);
}

// BUG (store/delta.cpp, delta::add): verdicts are judged before the outbox's episode records,
// so when one outbox holds the close of bob's episode and then the open of his next one, the
// close's episode_ended() runs last and forgets the new episode's story: the next verdict
// of the new episode, in a later outbox, is stored again although nothing changed. With one
// outbox per request it is not. Harmless for review (one explanation too many), but the stored
// explanations depend on where the flushes fall. Enable once fixed.
TEST(Delta, ACloseAndReopenInOneOutboxKeepTheNewStory) {
  const auto run = [](bool one_outbox) {
    explanation_filter f;
    std::vector<decision::outbox> events(3);
    events[0].verdicts = {verdict(t0, "bob@example.test")};
    events[0].episodes = {episode("bob@example.test", t0, t0, false, 3.5)};
    events[1].episodes = {episode("bob@example.test", t0, t0 + 100, true, 3.5)};
    events[2].verdicts = {verdict(t0 + 200, "bob@example.test")};
    events[2].episodes = {episode("bob@example.test", t0 + 200, t0 + 200, false, 3.5)};
    std::size_t stored = 0;
    if (one_outbox) {
      decision::outbox all;
      for (const decision::outbox& e : events) {
        all.verdicts.insert(all.verdicts.end(), e.verdicts.begin(), e.verdicts.end());
        all.episodes.insert(all.episodes.end(), e.episodes.begin(), e.episodes.end());
      }
      delta d;
      d.add(all, f);
      stored += d.explanations().size();
    } else {
      for (const decision::outbox& e : events) {
        delta d;
        d.add(e, f);
        stored += d.explanations().size();
      }
    }
    // A later request of the new episode, same story.
    decision::outbox later;
    later.verdicts = {verdict(t0 + 300, "bob@example.test")};
    delta d;
    d.add(later, f);
    return stored + d.explanations().size();
  };
  EXPECT_EQ(run(false), 2u);  // each episode's open
  EXPECT_EQ(run(true), run(false));
}

}  // namespace
}  // namespace rcptguard::store
