// The read-only review queries over a database the store wrote.
#include "store/review.hpp"

#include <gtest/gtest.h>

#include <string>

#include "store/schema.hpp"
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

TEST_F(ReviewTest, ReviewConnectionCannotWrite) {
  SQLite::Database db = open_read_only(path_);
  EXPECT_THROW(db.exec("DELETE FROM verdict"), SQLite::Exception);
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM verdict"), 3);
}

TEST(ReviewOldFile, RecipientDetailReadsAVersionOneFile) {
  temp_dir dir;
  const std::string path = dir.file("v1.db");
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    migrate_to(db, 1);
    db.exec(
        "INSERT INTO verdict (at, recipient, sender, client, level, score, action_text, source) "
        "VALUES (1709546400, 'bob@example.test', 's@x.test', '192.0.2.1', 'defer', 3.5, "
        "'DEFER_IF_PERMIT flood', 'policy')");
  }
  SQLite::Database db = open_read_only(path);
  const recipient_report r = recipient_detail(db, "bob@example.test", at(0));
  ASSERT_EQ(r.verdicts.size(), 1u);
  EXPECT_FALSE(r.verdicts[0].monitor_only);
}

TEST(FormatUtc, RendersIso8601) {
  EXPECT_EQ(format_utc(t0), "2024-03-04T10:00:00Z");
  EXPECT_EQ(format_utc(0), "1970-01-01T00:00:00Z");
}

}  // namespace
}  // namespace rcptguard::store
