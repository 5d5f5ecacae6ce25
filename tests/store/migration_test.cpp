// Migration of a v5 database with history to v6: counts untouched, every verdict kept as an
// explanation and as flagged rows, and review answering as it did from the old rows.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "store/review.hpp"
#include "store/schema.hpp"
#include "store/store.hpp"
#include "store_test_util.hpp"

namespace rcptguard::store {
namespace {

using namespace testing;  // NOLINT(google-build-using-namespace): the test helpers

constexpr std::int64_t e1 = t0 + 3600;  // bob's episode: 11:00:00 .. 11:15:00

// A v5 file as rcptguard 5 left it: counts of a few hours, an episode with its verdicts (warn
// and defer, monitor mode, both sources, two identical requests in one second), verdicts of
// carol and of bob outside the episode, a followed log.
constexpr const char* v5_history = R"sql(
INSERT INTO recipient_hourly (recipient, hour_start, accepted, attempted, distinct_senders, bytes)
VALUES ('bob@example.test', 1709546400, 12, 14, 5, 120000),
       ('bob@example.test', 1709550000, 40, 95, 60, 400000),
       ('bob@example.test', 1709553600, 3, 3, 2, 9000),
       ('carol@example.test', 1709550000, 7, 9, 4, 7000);
INSERT INTO recipient_minute (recipient, minute_start, accepted, attempted)
VALUES ('bob@example.test', 1709550000, 10, 30), ('bob@example.test', 1709550060, 5, 20),
       ('carol@example.test', 1709550000, 1, 2);
INSERT INTO recipient_hour_sender (recipient, hour_start, sender)
VALUES ('bob@example.test', 1709550000, 's1@x.test'), ('bob@example.test', 1709550000, ''),
       ('carol@example.test', 1709550000, 's1@x.test');
INSERT INTO correspondent (recipient, sender, first_seen, last_seen, messages)
VALUES ('bob@example.test', 'alice@example.test', 1709000000, 1709550100, 31),
       ('carol@example.test', 'bob@example.test', 1709100000, 1709550200, 2);
INSERT INTO ingest_position (path, device, inode, offset, updated)
VALUES ('/var/log/mail.log', 2049, 131, 987654, 1709553000);
INSERT INTO episode (recipient, started, updated, ended, ended_at, peak_level, peak_score,
                     peak_window, peak_observed, peak_baseline, summary, source)
VALUES ('bob@example.test', 1709550000, 1709550900, 1, 1709550900, 'defer', 4.5, '10m', 240,
        6, 'rcptguard: bob@example.test 240 msgs/10m, baseline 6', 'policy'),
       ('carol@example.test', 1709550010, 1709550100, 0, NULL, 'warn', 1.5, '1h', 30, 4,
        'rcptguard: carol@example.test 30 msgs/1h, baseline 4', 'log');
INSERT INTO verdict (id, at, recipient, sender, client, level, score, action_text, source,
                     monitor_only)
VALUES (1, 1709550010, 'bob@example.test', 's1@x.test', '192.0.2.1', 'warn', 1.2,
        'rcptguard: 40 msgs/10m', 'policy', 0),
       (2, 1709550020, 'bob@example.test', 's2@x.test', '192.0.2.1', 'defer', 2.5,
        'DEFER_IF_PERMIT 4.7.1 rcptguard: 90 msgs/10m', 'policy', 0),
       (3, 1709550030, 'bob@example.test', 's3@x.test', '198.51.100.7', 'defer', 3.0,
        'rcptguard: 120 msgs/10m (monitor: would defer)', 'policy', 1),
       (4, 1709550040, 'bob@example.test', 's3@x.test', '198.51.100.7', 'defer', 3.5,
        'DEFER_IF_PERMIT 4.7.1 rcptguard: 150 msgs/10m', 'log', 0),
       (5, 1709550050, 'bob@example.test', '', '203.0.113.9', 'defer', 4.5,
        'DEFER_IF_PERMIT 4.7.1 rcptguard: 240 msgs/10m', 'policy', 0),
       (6, 1709550050, 'bob@example.test', '', '203.0.113.9', 'defer', 4.5,
        'DEFER_IF_PERMIT 4.7.1 rcptguard: 240 msgs/10m', 'policy', 0),
       (7, 1709550015, 'carol@example.test', 's1@x.test', '192.0.2.1', 'warn', 1.5,
        'rcptguard: 30 msgs/1h', 'log', 0),
       (8, 1709555000, 'bob@example.test', 's9@x.test', '192.0.2.1', 'warn', 1.1,
        'rcptguard: 33 msgs/10m', 'policy', 0);
INSERT INTO verdict_reason (verdict_id, ordinal, name, weight, observed, baseline, detail)
VALUES (1, 0, 'volume_10m', 1.2, 40, 6, '40 msgs/10m, baseline 6'),
       (2, 0, 'volume_10m', 1.5, 90, 6, '90 msgs/10m, baseline 6'),
       (2, 1, 'sender_diversity', 1.0, 60, 3, '60 senders'),
       (3, 0, 'volume_10m', 2.0, 120, 6, '120 msgs/10m, baseline 6'),
       (3, 1, 'sender_diversity', 1.0, 80, 3, '80 senders'),
       (4, 0, 'volume_10m', 2.5, 150, 6, '150 msgs/10m, baseline 6'),
       (5, 0, 'volume_10m', 3.0, 240, 6, '240 msgs/10m, baseline 6'),
       (5, 1, 'sender_diversity', 1.0, 180, 3, '180 senders'),
       (5, 2, 'new_senders', 0.5, 170, 2, ''),
       (6, 0, 'volume_10m', 3.0, 240, 6, '240 msgs/10m, baseline 6'),
       (6, 1, 'sender_diversity', 1.0, 180, 3, '180 senders'),
       (6, 2, 'new_senders', 0.5, 170, 2, ''),
       (7, 0, 'volume_1h', 1.5, 30, 4, '30 msgs/1h, baseline 4');
)sql";

std::string rows(SQLite::Database& db, const std::string& sql) {
  SQLite::Statement st(db, sql);
  std::string out;
  while (st.executeStep()) {
    for (int c = 0; c < st.getColumnCount(); ++c) {
      out += st.getColumn(c).isNull() ? "NULL" : st.getColumn(c).getString();
      out += '|';
    }
    out += '\n';
  }
  return out;
}

constexpr const char* counts_sql[] = {
    // v5's columns; v7 added the peaks and in_episode (checked below).
    "SELECT recipient, hour_start, accepted, attempted, distinct_senders, bytes, hour_utc "
    "FROM recipient_hourly ORDER BY recipient, hour_start",
    "SELECT * FROM recipient_minute ORDER BY recipient, minute_start",
    "SELECT * FROM recipient_hour_sender ORDER BY recipient, hour_start, sender",
    "SELECT * FROM correspondent ORDER BY recipient, sender",
    // v5's columns; v8 added closed_by (checked below).
    "SELECT id, recipient, started, updated, ended, ended_at, peak_level, peak_score, peak_window, "
    "peak_observed, peak_baseline, summary, source, started_utc, updated_utc, ended_at_utc "
    "FROM episode ORDER BY id",
    "SELECT * FROM ingest_position ORDER BY path",
};

std::string counts(SQLite::Database& db) {
  std::string out;
  for (const char* sql : counts_sql) out += rows(db, sql) + "--\n";
  return out;
}

/// One listed verdict as review shows it: time, sender, client, level, mode, source, score,
/// action text and reasons.
std::string shown(std::int64_t at, const std::string& sender, const std::string& client,
                  const std::string& level, bool monitor_only, const std::string& source,
                  double score, const std::string& action, const std::vector<reason_row>& reasons) {
  std::string out = format_utc(at) + " from <" + sender + "> via " + client + ": " + level +
                    (monitor_only ? " (monitor)" : "") + " [" + source + "] " +
                    std::to_string(score) + " " + action + " because";
  for (const reason_row& r : reasons) {
    out += " " + r.name + "=" + std::to_string(r.weight) + "/" + std::to_string(r.observed) + "/" +
           std::to_string(r.baseline) + "/" + r.detail;
  }
  return out;
}

/// What review listed for a recipient from the v5 tables: every verdict row with its reasons.
std::vector<std::string> old_review(SQLite::Database& db, const std::string& recipient) {
  SQLite::Statement st(db, R"sql(
    SELECT id, at, sender, client, level, monitor_only, source, score, action_text
      FROM verdict WHERE recipient = ?1 ORDER BY at DESC, id DESC)sql");
  st.bind(1, recipient);
  std::vector<std::string> out;
  while (st.executeStep()) {
    SQLite::Statement rs(db, R"sql(
      SELECT name, weight, observed, baseline, detail FROM verdict_reason
       WHERE verdict_id = ?1 ORDER BY ordinal)sql");
    rs.bind(1, st.getColumn(0).getInt64());
    std::vector<reason_row> reasons;
    while (rs.executeStep()) {
      reasons.push_back({rs.getColumn(0).getString(), rs.getColumn(1).getDouble(),
                         rs.getColumn(2).getDouble(), rs.getColumn(3).getDouble(),
                         rs.getColumn(4).getString()});
    }
    out.push_back(shown(st.getColumn(1).getInt64(), st.getColumn(2).getString(),
                        st.getColumn(3).getString(), st.getColumn(4).getString(),
                        st.getColumn(5).getInt() != 0, st.getColumn(6).getString(),
                        st.getColumn(7).getDouble(), st.getColumn(8).getString(), reasons));
  }
  return out;
}

/// What review lists now, one line per request (a row counts identical ones).
std::vector<std::string> new_review(SQLite::Database& db, const std::string& recipient) {
  std::vector<std::string> out;
  for (const verdict_row& v : recipient_detail(db, recipient, at(0)).verdicts) {
    for (std::int64_t i = 0; i < v.requests; ++i) {
      out.push_back(shown(v.at, v.sender, v.client, v.level, v.monitor_only, v.source, v.score,
                          v.action_text, v.reasons));
    }
  }
  return out;
}

class MigrationFromV5 : public ::testing::Test {
 protected:
  void SetUp() override {
    SQLite::Database db(path_, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    migrate_to(db, 5);
    ASSERT_EQ(user_version(db), 5);
    db.exec(v5_history);
    counts_before_ = counts(db);
    verdicts_before_ = rows(db,
                            "SELECT id, at, recipient, sender, client, level, monitor_only, "
                            "score, action_text, source FROM verdict ORDER BY id");
    reasons_before_ = rows(db,
                           "SELECT verdict_id, ordinal, name, weight, observed, baseline, "
                           "detail FROM verdict_reason ORDER BY 1, 2");
    grouped_before_ = rows(db,
                           "SELECT at, recipient, sender, client, level, monitor_only, source, "
                           "count(*) FROM verdict GROUP BY 1, 2, 3, 4, 5, 6, 7 "
                           "ORDER BY 1, 2, 3, 4, 5, 6, 7");
    alerts_before_ = rows(db, "SELECT id, recipient, state, verdicts FROM v_alerts ORDER BY id");
    bob_before_ = old_review(db, "bob@example.test");
    carol_before_ = old_review(db, "carol@example.test");
  }

  temp_dir dir_;
  std::string path_ = dir_.file("v5.db");
  std::string counts_before_;
  std::string verdicts_before_;
  std::string reasons_before_;
  std::string grouped_before_;
  std::string alerts_before_;
  std::vector<std::string> bob_before_;
  std::vector<std::string> carol_before_;
  std::vector<std::string> erin_before_;
};

TEST_F(MigrationFromV5, KeepsCountsVerdictsAndReviewAnswers) {
  ASSERT_EQ(bob_before_.size(), 7u);  // the premise: a history worth keeping
  ASSERT_EQ(alerts_before_, "1|bob@example.test|closed|6|\n2|carol@example.test|open|1|\n");
  { SQLite::Database db = open_read_write({.path = path_}); }

  SQLite::Database db = open_read_only(path_);
  EXPECT_EQ(user_version(db), schema_version);
  // Hours from before v7 have no peaks (read as the hour spread evenly) and are learnable.
  EXPECT_EQ(rows(db,
                 "SELECT count(*) FROM recipient_hourly "
                 "WHERE peak_minute = 0 AND peak_ten_minutes = 0 AND in_episode = 0"),
            rows(db, "SELECT count(*) FROM recipient_hourly"));
  EXPECT_EQ(db.execAndGet("PRAGMA integrity_check").getString(), "ok");
  EXPECT_FALSE(SQLite::Statement(db, "PRAGMA foreign_key_check").executeStep());

  // Counts, episodes and positions unchanged; why an episode closed before v8 is unknown.
  EXPECT_EQ(counts(db), counts_before_);
  EXPECT_EQ(rows(db, "SELECT count(*) FROM episode WHERE closed_by IS NOT NULL"), "0|\n");

  // Every verdict is an explanation with its id and its reasons.
  EXPECT_EQ(rows(db,
                 "SELECT id, at, recipient, sender, client, level, monitor_only, score, "
                 "action_text, source FROM explanation ORDER BY id"),
            verdicts_before_);
  EXPECT_EQ(rows(db,
                 "SELECT explanation_id, ordinal, name, weight, observed, baseline, detail "
                 "FROM explanation_reason ORDER BY 1, 2"),
            reasons_before_);

  // And flagged rows with the same request identity, counting identical ones.
  EXPECT_EQ(rows(db,
                 "SELECT at, recipient, sender, client, level, monitor_only, source, requests "
                 "FROM v_verdicts ORDER BY 1, 2, 3, 4, 5, 6, 7"),
            grouped_before_);
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM flagged"), 7);
  EXPECT_EQ(query_int(path_, "SELECT sum(requests) FROM flagged"), 8);
  EXPECT_EQ(rows(db,
                 "SELECT n.text, s.first_at FROM flagged_span s JOIN name n ON n.id = s.recipient "
                 "ORDER BY 1"),
            "bob@example.test|1709550010|\ncarol@example.test|1709550015|\n");
  EXPECT_EQ(rows(db, "SELECT id, recipient, state, verdicts FROM v_alerts ORDER BY id"),
            alerts_before_);

  // Review lists the same verdicts as it did from the old rows.
  std::vector<std::string> bob_after = new_review(db, "bob@example.test");
  std::vector<std::string> carol_after = new_review(db, "carol@example.test");
  std::vector<std::string> bob_expected = bob_before_;
  std::sort(bob_after.begin(), bob_after.end());
  std::sort(bob_expected.begin(), bob_expected.end());
  EXPECT_EQ(bob_after, bob_expected);
  EXPECT_EQ(carol_after, carol_before_);
  const recipient_report bob = recipient_detail(db, "bob@example.test", at(0));
  ASSERT_EQ(bob.verdicts.size(), 6u);         // the two identical requests are one row
  EXPECT_EQ(bob.verdicts[0].at, 1709555000);  // newest first
  EXPECT_EQ(bob.verdicts[0].id, 8);
  EXPECT_EQ(bob.verdicts[1].requests, 2);
  EXPECT_EQ(bob.verdicts[1].id, 6);
  ASSERT_EQ(bob.episodes.size(), 1u);
  EXPECT_EQ(bob.episodes[0].verdicts, 6);
  const std::vector<alert_row> alerts = list_alerts(db, at(0), 10);
  ASSERT_EQ(alerts.size(), 2u);
  EXPECT_EQ(alerts[0].verdicts, 1);  // carol's, started later
  EXPECT_EQ(alerts[1].verdicts, 6);
  const std::vector<top_recipient_row> top = top_recipients(db, at(0), 10);
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0].recipient, "bob@example.test");
  EXPECT_EQ(top[0].verdicts, 7);
  EXPECT_EQ(top[1].verdicts, 1);
}

// After the migration the store writes into the converted tables: names are reused, new
// explanations take ids after the old ones, and prune handles old and new rows alike.
TEST_F(MigrationFromV5, TheStoreContinuesOnTheMigratedTables) {
  const std::int64_t names_before = [&] {
    store s(options_for(path_));
    return query_int(path_, "SELECT count(*) FROM name");
  }();
  {
    store s(options_for(path_));
    decision::outbox b;
    decision::verdict_record v = verdict(1709550050, "bob@example.test");
    v.sender = "";
    v.client = "203.0.113.9";
    b.verdicts = {v, verdict(1709560000, "dave@example.test")};
    s.apply(b);
    // A third identical request in the migrated row's second adds to its count. A new process
    // interns senders and clients afresh (party has no index on its text), so it may be a row
    // of its own.
    EXPECT_EQ(query_int(path_,
                        "SELECT sum(requests) FROM v_verdicts WHERE at = 1709550050 "
                        "AND recipient = 'bob@example.test'"),
              3);
    EXPECT_EQ(query_int(path_, "SELECT count(*) FROM name"),
              names_before + 1);  // dave; bob was interned
    EXPECT_GT(query_int(path_,
                        "SELECT min(id) FROM explanation WHERE recipient = "
                        "'dave@example.test'"),
              8);
    EXPECT_EQ(query_int(path_,
                        "SELECT verdicts FROM v_alerts WHERE recipient = "
                        "'bob@example.test'"),
              7);

    // 30 days after the newest history: everything of the v5 file is due.
    const prune_result r = s.prune(at(1709560000 + 31 * 86400), std::chrono::days{30});
    EXPECT_TRUE(r.complete);
  }
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM flagged"), 0);
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM flagged_span"), 0);
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM explanation"), 0);
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM explanation_reason"), 0);
  EXPECT_EQ(query_int(path_, "SELECT count(*) FROM recipient_hourly"), 0);
}

// Verdicts of one recipient in the same second with different stories or numbers (a warn to
// one sender, the escalation to defer for the next, a third with a higher count): review
// should show each with its own answer, as v5 did.
// GAP (store/review.cpp recipient_detail, and the v_verdicts view of schema v6): the
// explanation in force for a flagged row is the recipient's latest at or before its second,
// ties broken by the highest id, so every row of that second shows the last story of the
// second: here the warn to a@x.test is listed with score 2.2 and the DEFER action text. After
// the migration, a v5 flood (many verdicts per second, each with its own numbers) is listed
// with the numbers of each second's last verdict. Preferring, within that second, the
// explanation whose sender, client and level match the row (the migration keeps them) gives
// the v5 answers back. Enable once decided and fixed.
TEST_F(MigrationFromV5, SameSecondVerdictsKeepTheirOwnStory) {
  {
    SQLite::Database db(path_, SQLite::OPEN_READWRITE);
    db.exec(R"sql(
      INSERT INTO verdict (id, at, recipient, sender, client, level, score, action_text, source,
                           monitor_only)
      VALUES (20, 1709558000, 'erin@example.test', 'a@x.test', '192.0.2.1', 'warn', 1.4,
              'rcptguard: 50 msgs/10m', 'policy', 0),
             (21, 1709558000, 'erin@example.test', 'b@x.test', '192.0.2.1', 'defer', 2.1,
              'DEFER_IF_PERMIT 4.7.1 rcptguard: 51 msgs/10m', 'policy', 0),
             (22, 1709558000, 'erin@example.test', 'c@x.test', '192.0.2.1', 'defer', 2.2,
              'DEFER_IF_PERMIT 4.7.1 rcptguard: 52 msgs/10m', 'policy', 0);)sql");
    erin_before_ = old_review(db, "erin@example.test");
  }
  { SQLite::Database db = open_read_write({.path = path_}); }
  SQLite::Database db = open_read_only(path_);
  std::vector<std::string> after = new_review(db, "erin@example.test");
  std::sort(after.begin(), after.end());
  std::sort(erin_before_.begin(), erin_before_.end());
  EXPECT_EQ(after, erin_before_);
}

}  // namespace
}  // namespace rcptguard::store
