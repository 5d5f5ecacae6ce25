// The read-only review queries over a database the store wrote.
#include "store/review.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "store/delta.hpp"
#include "store/schema.hpp"
#include "store/store.hpp"
#include "store_test_util.hpp"

namespace rcptguard::store {
namespace {

using namespace testing;  // NOLINT(google-build-using-namespace): the test helpers

class ReviewTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store s(options_for(path_));
    decision::outbox b;
    for (int i = 0; i < 6; ++i) {
      b.deliveries.push_back(
          delivery(t0 + i * 60, "bob@example.test", "s" + std::to_string(i) + "@x.test", true));
    }
    b.deliveries.push_back(delivery(t0 + 3600, "bob@example.test", "alice@example.test", true));
    b.deliveries.push_back(delivery(t0 - 86400, "bob@example.test", "old@x.test", true));
    b.deliveries.push_back(delivery(t0 + 10, "carol@example.test", "alice@example.test", true));
    b.deliveries.push_back(delivery(t0 + 20, "carol@example.test", "x@x.test", false));
    b.verdicts = {verdict(t0 + 300, "bob@example.test"), verdict(t0 + 200, "bob@example.test"),
                  verdict(t0 - 86400, "bob@example.test")};
    b.verdicts[0].monitor_only = true;
    b.episodes = {episode("bob@example.test", t0 + 200, t0 + 1800, true, 4.5),
                  episode("bob@example.test", t0 - 86400, t0 - 86000, true, 1.5),
                  episode("carol@example.test", t0 + 100, t0 + 100, false, 1.0)};
    s.apply(b);
  }

  temp_dir dir_;
  std::string path_ = dir_.file("rcptguard.db");
};

TEST_F(ReviewTest, ListAlertsSinceNewestFirst) {
  SQLite::Database db = open_read_only(path_);
  const std::vector<alert_row> alerts = list_alerts(db, at(t0), 10);
  ASSERT_EQ(alerts.size(), 2u);
  EXPECT_EQ(alerts[0].recipient, "bob@example.test");
  EXPECT_EQ(alerts[0].started, t0 + 200);
  ASSERT_TRUE(alerts[0].ended_at.has_value());
  EXPECT_EQ(*alerts[0].ended_at, t0 + 1800);
  EXPECT_EQ(alerts[0].peak_level, "defer");
  EXPECT_DOUBLE_EQ(alerts[0].peak_score, 4.5);
  EXPECT_EQ(alerts[0].verdicts, 2);
  EXPECT_EQ(alerts[1].recipient, "carol@example.test");
  EXPECT_FALSE(alerts[1].ended_at.has_value());

  EXPECT_EQ(list_alerts(db, at(t0), 1).size(), 1u);
  EXPECT_EQ(list_alerts(db, at(t0 - 2 * 86400), 10).size(), 3u);
}

TEST_F(ReviewTest, RecipientDetailTellsTheWholeStory) {
  SQLite::Database db = open_read_only(path_);
  const recipient_report r = recipient_detail(db, "bob@example.test", at(t0 + 30));
  EXPECT_EQ(r.recipient, "bob@example.test");
  ASSERT_EQ(r.hours.size(), 2u);  // the hour containing `since` is included
  EXPECT_EQ(r.hours[0].hour_start, t0);
  EXPECT_EQ(r.hours[0].accepted, 6);
  EXPECT_EQ(r.hours[0].distinct_senders, 6);
  EXPECT_EQ(r.hours[1].hour_start, t0 + 3600);

  ASSERT_EQ(r.verdicts.size(), 2u);
  EXPECT_EQ(r.verdicts[0].at, t0 + 300);  // newest first
  EXPECT_EQ(r.verdicts[0].level, "defer");
  EXPECT_TRUE(r.verdicts[0].monitor_only);
  EXPECT_FALSE(r.verdicts[1].monitor_only);
  ASSERT_EQ(r.verdicts[0].reasons.size(), 2u);
  EXPECT_EQ(r.verdicts[0].reasons[0].name, "volume_10m");
  EXPECT_EQ(r.verdicts[0].reasons[1].detail, "180 senders");

  ASSERT_EQ(r.episodes.size(), 1u);
  EXPECT_EQ(r.episodes[0].started, t0 + 200);
  EXPECT_EQ(r.correspondents, 8);

  EXPECT_EQ(recipient_detail(db, "bob@example.test", at(t0), 1).verdicts.size(), 1u);
  const recipient_report nobody = recipient_detail(db, "nobody@example.test", at(0));
  EXPECT_TRUE(nobody.hours.empty());
  EXPECT_TRUE(nobody.verdicts.empty());
}

TEST_F(ReviewTest, TopRecipientsByAcceptedMessages) {
  SQLite::Database db = open_read_only(path_);
  const std::vector<top_recipient_row> top = top_recipients(db, at(t0), 10);
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0].recipient, "bob@example.test");
  EXPECT_EQ(top[0].accepted, 7);
  EXPECT_EQ(top[0].active_hours, 2);
  EXPECT_EQ(top[0].peak_hourly_senders, 6);
  EXPECT_EQ(top[0].verdicts, 2);
  EXPECT_EQ(top[1].recipient, "carol@example.test");
  EXPECT_EQ(top[1].accepted, 1);
  EXPECT_EQ(top[1].attempted, 2);
  EXPECT_EQ(top_recipients(db, at(t0), 1).size(), 1u);
}

TEST_F(ReviewTest, AlertsInAWindowWithTheirTotal) {
  SQLite::Database db = open_read_only(path_);
  // Episodes overlapping [from, until): bob's old one ended at t0 - 86000.
  const page<alert_row> all = list_alerts(db, {t0 - 2 * 86400, t0 + 3600}, 0);
  ASSERT_EQ(all.rows.size(), 3u);
  EXPECT_EQ(all.total, 3);
  EXPECT_FALSE(all.truncated());
  EXPECT_EQ(all.rows[2].started, t0 - 86400);
  // One that starts where the window ends is outside it, one last updated before it starts
  // too, unless it is still open.
  const page<alert_row> old = list_alerts(db, {t0 - 86000, t0 + 100}, 0);
  ASSERT_EQ(old.rows.size(), 1u);
  EXPECT_EQ(old.rows[0].started, t0 - 86400);
  const page<alert_row> open = list_alerts(db, {t0 - 85999, t0 + 101}, 0);
  ASSERT_EQ(open.rows.size(), 1u);
  EXPECT_EQ(open.rows[0].recipient, "carol@example.test");
  const page<alert_row> cut = list_alerts(db, {t0 - 2 * 86400, t0 + 3600}, 1);
  ASSERT_EQ(cut.rows.size(), 1u);
  EXPECT_EQ(cut.total, 3);
  EXPECT_TRUE(cut.truncated());
  const page<alert_row> later = list_alerts(db, {t0 + 2000, t0 + 3600}, 0);
  ASSERT_EQ(later.rows.size(), 1u);  // carol's, last updated at t0 + 100 but still open
  EXPECT_EQ(later.rows[0].recipient, "carol@example.test");
}

TEST_F(ReviewTest, TopRecipientsInAWindow) {
  SQLite::Database db = open_read_only(path_);
  // The hour containing `until - 1` counts, the one starting at `until` does not; verdicts are
  // those of the window itself.
  const page<top_recipient_row> first_hour = top_recipients(db, {t0 + 30, t0 + 3600}, 0);
  ASSERT_EQ(first_hour.rows.size(), 2u);
  EXPECT_EQ(first_hour.total, 2);
  EXPECT_EQ(first_hour.rows[0].recipient, "bob@example.test");
  EXPECT_EQ(first_hour.rows[0].accepted, 6);
  EXPECT_EQ(first_hour.rows[0].observed, 6);
  EXPECT_EQ(first_hour.rows[0].verdicts, 2);
  EXPECT_EQ(first_hour.rows[1].observed, 2);  // carol: one accepted, two attempted
  const page<top_recipient_row> two_hours = top_recipients(db, {t0, t0 + 3601}, 1);
  ASSERT_EQ(two_hours.rows.size(), 1u);
  EXPECT_EQ(two_hours.total, 2);
  EXPECT_EQ(two_hours.rows[0].accepted, 7);
  EXPECT_EQ(top_recipients(db, {t0 + 250, t0 + 3601}, 0).rows[0].verdicts, 1);
}

TEST_F(ReviewTest, HourlyRowsAndPriorSamples) {
  SQLite::Database db = open_read_only(path_);
  hourly_reader reader(db);
  const std::vector<hourly_row> bob = reader.read("bob@example.test", t0 - 86400, t0 + 7200);
  ASSERT_EQ(bob.size(), 3u);
  EXPECT_EQ(bob[0].hour_start, t0 - 86400);
  EXPECT_EQ(bob[1].accepted, 6);
  EXPECT_EQ(bob[1].distinct_senders, 6);
  EXPECT_EQ(bob[1].bytes, 6000);
  EXPECT_FALSE(bob[1].in_episode);
  EXPECT_EQ(reader.read("bob@example.test", t0, t0 + 3600).size(), 1u);  // [from, until)
  EXPECT_TRUE(reader.read("nobody@example.test", 0, t0 + 7200).empty());

  std::vector<prior_sample> samples = prior_samples(db, t0 - 86400, t0 + 7200);
  std::sort(samples.begin(), samples.end(),
            [](const prior_sample& a, const prior_sample& b) { return a.volume > b.volume; });
  ASSERT_EQ(samples.size(), 2u);
  EXPECT_EQ(samples[0].first_hour, t0 - 86400);  // bob
  EXPECT_EQ(samples[0].volume, 8);
  EXPECT_EQ(samples[0].senders, 8);
  EXPECT_EQ(samples[1].first_hour, t0);  // carol: attempted counts
  EXPECT_EQ(samples[1].volume, 2);
}

TEST_F(ReviewTest, ReviewConnectionCannotWrite) {
  SQLite::Database db = open_read_only(path_);
  EXPECT_THROW(db.exec("DELETE FROM flagged"), SQLite::Exception);
  EXPECT_THROW(db.exec("DELETE FROM explanation"), SQLite::Exception);
  EXPECT_THROW(db.exec("INSERT INTO name (text) VALUES ('x')"), SQLite::Exception);
  EXPECT_EQ(query_int(path_, "SELECT sum(requests) FROM flagged"), 3);
  EXPECT_GT(query_int(path_, "SELECT count(*) FROM explanation"), 0);
}

// Review reads only the current schema (`rcptguard review` refuses an older file with a
// message); the daemon's read-write open migrates it, and then review reads its verdicts.
TEST(ReviewOldFile, RecipientDetailReadsAVersionOneFile) {
  temp_dir dir;
  const std::string path = dir.file("v1.db");
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    migrate_to(db, 1);
    db.exec(
        "INSERT INTO verdict (id, at, recipient, sender, client, level, score, action_text, "
        "source) VALUES (3, 1709546400, 'bob@example.test', 's@x.test', '192.0.2.1', 'defer', "
        "3.5, 'DEFER_IF_PERMIT flood', 'policy');"
        "INSERT INTO verdict_reason (verdict_id, ordinal, name, weight, observed, baseline, "
        "detail) VALUES (3, 0, 'volume_10m', 2.0, 240, 6, '240 msgs/10m')");
  }
  {
    SQLite::Database old = open_read_only(path);
    EXPECT_EQ(user_version(old), 1);  // what `rcptguard review` checks before it refuses
    EXPECT_THROW(recipient_detail(old, "bob@example.test", at(0)), SQLite::Exception);
  }
  { SQLite::Database migrated = open_read_write({.path = path}); }

  SQLite::Database db = open_read_only(path);
  const recipient_report r = recipient_detail(db, "bob@example.test", at(0));
  ASSERT_EQ(r.verdicts.size(), 1u);
  const verdict_row& v = r.verdicts[0];
  EXPECT_EQ(v.id, 3);
  EXPECT_EQ(v.at, 1709546400);
  EXPECT_EQ(v.sender, "s@x.test");
  EXPECT_EQ(v.client, "192.0.2.1");
  EXPECT_EQ(v.level, "defer");
  EXPECT_FALSE(v.monitor_only);
  EXPECT_DOUBLE_EQ(v.score, 3.5);
  EXPECT_EQ(v.action_text, "DEFER_IF_PERMIT flood");
  EXPECT_EQ(v.source, "policy");
  EXPECT_EQ(v.requests, 1);
  ASSERT_EQ(v.reasons.size(), 1u);
  EXPECT_EQ(v.reasons[0].name, "volume_10m");
  EXPECT_EQ(v.reasons[0].detail, "240 msgs/10m");
}

// A recorded episode, as the engine reports it: bob is flooded by 50 requests from distinct
// senders, one every 5 s from 13:59:00; the story evolves (warn on volume, then a second reason,
// then defer, then a third reason) while the score climbs, with an episode record at the open
// and each new peak, and a close 10 minutes after the last request. Around it, DUNNO mail.
class RecordedEpisode : public ::testing::Test {
 protected:
  static constexpr std::int64_t start = t0 + 4 * 3600 - 60;  // 13:59:00
  static constexpr int requests = 50;
  static constexpr std::int64_t closed = start + 5 * (requests - 1) + 600;

  static std::int64_t when(int k) { return start + 5 * k; }
  static std::string sender(int k) {
    // One of them is the real message hidden in the flood.
    return k == 37 ? "newcontact@partner.test" : "bot" + std::to_string(k) + "@flood.test";
  }
  static std::string client(int k) { return "203.0.113." + std::to_string(k % 8); }
  static bool defer(int k) { return k >= 20; }
  static double score(int k) { return 1.0 + 0.1 * k; }
  static std::vector<decision::reason> reasons(int k) {
    std::vector<decision::reason> r = {
        {"volume_10m", 1.0, 40.0 + k, 6, "msgs/10m " + std::to_string(40 + k)}};
    if (k >= 10) r.push_back({"sender_diversity", 0.5, 30.0 + k, 3, "senders"});
    if (k >= 35) r.push_back({"new_senders", 0.5, 20.0 + k, 1, "new senders"});
    return r;
  }
  static std::string action(int k) {
    return (defer(k) ? "DEFER_IF_PERMIT 4.7.1 rcptguard: " : "rcptguard: ") +
           std::to_string(40 + k) + " msgs/10m";
  }
  // The engine's new peaks (the first is the open).
  static bool peak(int k) { return std::set<int>{0, 3, 7, 12, 18, 25, 34, 45}.contains(k); }
  // Where the story is stored: the open, each new peak, the second reason (10), the
  // escalation (20) and the third reason (35).
  static std::vector<int> stored() { return {0, 3, 7, 10, 12, 18, 20, 25, 34, 35, 45}; }
  static int in_force(int k) {
    int latest = 0;
    for (const int e : stored()) {
      if (e <= k) latest = e;
    }
    return latest;
  }

  /// The engine's records, one outbox per request (plus one for the DUNNO mail before and
  /// the close after).
  static std::vector<decision::outbox> recorded() {
    std::vector<decision::outbox> out;
    decision::outbox before;
    for (int i = 0; i < 6; ++i) {
      before.deliveries.push_back(
          delivery(start - 3000 + i * 60, "bob@example.test", "alice@example.test", true, 2000));
      before.deliveries.push_back(
          delivery(start - 2900 + i * 60, "carol@example.test", "dave@example.test", true, 500));
    }
    out.push_back(before);
    for (int k = 0; k < requests; ++k) {
      decision::outbox b;
      decision::delivery_record d = delivery(when(k), "bob@example.test", sender(k), !defer(k));
      d.client = client(k);
      b.deliveries.push_back(d);
      if (k % 5 == 0) {  // DUNNO mail of the same seconds, for bob and carol
        b.deliveries.push_back(
            delivery(when(k), "bob@example.test", "alice@example.test", true, 3000));
        b.deliveries.push_back(
            delivery(when(k), "carol@example.test", "dave@example.test", true, 700));
      }
      decision::verdict_record v;
      v.at = at(when(k));
      v.recipient = "bob@example.test";
      v.sender = sender(k);
      v.client = client(k);
      v.level = defer(k) ? decision::verdict_level::defer : decision::verdict_level::warn;
      v.score = score(k);
      v.action_text = action(k);
      v.reasons = reasons(k);
      b.verdicts.push_back(v);
      if (peak(k)) {
        decision::episode_record e = episode("bob@example.test", start, when(k), false, score(k));
        e.peak_level = v.level;
        b.episodes.push_back(e);
      }
      out.push_back(b);
    }
    decision::outbox close;
    decision::episode_record e = episode("bob@example.test", start, closed, true, score(45));
    close.episodes.push_back(e);
    out.push_back(close);
    return out;
  }

  /// The answers review gives, checked against the recorded episode.
  static void check_review(const std::string& path) {
    EXPECT_EQ(query_int(path, "SELECT count(*) FROM explanation"),
              static_cast<std::int64_t>(stored().size()));
    SQLite::Database db = open_read_only(path);
    std::map<std::int64_t, std::int64_t> story_id;  // at -> explanation id
    {
      SQLite::Statement st(db, "SELECT at, id FROM explanation ORDER BY at");
      std::vector<std::int64_t> ats;
      while (st.executeStep()) {
        ats.push_back(st.getColumn(0).getInt64());
        story_id[st.getColumn(0).getInt64()] = st.getColumn(1).getInt64();
      }
      std::vector<std::int64_t> expected;
      for (const int e : stored()) expected.push_back(when(e));
      EXPECT_EQ(ats, expected);
    }

    const recipient_report r = recipient_detail(db, "bob@example.test", at(start - 3600));
    ASSERT_EQ(r.verdicts.size(), static_cast<std::size_t>(requests));  // DUNNO mail is not
    std::set<std::string> deferred;
    for (std::size_t i = 0; i < r.verdicts.size(); ++i) {
      const int k = requests - 1 - static_cast<int>(i);  // newest first
      SCOPED_TRACE("request " + std::to_string(k));
      const verdict_row& v = r.verdicts[i];
      EXPECT_EQ(v.at, when(k));
      EXPECT_EQ(v.recipient, "bob@example.test");
      EXPECT_EQ(v.sender, sender(k));
      EXPECT_EQ(v.client, client(k));
      EXPECT_EQ(v.level, defer(k) ? "defer" : "warn");
      EXPECT_FALSE(v.monitor_only);
      EXPECT_EQ(v.source, "policy");
      EXPECT_EQ(v.requests, 1);
      // Explained by the latest story stored at or before it.
      const int e = in_force(k);
      EXPECT_EQ(v.id, story_id[when(e)]);
      EXPECT_DOUBLE_EQ(v.score, score(e));
      EXPECT_EQ(v.action_text, action(e));
      const std::vector<decision::reason> expected = reasons(e);
      ASSERT_EQ(v.reasons.size(), expected.size());
      for (std::size_t j = 0; j < expected.size(); ++j) {
        EXPECT_EQ(v.reasons[j].name, expected[j].name);
        EXPECT_DOUBLE_EQ(v.reasons[j].observed, expected[j].observed);
        EXPECT_EQ(v.reasons[j].detail, expected[j].detail);
      }
      if (v.level == "defer") deferred.insert(v.sender);
    }
    // "Which senders were deferred during the episode": 30, the real one among them.
    EXPECT_EQ(deferred.size(), 30u);
    EXPECT_TRUE(deferred.contains("newcontact@partner.test"));
    // "Why was bob deferred at 14:03": the requests of that minute and their story.
    int at_1403 = 0;
    for (const verdict_row& v : r.verdicts) {
      if (v.at < t0 + 4 * 3600 + 180 || v.at >= t0 + 4 * 3600 + 240) continue;
      ++at_1403;
      EXPECT_EQ(v.level, "defer");
      EXPECT_EQ(v.action_text, action(45));
      ASSERT_EQ(v.reasons.size(), 3u);
      EXPECT_EQ(v.reasons[2].name, "new_senders");
    }
    EXPECT_EQ(at_1403, 2);  // 14:03:00 and 14:03:05, the last two

    ASSERT_EQ(r.episodes.size(), 1u);
    EXPECT_EQ(r.episodes[0].verdicts, requests);
    EXPECT_DOUBLE_EQ(r.episodes[0].peak_score, score(45));
    ASSERT_TRUE(r.episodes[0].ended_at.has_value());
    EXPECT_EQ(*r.episodes[0].ended_at, closed);
    EXPECT_EQ(r.correspondents, 20 + 1);  // warned (accepted) senders and alice

    const std::vector<alert_row> alerts = list_alerts(db, at(start - 3600), 10);
    ASSERT_EQ(alerts.size(), 1u);
    EXPECT_EQ(alerts[0].recipient, "bob@example.test");
    EXPECT_EQ(alerts[0].started, start);
    EXPECT_EQ(alerts[0].verdicts, requests);
    EXPECT_EQ(alerts[0].peak_level, "defer");
    // Flagged requests after the episode's window are not its verdicts.
    EXPECT_EQ(list_alerts(db, at(closed + 1), 10).size(), 0u);

    const std::vector<top_recipient_row> top = top_recipients(db, at(start - 3600), 10);
    ASSERT_EQ(top.size(), 2u);
    EXPECT_EQ(top[0].recipient, "bob@example.test");
    EXPECT_EQ(top[0].accepted, 6 + 20 + 10);
    EXPECT_EQ(top[0].attempted, 6 + 50 + 10);
    EXPECT_EQ(top[0].verdicts, requests);
    EXPECT_EQ(top[1].recipient, "carol@example.test");
    EXPECT_EQ(top[1].verdicts, 0);
    // Since 14:00, only the requests from then on.
    const std::vector<top_recipient_row> since_two = top_recipients(db, at(t0 + 4 * 3600), 10);
    ASSERT_FALSE(since_two.empty());
    EXPECT_EQ(since_two[0].recipient, "bob@example.test");
    EXPECT_EQ(since_two[0].verdicts, requests - 12);  // 13:59:00 .. 13:59:55 are before
  }

  temp_dir dir_;
};

TEST_F(RecordedEpisode, ReviewAnswersFromTheNewTablesOneOutboxPerRequest) {
  const std::string path = dir_.file("per_request.db");
  {
    store s(options_for(path));
    for (const decision::outbox& b : recorded()) s.apply(b);
  }
  check_review(path);
}

TEST_F(RecordedEpisode, ReviewAnswersAreTheSameWhateverTheFlushes) {
  const std::vector<decision::outbox> all = recorded();
  for (const std::size_t per_flush : {std::size_t{3}, std::size_t{13}, all.size()}) {
    SCOPED_TRACE("outboxes per flush " + std::to_string(per_flush));
    const std::string path = dir_.file("flushes" + std::to_string(per_flush) + ".db");
    {
      // The writer's path: outboxes aggregated into deltas, merged, applied.
      store s(options_for(path));
      explanation_filter filter;
      for (std::size_t from = 0; from < all.size(); from += per_flush) {
        delta merged;
        for (std::size_t i = from; i < std::min(all.size(), from + per_flush); ++i) {
          delta d;
          d.add(all[i], filter);
          merged.merge(std::move(d));
        }
        s.apply(merged);
      }
    }
    check_review(path);
  }
}

// explain_recipient(): the same recorded episode told as a story.
TEST_F(RecordedEpisode, ExplainTellsTheEpisode) {
  const std::string path = dir_.file("explain.db");
  {
    store s(options_for(path));
    for (const decision::outbox& b : recorded()) s.apply(b);
  }
  SQLite::Database db = open_read_only(path);
  const review_window window{start - 3600, closed + 3600};
  const explain_report r = explain_recipient(db, "bob@example.test", window, 0);
  EXPECT_EQ(r.recipient, "bob@example.test");
  ASSERT_EQ(r.hours.size(), 2u);  // 13:00 and 14:00 (the DUNNO mail began at 13:09)
  EXPECT_EQ(r.hours[0].hour_start, t0 + 3 * 3600);
  EXPECT_EQ(r.hours[1].attempted, 38 + 7);

  ASSERT_EQ(r.episodes.size(), 1u);
  const episode_report& e = r.episodes[0];
  EXPECT_EQ(e.episode.started, start);
  ASSERT_TRUE(e.peak_at.has_value());
  EXPECT_EQ(*e.peak_at, when(45));
  EXPECT_EQ(e.done.requests, requests);
  EXPECT_EQ(e.done.warned, 20);
  EXPECT_EQ(e.done.deferred, 30);
  EXPECT_EQ(e.done.flagged, 0);
  EXPECT_EQ(e.done.would_defer, 0);
  EXPECT_EQ(r.done.requests, requests);

  ASSERT_EQ(r.explanations.rows.size(), stored().size());
  EXPECT_EQ(r.explanations.total, static_cast<std::int64_t>(stored().size()));
  for (std::size_t i = 0; i < stored().size(); ++i) {
    const int k = stored()[i];
    const explanation_row& x = r.explanations.rows[i];
    EXPECT_EQ(x.at, when(k));
    EXPECT_EQ(x.level, defer(k) ? "defer" : "warn");
    EXPECT_DOUBLE_EQ(x.score, score(k));
    EXPECT_EQ(x.action_text, action(k));
    EXPECT_EQ(x.sender, sender(k));
    EXPECT_EQ(x.client, client(k));
    EXPECT_EQ(x.reasons.size(), reasons(k).size());
  }

  EXPECT_EQ(r.senders.total, requests);
  EXPECT_EQ(r.clients.total, 8);
  ASSERT_EQ(r.clients.rows.size(), 8u);
  EXPECT_EQ(r.clients.rows[0].text, "203.0.113.0");
  EXPECT_EQ(r.clients.rows[0].done.requests, 7);
  EXPECT_EQ(r.clients.rows[0].first_at, when(0));
  EXPECT_EQ(r.clients.rows[0].last_at, when(48));
  EXPECT_EQ(r.evidence.total, 0);
  EXPECT_EQ(r.correspondents.total, 21);
  EXPECT_EQ(r.correspondents.rows[0].sender, "alice@example.test");
  EXPECT_EQ(r.correspondents.rows[0].messages, 6 + 10);

  // A limit cuts each list and keeps its total.
  const explain_report cut = explain_recipient(db, "bob@example.test", window, 2);
  EXPECT_EQ(cut.explanations.rows.size(), 2u);
  EXPECT_TRUE(cut.explanations.truncated());
  EXPECT_EQ(cut.senders.rows.size(), 2u);
  EXPECT_EQ(cut.senders.total, requests);
  EXPECT_EQ(cut.correspondents.rows.size(), 2u);
  EXPECT_EQ(cut.hours.size(), 2u);
  // Before the flood: nothing flagged, nothing explained.
  const explain_report quiet = explain_recipient(db, "bob@example.test", {start - 3600, start}, 0);
  EXPECT_TRUE(quiet.episodes.empty());
  EXPECT_EQ(quiet.explanations.total, 0);
  EXPECT_EQ(quiet.done.requests, 0);
  EXPECT_EQ(quiet.correspondents.total, 1);  // alice; the warned senders came later
}

// What was answered, as the flagged code says: monitor mode warns, the flag action delivers.
TEST(ReviewAnswers, MonitorAndFlagAreCountedApart) {
  temp_dir dir;
  const std::string path = dir.file("answers.db");
  {
    store s(options_for(path));
    decision::outbox b;
    b.verdicts = {verdict(t0 + 10, "bob@example.test"), verdict(t0 + 20, "bob@example.test"),
                  verdict(t0 + 30, "bob@example.test"), verdict(t0 + 40, "bob@example.test")};
    b.verdicts[0].level = decision::verdict_level::warn;
    b.verdicts[1].monitor_only = true;  // defer level, WARN sent
    b.verdicts[2].header_flagged = true;
    b.episodes = {episode("bob@example.test", t0, t0 + 40, false, 3.5)};
    s.apply(b);
  }
  SQLite::Database db = open_read_only(path);
  const explain_report r = explain_recipient(db, "bob@example.test", {t0, t0 + 3600}, 0);
  EXPECT_EQ(r.done.requests, 4);
  EXPECT_EQ(r.done.warned, 2);
  EXPECT_EQ(r.done.would_defer, 1);
  EXPECT_EQ(r.done.flagged, 1);
  EXPECT_EQ(r.done.deferred, 1);
  ASSERT_EQ(r.episodes.size(), 1u);
  EXPECT_EQ(r.episodes[0].done.requests, 4);
  const recipient_report old = recipient_detail(db, "bob@example.test", at(t0));
  ASSERT_EQ(old.verdicts.size(), 4u);
  EXPECT_TRUE(old.verdicts[1].header_flagged);  // newest first: t0 + 30
  EXPECT_FALSE(old.verdicts[0].header_flagged);
}

TEST(FormatUtc, RendersIso8601) {
  EXPECT_EQ(format_utc(t0), "2024-03-04T10:00:00Z");
  EXPECT_EQ(format_utc(0), "1970-01-01T00:00:00Z");
}

}  // namespace
}  // namespace rcptguard::store
