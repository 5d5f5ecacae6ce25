// The store on real SQLite files: aggregation, correspondents, verdicts, episodes, the restart
// snapshot and pruning.
#include "store/store.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "store_test_util.hpp"

namespace rcptguard::store {
namespace {

using namespace testing;  // NOLINT(google-build-using-namespace): the test helpers

class StoreTest : public ::testing::Test {
 protected:
  temp_dir dir_;
  std::string path_ = dir_.file("rcptguard.db");
};

TEST_F(StoreTest, TwoBatchesAddUpInHourlyAndMinuteCounts) {
  store s(options_for(path_));
  decision::outbox first;
  first.deliveries = {delivery(t0 + 5, "bob@example.test", "a@x.test", true, 100),
                      delivery(t0 + 30, "bob@example.test", "b@x.test", false, 999),
                      delivery(t0 + 60, "bob@example.test", "a@x.test", true, 200),
                      delivery(t0 + 3600, "carol@example.test", "a@x.test", true, 50)};
  s.apply(first);
  decision::outbox second;
  second.deliveries = {delivery(t0 + 3599, "bob@example.test", "c@x.test", true, 300),
                       delivery(t0 + 10, "bob@example.test", "a@x.test", true, 400)};
  s.apply(second);

  SQLite::Database db(path_, SQLite::OPEN_READONLY);
  SQLite::Statement hour(db, R"sql(
    SELECT accepted, attempted, distinct_senders, bytes FROM recipient_hourly
     WHERE recipient = ?1 AND hour_start = ?2)sql");
  hour.bind(1, "bob@example.test");
  hour.bind(2, t0);
  ASSERT_TRUE(hour.executeStep());
  EXPECT_EQ(hour.getColumn(0).getInt(), 4);     // the attempt-only RCPT is not accepted
  EXPECT_EQ(hour.getColumn(1).getInt(), 5);     // but it is an attempt
  EXPECT_EQ(hour.getColumn(2).getInt(), 3);     // a, b, c: a again in batch two is not new
  EXPECT_EQ(hour.getColumn(3).getInt(), 1000);  // accepted sizes only

  SQLite::Statement minute(db, R"sql(
    SELECT accepted, attempted FROM recipient_minute WHERE recipient = ?1 AND minute_start = ?2)sql");
  minute.bind(1, "bob@example.test");
  minute.bind(2, t0);
  ASSERT_TRUE(minute.executeStep());
  EXPECT_EQ(minute.getColumn(0).getInt(), 2);
  EXPECT_EQ(minute.getColumn(1).getInt(), 3);
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM recipient_minute"), 4);
  EXPECT_EQ(query_int(path_,
                      "SELECT accepted FROM recipient_hourly "
                      "WHERE recipient = 'carol@example.test'"),
            1);
  EXPECT_EQ(query_text(path_,
                       "SELECT hour_utc FROM recipient_hourly "
                       "WHERE recipient = 'carol@example.test'"),
            "2024-03-04T11:00:00Z");
}

TEST_F(StoreTest, DistinctSendersStayExactAcrossARestart) {
  {
    store s(options_for(path_));
    decision::outbox b;
    b.deliveries = {delivery(t0 + 1, "bob@example.test", "a@x.test", true),
                    delivery(t0 + 2, "bob@example.test", "", true)};
    s.apply(b);
  }
  store s(options_for(path_));
  decision::outbox b;
  b.deliveries = {delivery(t0 + 100, "bob@example.test", "a@x.test", true),
                  delivery(t0 + 200, "bob@example.test", "", false),
                  delivery(t0 + 300, "bob@example.test", "new@x.test", true)};
  s.apply(b);
  EXPECT_EQ(query_int(path_, "SELECT distinct_senders FROM recipient_hourly"), 3);
}

TEST_F(StoreTest, CorrespondentsUpsertFromAcceptedMailOnly) {
  store s(options_for(path_));
  decision::outbox b1;
  b1.deliveries = {delivery(t0 + 100, "bob@example.test", "alice@example.test", true),
                   delivery(t0 + 50, "bob@example.test", "alice@example.test", true),
                   delivery(t0 + 60, "bob@example.test", "tried@x.test", false),
                   delivery(t0 + 70, "bob@example.test", "", true)};  // a bounce
  s.apply(b1);
  decision::outbox b2;
  b2.deliveries = {delivery(t0 + 9000, "bob@example.test", "alice@example.test", true)};
  s.apply(b2);

  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM correspondent"), 1);
  EXPECT_EQ(query_int(path_, "SELECT first_seen FROM correspondent"), t0 + 50);
  EXPECT_EQ(query_int(path_, "SELECT last_seen FROM correspondent"), t0 + 9000);
  EXPECT_EQ(query_int(path_, "SELECT messages FROM correspondent"), 3);
  EXPECT_EQ(query_text(path_, "SELECT last_seen_utc FROM correspondent"), "2024-03-04T12:30:00Z");
}

TEST_F(StoreTest, AuthenticatedDeliveryAlsoRecordsTheReversePair) {
  store s(options_for(path_));
  decision::outbox b;
  // Our user alice writes to ext@far.test (twice), so a reply from ext is correspondence.
  decision::delivery_record out1 = delivery(t0 + 10, "ext@far.test", "alice@example.test", true);
  out1.authenticated = true;
  decision::delivery_record out2 = out1;
  out2.at = at(t0 + 500);
  // Not accepted: no pair either way.
  decision::delivery_record failed =
      delivery(t0 + 20, "nope@far.test", "alice@example.test", false);
  failed.authenticated = true;
  // Unauthenticated: one direction only.
  decision::delivery_record inbound =
      delivery(t0 + 30, "alice@example.test", "stranger@x.test", true);
  // To herself: one pair, counted once.
  decision::delivery_record self =
      delivery(t0 + 40, "alice@example.test", "alice@example.test", true);
  self.authenticated = true;
  b.deliveries = {out1, out2, failed, inbound, self};
  s.apply(b);

  SQLite::Database db(path_, SQLite::OPEN_READONLY);
  SQLite::Statement st(db, R"sql(
    SELECT recipient, sender, first_seen, last_seen, messages FROM correspondent
     ORDER BY recipient, sender)sql");
  struct row {
    std::string recipient, sender;
    std::int64_t first, last, messages;
  };
  std::vector<row> rows;
  while (st.executeStep()) {
    rows.push_back({st.getColumn(0).getString(), st.getColumn(1).getString(),
                    st.getColumn(2).getInt64(), st.getColumn(3).getInt64(),
                    st.getColumn(4).getInt64()});
  }
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].recipient, "alice@example.test");  // the reverse pair
  EXPECT_EQ(rows[0].sender, "alice@example.test");
  EXPECT_EQ(rows[0].messages, 1);
  EXPECT_EQ(rows[1].recipient, "alice@example.test");
  EXPECT_EQ(rows[1].sender, "ext@far.test");
  EXPECT_EQ(rows[1].first, t0 + 10);
  EXPECT_EQ(rows[1].last, t0 + 500);
  EXPECT_EQ(rows[1].messages, 2);
  EXPECT_EQ(rows[2].recipient, "alice@example.test");
  EXPECT_EQ(rows[2].sender, "stranger@x.test");
  EXPECT_EQ(rows[3].recipient, "ext@far.test");  // the forward pair
  EXPECT_EQ(rows[3].sender, "alice@example.test");
  EXPECT_EQ(rows[3].messages, 2);

  // A later batch merges into the reverse pair, and the snapshot hands it to the engine.
  decision::outbox later;
  later.deliveries = {out1};
  later.deliveries[0].at = at(t0 + 900);
  s.apply(later);
  EXPECT_EQ(query_int(path_,
                      "SELECT messages FROM correspondent WHERE recipient = 'alice@example.test' "
                      "AND sender = 'ext@far.test'"),
            3);
  const decision::restore_snapshot snap = s.load_snapshot(at(t0 + 1000));
  const bool restored =
      std::any_of(snap.correspondents.begin(), snap.correspondents.end(), [](const auto& p) {
        return p.recipient == "alice@example.test" && p.sender == "ext@far.test" &&
               p.last_seen == t0 + 900;
      });
  EXPECT_TRUE(restored);
}

// What burst learning and exclusion read back: per hour the largest window volumes the engine
// reported and whether any of its records lay inside a trusted episode, across batches; a
// flagged (header) delivery counts as accepted but makes no correspondent.
TEST_F(StoreTest, HourlyPeaksAndEpisodeHoursAddUpAcrossBatches) {
  store s(options_for(path_));
  const auto with = [](decision::delivery_record d, std::uint32_t minute, std::uint32_t ten,
                       bool in_episode) {
    d.minute_volume = minute;
    d.ten_minute_volume = ten;
    d.in_episode = in_episode;
    return d;
  };
  decision::outbox first;
  first.deliveries = {with(delivery(t0 + 5, "bob@example.test", "a@x.test", true), 3, 9, false),
                      with(delivery(t0 + 65, "bob@example.test", "b@x.test", true), 7, 4, false),
                      with(delivery(t0 + 3605, "bob@example.test", "c@x.test", true), 1, 1, false)};
  s.apply(first);
  decision::outbox second;
  decision::delivery_record flagged =
      with(delivery(t0 + 600, "bob@example.test", "flood@x.test", true), 5, 30, true);
  flagged.header_flagged = true;
  second.deliveries = {flagged};
  s.apply(second);

  SQLite::Database reader = open_read_only(path_);
  const auto h = load_histories(reader, at(t0 + 7200), 1);
  ASSERT_EQ(h.size(), 1u);
  ASSERT_EQ(h[0].hours.size(), 2u);
  EXPECT_EQ(h[0].hours[0].peak_minute, 7u);
  EXPECT_EQ(h[0].hours[0].peak_ten_minutes, 30u);
  EXPECT_TRUE(h[0].hours[0].in_episode);
  EXPECT_EQ(h[0].hours[0].accepted, 3u);
  EXPECT_EQ(h[0].hours[1].peak_minute, 1u);
  EXPECT_FALSE(h[0].hours[1].in_episode);
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM correspondent WHERE sender = 'flood@x.test'"),
            0);
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM correspondent"), 3);
}

// The cluster store's hours (schema v9): the other nodes' counts of a completed hour are kept at
// the largest value reported, across batches and merged deltas, and join this node's own hours
// in the histories the baselines learn from; hours only the others had mail in are added.
TEST_F(StoreTest, TheOtherNodesHoursJoinTheHistories) {
  store s(options_for(path_));
  decision::outbox first;
  first.deliveries = {delivery(t0 + 5, "bob@example.test", "a@x.test", true),
                      delivery(t0 + 65, "bob@example.test", "b@x.test", true)};
  first.cluster_hours = {{"bob@example.test", t0, 7},
                         {"bob@example.test", t0 - 3600, 4},
                         {"carol@example.test", t0, 3}};
  s.apply(first);
  decision::outbox again;  // a later, larger read of the same hour; an older, smaller one
  again.cluster_hours = {{"bob@example.test", t0, 9}, {"carol@example.test", t0, 2}};
  s.apply(again);
  EXPECT_EQ(query_int(path_,
                      "SELECT attempted FROM cluster_hourly WHERE recipient = "
                      "'bob@example.test' AND hour_start = " +
                          std::to_string(t0)),
            9);
  EXPECT_EQ(query_int(path_,
                      "SELECT attempted FROM cluster_hourly WHERE recipient = "
                      "'carol@example.test'"),
            3);

  SQLite::Database reader = open_read_only(path_);
  const auto h = load_histories(reader, at(t0 + 7200), 1);
  ASSERT_EQ(h.size(), 2u);
  const auto& bob = h[0].recipient == "bob@example.test" ? h[0] : h[1];
  const auto& carol = h[0].recipient == "bob@example.test" ? h[1] : h[0];
  ASSERT_EQ(bob.hours.size(), 2u);
  EXPECT_EQ(bob.hours[0].hour_start, t0 - 3600);  // the others' only
  EXPECT_EQ(bob.hours[0].attempted, 4u);
  EXPECT_EQ(bob.hours[0].accepted, 0u);
  EXPECT_EQ(bob.hours[1].hour_start, t0);  // ours (2) and theirs (9)
  EXPECT_EQ(bob.hours[1].attempted, 11u);
  EXPECT_EQ(bob.hours[1].accepted, 2u);
  ASSERT_EQ(carol.hours.size(), 1u);
  EXPECT_EQ(carol.hours[0].attempted, 3u);
}

// A prune chunk that found the database locked leaves its DELETE active unless it is reset, and
// then every later COMMIT fails with "SQL statements in progress": the writer would retry for
// ever after the lock is gone (seen in CI under ASan). Likewise a write that failed.
TEST_F(StoreTest, AWriteSucceedsOnceALockThatFailedAPruneAndAWriteIsGone) {
  store_options o = options_for(path_);
  o.database.busy_timeout = std::chrono::milliseconds{20};
  store s(o);
  decision::outbox batch;
  batch.deliveries = {delivery(t0, "bob@example.test", "a@x.test", true)};
  s.apply(batch);

  auto locker = std::make_unique<SQLite::Database>(path_, SQLite::OPEN_READWRITE);
  locker->exec("BEGIN EXCLUSIVE");
  EXPECT_THROW(s.prune(at(t0 + 90 * 86400), std::chrono::hours{24}, std::chrono::hours{1}),
               SQLite::Exception);
  EXPECT_THROW(s.apply(batch), SQLite::Exception);
  locker->exec("ROLLBACK");
  locker.reset();

  s.apply(batch);
  EXPECT_EQ(query_int(path_, "SELECT sum(attempted) FROM recipient_hourly"), 2);
  EXPECT_NO_THROW(s.prune(at(t0 + 90 * 86400), std::chrono::hours{24}, std::chrono::hours{1}));
}

TEST_F(StoreTest, MonitorOnlyVerdictsAreMarked) {
  store s(options_for(path_));
  decision::outbox b;
  decision::verdict_record monitored = verdict(t0 + 1, "bob@example.test");
  monitored.monitor_only = true;
  monitored.action_text = "WARN rcptguard: flood (monitor)";
  b.verdicts = {monitored, verdict(t0 + 2, "bob@example.test")};
  s.apply(b);

  SQLite::Database db(path_, SQLite::OPEN_READONLY);
  SQLite::Statement st(db, "SELECT level, monitor_only, action_text FROM v_verdicts ORDER BY at");
  ASSERT_TRUE(st.executeStep());
  EXPECT_EQ(st.getColumn(0).getString(), "defer");
  EXPECT_EQ(st.getColumn(1).getInt(), 1);
  EXPECT_EQ(st.getColumn(2).getString(), "WARN rcptguard: flood (monitor)");
  ASSERT_TRUE(st.executeStep());
  EXPECT_EQ(st.getColumn(1).getInt(), 0);
  EXPECT_FALSE(st.executeStep());
}

TEST_F(StoreTest, LoadHistoriesOnAReadOnlyConnectionWhileTheWriterHoldsTheFile) {
  store s(options_for(path_));
  decision::outbox b;
  b.deliveries = {delivery(t0 - 168 * 3600, "bob@example.test", "a@x.test", true),  // too old
                  delivery(t0 - 167 * 3600, "bob@example.test", "b@x.test", true),
                  delivery(t0 + 5, "bob@example.test", "c@x.test", true),
                  delivery(t0 + 6, "bob@example.test", "d@x.test", false),
                  delivery(t0 + 7, "alice@example.test", "c@x.test", true)};
  s.apply(b);

  // Another writer connection holds the write lock with an uncommitted row, as the store
  // thread does in the middle of a batch.
  SQLite::Database writer = open_read_write({.path = path_});
  writer.exec("BEGIN IMMEDIATE");
  writer.exec(
      "INSERT INTO recipient_hourly (recipient, hour_start, accepted, attempted) "
      "VALUES ('uncommitted@example.test', " +
      std::to_string(t0) + ", 1, 1)");

  SQLite::Database reader = open_read_only(path_, std::chrono::milliseconds{0});
  const auto started = std::chrono::steady_clock::now();
  const std::vector<decision::recipient_history> h = load_histories(reader, at(t0 + 30), 1);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds{1});  // no waiting
  ASSERT_EQ(h.size(), 2u);  // the uncommitted row is not seen
  EXPECT_EQ(h[0].recipient, "alice@example.test");
  ASSERT_EQ(h[0].hours.size(), 1u);
  EXPECT_EQ(h[1].recipient, "bob@example.test");
  ASSERT_EQ(h[1].hours.size(), 2u);
  EXPECT_EQ(h[1].hours[0].hour_start, t0 - 167 * 3600);
  EXPECT_EQ(h[1].hours[1].hour_start, t0);
  EXPECT_EQ(h[1].hours[1].accepted, 1u);
  EXPECT_EQ(h[1].hours[1].attempted, 2u);
  EXPECT_EQ(h[1].hours[1].distinct_senders, 2u);

  writer.exec("COMMIT");
  EXPECT_EQ(load_histories(reader, at(t0 + 30), 1).size(), 3u);  // a fresh read sees it
  EXPECT_TRUE(load_histories(reader, at(t0 + 30), 0).empty());

  // The same function feeds the start-up snapshot.
  const decision::restore_snapshot snap = s.load_snapshot(at(t0 + 30));
  ASSERT_EQ(snap.histories.size(), 3u);
  EXPECT_EQ(snap.histories[2].recipient, "uncommitted@example.test");
}

TEST_F(StoreTest, VerdictsAreStoredWithReasonsAndReadableInTheView) {
  store s(options_for(path_));
  decision::outbox b;
  b.verdicts = {verdict(t0 + 42, "bob@example.test")};
  decision::verdict_record warn = verdict(t0 + 43, "bob@example.test");
  warn.level = decision::verdict_level::warn;
  warn.reasons.clear();
  warn.source = decision::event_source::log;
  b.verdicts.push_back(warn);
  // The same story again from another sender: a flagged row, no new explanation.
  decision::verdict_record again = warn;
  again.at = at(t0 + 50);
  again.sender = "other@bad.test";
  again.score = 9.0;
  b.verdicts.push_back(again);
  s.apply(b);

  // Two stories (the level, source and reasons changed), three flagged requests.
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM explanation"), 2);
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM explanation_reason"), 2);
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM flagged"), 3);
  SQLite::Database db(path_, SQLite::OPEN_READONLY);
  SQLite::Statement st(db, R"sql(
    SELECT at_utc, level, score, action_text, reasons, source, sender, requests, explanation_id
      FROM v_verdicts ORDER BY at)sql");
  ASSERT_TRUE(st.executeStep());
  EXPECT_EQ(st.getColumn(0).getString(), "2024-03-04T10:00:42Z");
  EXPECT_EQ(st.getColumn(1).getString(), "defer");
  EXPECT_DOUBLE_EQ(st.getColumn(2).getDouble(), 3.5);
  EXPECT_EQ(st.getColumn(3).getString(), "DEFER_IF_PERMIT 4.2.1 rcptguard: flood");
  EXPECT_EQ(st.getColumn(4).getString(),
            "volume_10m=2.00 (240 msgs/10m, baseline 6); sender_diversity=1.50 (180 senders)");
  EXPECT_EQ(st.getColumn(5).getString(), "policy");
  EXPECT_EQ(st.getColumn(6).getString(), "spam@bad.test");
  EXPECT_EQ(st.getColumn(7).getInt(), 1);
  const std::int64_t first_story = st.getColumn(8).getInt64();
  ASSERT_TRUE(st.executeStep());
  EXPECT_EQ(st.getColumn(1).getString(), "warn");
  EXPECT_TRUE(st.getColumn(4).isNull());
  EXPECT_EQ(st.getColumn(5).getString(), "log");
  const std::int64_t second_story = st.getColumn(8).getInt64();
  EXPECT_NE(second_story, first_story);
  // The third request is explained by the story in force at its time: the second one.
  ASSERT_TRUE(st.executeStep());
  EXPECT_EQ(st.getColumn(1).getString(), "warn");
  EXPECT_EQ(st.getColumn(6).getString(), "other@bad.test");
  EXPECT_EQ(st.getColumn(5).getString(), "log");
  EXPECT_EQ(st.getColumn(8).getInt64(), second_story);
  EXPECT_FALSE(st.executeStep());
}

// Identical flagged requests (same second, recipient, sender, client and answer) are one row
// that counts them; names are interned once whatever table they appear in.
TEST_F(StoreTest, IdenticalFlaggedRequestsAddUpInOneRowAcrossBatches) {
  store s(options_for(path_));
  decision::outbox b;
  b.verdicts = {verdict(t0 + 1, "bob@example.test"), verdict(t0 + 1, "bob@example.test"),
                verdict(t0 + 2, "bob@example.test")};
  s.apply(b);
  decision::outbox later;
  later.verdicts = {verdict(t0 + 1, "bob@example.test")};
  decision::verdict_record monitored = verdict(t0 + 1, "bob@example.test");
  monitored.monitor_only = true;  // another answer: its own row
  later.verdicts.push_back(monitored);
  s.apply(later);

  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM flagged"), 3);
  EXPECT_EQ(query_int(path_, "SELECT sum(requests) FROM flagged"), 5);
  EXPECT_EQ(query_int(path_, "SELECT requests FROM v_verdicts WHERE at = " +
                                 std::to_string(t0 + 1) + " AND monitor_only = 0"),
            3);
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM name"), 1);   // bob
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM party"), 2);  // spam@bad.test, the client
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM flagged_span"), 1);
  EXPECT_EQ(query_int(path_, "SELECT first_at FROM flagged_span"), t0 + 1);
  EXPECT_EQ(s.rows_written(), 6u);  // two flagged keys and one explanation per batch
}

TEST_F(StoreTest, EpisodesUpsertByRecipientAndStartAndClose) {
  store s(options_for(path_));
  decision::outbox opened;
  opened.episodes = {episode("bob@example.test", t0, t0, false, 2.0),
                     episode("carol@example.test", t0 + 5, t0 + 5, false, 1.0)};
  s.apply(opened);
  decision::outbox peak;
  peak.episodes = {episode("bob@example.test", t0, t0 + 600, false, 5.0)};
  s.apply(peak);

  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM episode"), 2);
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM v_alerts WHERE state = 'open'"), 2);
  EXPECT_EQ(s.load_snapshot(at(t0 + 700)).open_episodes.size(), 2u);

  decision::outbox closed;
  closed.episodes = {episode("bob@example.test", t0, t0 + 5400, true, 5.0)};
  s.apply(closed);

  SQLite::Database db(path_, SQLite::OPEN_READONLY);
  SQLite::Statement st(db, R"sql(
    SELECT state, started_utc, ended_at_utc, duration_s, duration, peak_score, peak_level
      FROM v_alerts WHERE recipient = 'bob@example.test')sql");
  ASSERT_TRUE(st.executeStep());
  EXPECT_EQ(st.getColumn(0).getString(), "closed");
  EXPECT_EQ(st.getColumn(1).getString(), "2024-03-04T10:00:00Z");
  EXPECT_EQ(st.getColumn(2).getString(), "2024-03-04T11:30:00Z");
  EXPECT_EQ(st.getColumn(3).getInt(), 5400);
  EXPECT_EQ(st.getColumn(4).getString(), "1h30m");
  EXPECT_DOUBLE_EQ(st.getColumn(5).getDouble(), 5.0);
  EXPECT_EQ(st.getColumn(6).getString(), "defer");
  EXPECT_FALSE(st.executeStep());

  const auto open = s.load_snapshot(at(t0 + 6000)).open_episodes;
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].recipient, "carol@example.test");
}

TEST_F(StoreTest, AlertViewCountsTheEpisodesVerdicts) {
  store s(options_for(path_));
  decision::outbox b;
  b.episodes = {episode("bob@example.test", t0, t0 + 600, true, 4.0)};
  b.verdicts = {verdict(t0 + 10, "bob@example.test"), verdict(t0 + 20, "bob@example.test"),
                verdict(t0 + 900, "bob@example.test"), verdict(t0 + 30, "carol@example.test")};
  s.apply(b);
  EXPECT_EQ(query_int(path_, "SELECT verdicts FROM v_alerts"), 2);
}

TEST_F(StoreTest, RestartContinuityRestoresWindowsHistoriesCorrespondentsAndEpisodes) {
  const std::int64_t now = t0 + 2 * 3600 + 125;
  {
    store s(options_for(path_));
    decision::outbox b;
    b.deliveries = {delivery(t0 - 30 * 3600, "bob@example.test", "old@x.test", true),
                    delivery(t0 + 10, "bob@example.test", "alice@example.test", true),
                    delivery(t0 + 70, "bob@example.test", "eve@x.test", false),
                    delivery(now - 5, "bob@example.test", "alice@example.test", true),
                    delivery(now - 65, "carol@example.test", "dave@example.test", true)};
    b.episodes = {episode("bob@example.test", t0, t0 + 60, false, 3.0)};
    s.apply(b);
  }
  store s(options_for(path_));
  const decision::restore_snapshot snap = s.load_snapshot(at(now));

  // Minute rows of the last 24 h only, ascending by time.
  ASSERT_EQ(snap.recent_minutes.size(), 4u);
  EXPECT_EQ(snap.recent_minutes[0].recipient, "bob@example.test");
  EXPECT_EQ(snap.recent_minutes[0].minute_start, t0);
  EXPECT_EQ(snap.recent_minutes[0].accepted, 1u);
  EXPECT_EQ(snap.recent_minutes[1].minute_start, t0 + 60);
  EXPECT_EQ(snap.recent_minutes[1].accepted, 0u);
  EXPECT_EQ(snap.recent_minutes[1].attempted, 1u);
  EXPECT_EQ(snap.recent_minutes[2].recipient, "carol@example.test");
  EXPECT_EQ(snap.recent_minutes[3].recipient, "bob@example.test");

  // Hourly history per recipient, ascending; the 30-hour-old hour is within 8 weeks.
  ASSERT_EQ(snap.histories.size(), 2u);
  EXPECT_EQ(snap.histories[0].recipient, "bob@example.test");
  ASSERT_EQ(snap.histories[0].hours.size(), 3u);
  EXPECT_EQ(snap.histories[0].hours[0].hour_start, t0 - 30 * 3600);
  EXPECT_EQ(snap.histories[0].hours[1].hour_start, t0);
  EXPECT_EQ(snap.histories[0].hours[1].accepted, 1u);
  EXPECT_EQ(snap.histories[0].hours[1].attempted, 2u);
  EXPECT_EQ(snap.histories[0].hours[1].distinct_senders, 2u);
  EXPECT_EQ(snap.histories[0].hours[2].hour_start, t0 + 2 * 3600);
  EXPECT_EQ(snap.histories[1].recipient, "carol@example.test");

  // Correspondents, most recently seen first.
  ASSERT_EQ(snap.correspondents.size(), 3u);
  EXPECT_EQ(snap.correspondents[0].sender, "alice@example.test");
  EXPECT_EQ(snap.correspondents[0].first_seen, t0 + 10);
  EXPECT_EQ(snap.correspondents[0].last_seen, now - 5);
  EXPECT_EQ(snap.correspondents[0].messages, 2u);
  EXPECT_EQ(snap.correspondents[1].sender, "dave@example.test");
  EXPECT_EQ(snap.correspondents[2].sender, "old@x.test");

  ASSERT_EQ(snap.open_episodes.size(), 1u);
  const decision::episode_record& e = snap.open_episodes[0];
  EXPECT_EQ(e.recipient, "bob@example.test");
  EXPECT_EQ(e.started, at(t0));
  EXPECT_EQ(e.updated, at(t0 + 60));
  EXPECT_EQ(e.peak_level, decision::verdict_level::defer);
  EXPECT_DOUBLE_EQ(e.peak_score, 3.0);
  EXPECT_EQ(e.peak_window, "10m");
  EXPECT_DOUBLE_EQ(e.peak_observed, 240);
  EXPECT_DOUBLE_EQ(e.peak_baseline, 6);
  EXPECT_EQ(e.summary, "rcptguard: bob@example.test 240 msgs/10m, baseline 6");
  EXPECT_EQ(e.source, decision::event_source::policy);
}

TEST_F(StoreTest, SnapshotHonoursHistoryWeeksAndCorrespondentLimit) {
  store_options o = options_for(path_);
  o.history_weeks = 1;
  o.correspondent_limit = 1;
  store s(o);
  const std::int64_t now = t0 + 30;
  decision::outbox b;
  b.deliveries = {delivery(t0 - 168 * 3600, "bob@example.test", "a@x.test", true),  // 1 week + 1 h
                  delivery(t0 - 167 * 3600, "bob@example.test", "b@x.test", true),  // in
                  delivery(t0, "bob@example.test", "c@x.test", true)};
  s.apply(b);
  const decision::restore_snapshot snap = s.load_snapshot(at(now));
  ASSERT_EQ(snap.histories.size(), 1u);
  ASSERT_EQ(snap.histories[0].hours.size(), 2u);  // 168 hours including the current one
  EXPECT_EQ(snap.histories[0].hours[0].hour_start, t0 - 167 * 3600);
  ASSERT_EQ(snap.correspondents.size(), 1u);
  EXPECT_EQ(snap.correspondents[0].sender, "c@x.test");
}

TEST_F(StoreTest, PruneRemovesOldRowsAndKeepsNewOnes) {
  store s(options_for(path_));
  const std::int64_t now = t0 + 40 * 86400;
  const std::int64_t old = now - 31 * 86400;
  decision::outbox b;
  b.deliveries = {delivery(old, "bob@example.test", "old@x.test", true),
                  delivery(now - 26 * 3600, "bob@example.test", "mid@x.test", true),
                  delivery(now - 60, "bob@example.test", "new@x.test", true)};
  b.verdicts = {verdict(old, "bob@example.test"), verdict(old, "carol@example.test")};
  b.episodes = {episode("bob@example.test", old, old + 60, true, 2.0),
                episode("carol@example.test", old, old + 60, false, 2.0),  // orphaned open
                episode("dave@example.test", old, now - 120, true, 2.0)};
  s.apply(b);
  // Bob's episode ended, so his next verdict opens a new story: a second explanation.
  decision::outbox recent;
  recent.verdicts = {verdict(now - 60, "bob@example.test")};
  s.apply(recent);
  ASSERT_EQ(query_int(path_, "SELECT count(*) FROM explanation"), 3);
  ASSERT_EQ(query_int(path_, "SELECT count(*) FROM flagged"), 3);

  const prune_result r = s.prune(at(now), std::chrono::days{30});
  EXPECT_TRUE(r.complete);
  EXPECT_GT(r.rows_deleted, 0u);

  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM recipient_hourly"), 2);
  EXPECT_EQ(query_int(path_, "SELECT min(hour_start) FROM recipient_hourly"),
            (now - 26 * 3600) / 3600 * 3600);
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM recipient_minute"), 1);  // 25 h horizon
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM recipient_hour_sender"), 1);
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM explanation"), 1);
  EXPECT_EQ(query_int(path_, "SELECT at FROM explanation"), now - 60);
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM explanation_reason"), 2);  // cascaded
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM flagged"), 1);
  EXPECT_EQ(query_int(path_, "SELECT at FROM flagged"), now - 60);
  // Carol has no flagged row left, so her span is gone; bob's starts at his kept row.
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM flagged_span"), 1);
  EXPECT_EQ(query_int(path_, "SELECT first_at FROM flagged_span"), now - 60);
  EXPECT_EQ(query_text(path_, "SELECT action_text FROM v_verdicts"),
            "DEFER_IF_PERMIT 4.2.1 rcptguard: flood");
  EXPECT_EQ(query_text(path_, "SELECT recipient FROM episode"), "dave@example.test");
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM episode"), 1);
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM correspondent"), 2);

  const prune_result again = s.prune(at(now), std::chrono::days{30});
  EXPECT_TRUE(again.complete);
  EXPECT_EQ(again.rows_deleted, 0u);
}

TEST_F(StoreTest, PruneWorkIsBoundedPerCall) {
  store_options o = options_for(path_);
  o.prune_chunk_rows = 2;
  o.prune_max_chunks = 3;
  store s(o);
  const std::int64_t now = t0 + 100 * 86400;
  decision::outbox b;
  for (int i = 0; i < 10; ++i) {
    b.verdicts.push_back(verdict(t0 + i, "bob@example.test"));
  }
  s.apply(b);
  // One story, ten flagged requests (one row each: their seconds differ).
  ASSERT_EQ(query_int(path_, "SELECT count(*) FROM explanation"), 1);
  ASSERT_EQ(query_int(path_, "SELECT count(*) FROM flagged"), 10);

  // 6 rows per call: the explanation and 5 flagged rows, then the other 5.
  const prune_result first = s.prune(at(now), std::chrono::days{30});
  EXPECT_FALSE(first.complete);
  EXPECT_EQ(first.rows_deleted, 6u);
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM flagged"), 5);
  const prune_result second = s.prune(at(now), std::chrono::days{30});
  EXPECT_TRUE(second.complete);
  EXPECT_EQ(second.rows_deleted, 5u);
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM explanation"), 0);
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM explanation_reason"), 0);
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM flagged"), 0);
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM flagged_span"), 0);
  EXPECT_EQ(s.prune(at(now), std::chrono::days{30}).rows_deleted, 0u);
}

// Old flagged rows are found through flagged_span, a bounded number of recipients per call; a
// recipient whose newer rows stay keeps a span starting at them.
TEST_F(StoreTest, PruneOfFlaggedRowsVisitsABoundedNumberOfRecipientsPerCall) {
  store_options o = options_for(path_);
  o.prune_chunk_rows = 100;
  o.prune_max_chunks = 2;
  store s(o);
  const std::int64_t now = t0 + 100 * 86400;
  decision::outbox b;
  for (int r = 0; r < 5; ++r) {
    const std::string rcpt = "r" + std::to_string(r) + "@example.test";
    b.verdicts.push_back(verdict(t0 + r, rcpt));
    b.verdicts.push_back(verdict(t0 + 10 + r, rcpt));
  }
  b.verdicts.push_back(verdict(now - 5, "r4@example.test"));  // recent: kept
  s.apply(b);
  ASSERT_EQ(query_int(path_, "SELECT count(*) FROM flagged"), 11);
  ASSERT_EQ(query_int(path_, "SELECT count(*) FROM flagged_span"), 5);

  std::uint64_t deleted = 0;
  int calls = 0;
  for (bool complete = false; !complete; ++calls) {
    ASSERT_LT(calls, 10);
    const prune_result r = s.prune(at(now), std::chrono::days{30});
    deleted += r.rows_deleted;
    complete = r.complete;
  }
  EXPECT_GE(calls, 3);           // 2 recipients per call, 5 due
  EXPECT_EQ(deleted, 10u + 5u);  // old flagged rows and explanations; the recent one is new
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM flagged"), 1);
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM flagged_span"), 1);
  EXPECT_EQ(query_int(path_, "SELECT first_at FROM flagged_span"), now - 5);
  EXPECT_EQ(query_int(path_,
                      "SELECT f.recipient = n.id FROM flagged_span f, name n "
                      "WHERE n.text = 'r4@example.test'"),
            1);
}

// Every row of the four delivery tables, in key order, as one comparable text.
std::string delivery_rows(const std::string& path) {
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  std::string out;
  for (const char* sql :
       {"SELECT recipient, hour_start, accepted, attempted, distinct_senders, bytes "
        "FROM recipient_hourly ORDER BY recipient, hour_start",
        "SELECT recipient, minute_start, accepted, attempted FROM recipient_minute "
        "ORDER BY recipient, minute_start",
        "SELECT recipient, hour_start, sender FROM recipient_hour_sender "
        "ORDER BY recipient, hour_start, sender",
        "SELECT recipient, sender, first_seen, last_seen, messages FROM correspondent "
        "ORDER BY recipient, sender"}) {
    SQLite::Statement st(db, sql);
    while (st.executeStep()) {
      for (int c = 0; c < st.getColumnCount(); ++c) out += st.getColumn(c).getString() + "|";
      out += "\n";
    }
    out += "--\n";
  }
  return out;
}

// A batch is aggregated in memory before it reaches SQLite (one upsert per recipient-hour,
// recipient-minute and pair; distinct-sender keys deduplicated; keys of earlier batches
// remembered): the rows must be exactly those of applying the records one at a time.
TEST_F(StoreTest, AggregatedBatchesStoreTheSameRowsAsOneRecordAtATime) {
  std::vector<decision::delivery_record> all;
  const auto add = [&](std::int64_t when, const char* rcpt, const char* sender, bool accepted,
                       std::uint64_t size, bool authenticated = false) {
    all.push_back(delivery(when, rcpt, sender, accepted, size));
    all.back().authenticated = authenticated;
  };
  // Out of time order, repeated recipient-hours, recipient-minutes and pairs, two hours,
  // bounces, attempts only, authenticated mail (reverse pairs), mail to oneself.
  add(t0 + 30, "bob@example.test", "alice@x.test", true, 1000);
  add(t0 + 10, "bob@example.test", "alice@x.test", true, 2000);
  add(t0 + 59, "bob@example.test", "carol@x.test", false, 0);
  add(t0 + 61, "bob@example.test", "alice@x.test", true, 500);
  add(t0 + 3599, "bob@example.test", "", true, 300);
  add(t0 + 3600, "bob@example.test", "alice@x.test", true, 700);
  add(t0 + 3601, "bob@example.test", "carol@x.test", true, 900);
  add(t0 + 5, "ann@example.test", "bob@example.test", true, 100, true);
  add(t0 + 6, "bob@example.test", "ann@example.test", true, 100);
  add(t0 + 7, "ann@example.test", "bob@example.test", true, 100, true);
  add(t0 + 8, "ann@example.test", "ann@example.test", true, 100, true);
  add(t0 + 9, "ann@example.test", "", false, 0);
  add(t0 + 4000, "ann@example.test", "bob@example.test", false, 0, true);
  add(t0 + 4001, "zed@example.test", "alice@x.test", true, 42);
  add(t0 + 20, "bob@example.test", "alice@x.test", true, 1000);

  for (const std::size_t cache : {std::size_t{200'000}, std::size_t{3}, std::size_t{0}}) {
    SCOPED_TRACE("sender_key_cache " + std::to_string(cache));
    temp_dir dir;
    const std::string one_by_one = dir.file("one.db");
    const std::string whole = dir.file("whole.db");
    const std::string split = dir.file("split.db");
    {
      store_options o = options_for(one_by_one);
      o.sender_key_cache = 0;
      store s(o);
      for (const decision::delivery_record& d : all) {
        decision::outbox b;
        b.deliveries = {d};
        s.apply(b);
      }
    }
    {
      store_options o = options_for(whole);
      o.sender_key_cache = cache;
      store s(o);
      decision::outbox b;
      b.deliveries = all;
      s.apply(b);
    }
    {
      // Three batches, so later ones repeat keys committed by earlier ones.
      store_options o = options_for(split);
      o.sender_key_cache = cache;
      store s(o);
      for (std::size_t from = 0; from < all.size(); from += 5) {
        decision::outbox b;
        b.deliveries.assign(
            all.begin() + static_cast<std::ptrdiff_t>(from),
            all.begin() + static_cast<std::ptrdiff_t>(std::min(all.size(), from + 5)));
        s.apply(b);
      }
    }
    const std::string expected = delivery_rows(one_by_one);
    EXPECT_EQ(delivery_rows(whole), expected);
    EXPECT_EQ(delivery_rows(split), expected);
  }
  // Spot-check the reference itself: bob's first hour.
  const std::string where =
      " FROM recipient_hourly WHERE recipient = 'bob@example.test' AND "
      "hour_start = " +
      std::to_string(t0);
  temp_dir dir;
  const std::string path = dir.file("check.db");
  {
    store s(options_for(path));
    decision::outbox b;
    b.deliveries = all;
    s.apply(b);
  }
  EXPECT_EQ(query_int(path, "SELECT accepted" + where), 6);
  EXPECT_EQ(query_int(path, "SELECT attempted" + where), 7);
  EXPECT_EQ(query_int(path, "SELECT distinct_senders" + where), 4);  // alice, carol, '', ann
  EXPECT_EQ(query_int(path, "SELECT bytes" + where), 4900);
}

// A rolled-back batch must not leave its sender keys remembered: applied again, its senders
// are counted.
TEST_F(StoreTest, SendersOfAFailedBatchAreCountedWhenItIsAppliedAgain) {
  store s(options_for(path_));
  decision::outbox b;
  b.deliveries = {delivery(t0 + 1, "bob@example.test", "a@x.test", true),
                  delivery(t0 + 2, "bob@example.test", "b@x.test", true)};
  // The batch fails after its sender keys, names and flagged rows were inserted: a trigger
  // aborts the explanation insert, the last write of the batch.
  {
    SQLite::Database db(path_, SQLite::OPEN_READWRITE);
    db.exec(
        "CREATE TABLE fail_once (n INTEGER); INSERT INTO fail_once VALUES (1);"
        "CREATE TRIGGER fail_explanation BEFORE INSERT ON explanation "
        "WHEN (SELECT n FROM fail_once) = 1 BEGIN SELECT RAISE(ABORT, 'injected'); END;");
  }
  b.verdicts = {verdict(t0 + 3, "bob@example.test")};
  EXPECT_THROW(s.apply(b), SQLite::Exception);
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM recipient_hour_sender"), 0);
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM name"), 0);
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM flagged"), 0);
  {
    SQLite::Database db(path_, SQLite::OPEN_READWRITE);
    db.exec("UPDATE fail_once SET n = 0");
  }
  s.apply(b);
  EXPECT_EQ(query_int(path_, "SELECT distinct_senders FROM recipient_hourly"), 2);
  // Applied again, the batch is whole: its verdict's story too, with names whose ids resolve.
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM explanation"), 1);
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM explanation_reason"), 2);
  EXPECT_EQ(query_text(path_, "SELECT recipient || ' ' || sender || ' ' || client FROM v_verdicts"),
            "bob@example.test spam@bad.test 198.51.100.7");
  decision::outbox again;
  again.deliveries = {delivery(t0 + 10, "bob@example.test", "a@x.test", true)};
  again.verdicts = {verdict(t0 + 11, "bob@example.test")};
  s.apply(again);
  EXPECT_EQ(query_int(path_, "SELECT distinct_senders FROM recipient_hourly"), 2);
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM recipient_hour_sender"), 2);
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM name"), 1);
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM party"), 2);
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM explanation"), 1);  // the same story
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM v_verdicts"), 2);
}

TEST_F(StoreTest, FailedBatchLeavesNothingAndCanBeAppliedAgain) {
  store_options o = options_for(path_);
  o.database.busy_timeout = std::chrono::milliseconds{20};
  store s(o);
  decision::outbox b;
  b.deliveries = {delivery(t0, "bob@example.test", "a@x.test", true)};
  // Not at the episode's peak time, so only the store's memory of stories decides whether
  // the verdict's explanation is stored.
  b.verdicts = {verdict(t0 + 1, "bob@example.test")};
  b.episodes = {episode("bob@example.test", t0, t0 + 5, false, 3.5)};
  {
    // A second writer holding the lock: the failure a root-run test can still provoke.
    SQLite::Database locker(path_, SQLite::OPEN_READWRITE);
    locker.exec("BEGIN EXCLUSIVE");
    EXPECT_THROW(s.apply(b), SQLite::Exception);
    locker.exec("ROLLBACK");
  }
  for (const char* table :
       {"recipient_hourly", "recipient_minute", "recipient_hour_sender", "correspondent", "name",
        "party", "flagged", "flagged_span", "explanation", "explanation_reason", "episode"}) {
    EXPECT_EQ(query_int(path_, std::string{"SELECT count(*) FROM "} + table), 0) << table;
  }
  EXPECT_EQ(s.rows_written(), 0u);
  s.apply(b);
  EXPECT_EQ(query_int(path_, "SELECT accepted FROM recipient_hourly"), 1);
  EXPECT_EQ(query_int(path_, "SELECT distinct_senders FROM recipient_hourly"), 1);
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM flagged"), 1);
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM explanation"), 1);
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM explanation_reason"), 2);
  EXPECT_EQ(query_int(path_, "SELECT verdicts FROM v_alerts"), 1);
}

TEST_F(StoreTest, AnalystViewsReadWell) {
  store s(options_for(path_));
  decision::outbox b;
  for (int i = 0; i < 5; ++i) {
    b.deliveries.push_back(delivery(t0 + i, "busy@example.test", "s" + std::to_string(i), true));
  }
  b.deliveries.push_back(delivery(t0 + 7200, "quiet@example.test", "x@x.test", true));
  b.deliveries.push_back(delivery(t0 - 86400, "stale@example.test", "x@x.test", true));
  s.apply(b);

  SQLite::Database db(path_, SQLite::OPEN_READONLY);
  SQLite::Statement top(db,
                        "SELECT recipient, accepted, peak_hourly_senders FROM "
                        "v_top_recipients_24h");
  ASSERT_TRUE(top.executeStep());
  EXPECT_EQ(top.getColumn(0).getString(), "busy@example.test");
  EXPECT_EQ(top.getColumn(1).getInt(), 5);
  EXPECT_EQ(top.getColumn(2).getInt(), 5);
  ASSERT_TRUE(top.executeStep());
  EXPECT_EQ(top.getColumn(0).getString(), "quiet@example.test");
  EXPECT_FALSE(top.executeStep());  // stale is more than 24 h before the newest hour

  SQLite::Statement hourly(db, R"sql(
    SELECT hour_utc, weekday, hour_of_day, accepted FROM v_recipient_hourly
     WHERE recipient = 'busy@example.test')sql");
  ASSERT_TRUE(hourly.executeStep());
  EXPECT_EQ(hourly.getColumn(0).getString(), "2024-03-04T10:00:00Z");
  EXPECT_EQ(hourly.getColumn(1).getInt(), 1);  // Monday
  EXPECT_EQ(hourly.getColumn(2).getInt(), 10);
  EXPECT_EQ(hourly.getColumn(3).getInt(), 5);
}

}  // namespace
}  // namespace rcptguard::store
