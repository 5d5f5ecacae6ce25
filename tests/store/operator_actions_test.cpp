// Schema v8, the operator controls' tables: a v7 file migrates with its data, audit rows and
// allow entries round-trip, what a restore needs comes back (entries in force, recent resets),
// and an episode closed by an operator says so.
#include "store/operator_actions.hpp"

#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>

#include <string>

#include "store/schema.hpp"
#include "store/store.hpp"
#include "store_test_util.hpp"

namespace rcptguard::store {
namespace {

using namespace testing;  // NOLINT(google-build-using-namespace): the test helpers

operator_action action(std::int64_t when, std::string command, std::string address,
                       std::string result = "ok") {
  operator_action a;
  a.at = at(when);
  a.user = "alice";
  a.uid = 1000;
  a.command = std::move(command);
  a.address = std::move(address);
  a.reason = "ticket 4711";
  a.result = std::move(result);
  a.detail = "done";
  return a;
}

decision::operator_allow_entry allow(std::string address, decision::allow_kind kind,
                                     std::int64_t until) {
  decision::operator_allow_entry e;
  e.address = std::move(address);
  e.kind = kind;
  e.until = until == 0 ? time_point{} : at(until);
  e.created_at = at(t0);
  e.user = "alice";
  e.reason = "ticket 4711";
  return e;
}

TEST(OperatorSchema, MigrationFromV7KeepsDataAndAddsTheTables) {
  temp_dir dir;
  const std::string path = dir.file("v7.db");
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    migrate_to(db, 7);
    ASSERT_EQ(user_version(db), 7);
    db.exec(R"sql(
      INSERT INTO recipient_hourly (recipient, hour_start, accepted, attempted, distinct_senders,
                                    bytes, peak_minute, peak_ten_minutes, in_episode)
      VALUES ('bob@example.test', 1709546400, 12, 14, 5, 120000, 3, 9, 1);
      INSERT INTO episode (recipient, started, updated, ended, ended_at, peak_level, peak_score,
                           peak_window, peak_observed, peak_baseline, summary, source)
      VALUES ('bob@example.test', 1709546400, 1709547300, 1, 1709547300, 'defer', 4.5, '10m',
              240, 6, 'rcptguard: bob@example.test 240 msgs/10m', 'policy');)sql");
  }
  { SQLite::Database db = open_read_write({.path = path}); }
  EXPECT_EQ(query_int(path, "PRAGMA user_version"), schema_version);
  EXPECT_EQ(query_text(path,
                       "SELECT recipient || '|' || accepted || '|' || peak_ten_minutes || '|' || "
                       "in_episode FROM recipient_hourly"),
            "bob@example.test|12|9|1");
  // The old episode is kept; why it closed is unknown (NULL), and v_alerts shows the column.
  EXPECT_EQ(query_text(path, "SELECT state || '|' || peak_level FROM v_alerts"), "closed|defer");
  EXPECT_EQ(query_int(path, "SELECT count(*) FROM v_alerts WHERE closed_by IS NULL"), 1);
  EXPECT_EQ(query_int(path, "SELECT count(*) FROM operator_action"), 0);
  EXPECT_EQ(query_int(path, "SELECT count(*) FROM operator_allow"), 0);
  EXPECT_EQ(query_int(path, "SELECT count(*) FROM v_operator_actions"), 0);
  EXPECT_EQ(query_text(path, "PRAGMA integrity_check"), "ok");
}

TEST(OperatorActions, AuditRowsRoundTripByTimeRange) {
  temp_dir dir;
  const std::string path = dir.file("db");
  SQLite::Database db = open_read_write({.path = path});
  operator_action allowed = action(t0 + 10, "allow", "bob@example.test");
  allowed.kind = "recipient";
  allowed.until = at(t0 + 7200);
  insert_operator_action(db, allowed);
  insert_operator_action(db, action(t0 + 20, "release", "carol@example.test"));
  operator_action refused = action(t0 + 30, "", "", "refused");
  refused.user = "nobody";
  refused.uid = 65534;
  refused.reason.clear();
  insert_operator_action(db, refused);
  insert_operator_action(db, action(t0 + 5000, "status", ""));

  const review_window hour{t0, t0 + 3600};
  const page<operator_action> listed = list_operator_actions(db, hour, "", 0);
  EXPECT_EQ(listed.total, 3);
  ASSERT_EQ(listed.rows.size(), 3U);
  // Oldest first, to read as a story.
  const std::vector<operator_action> rows(listed.rows.rbegin(), listed.rows.rend());
  EXPECT_EQ(rows[0].command, "allow");
  EXPECT_EQ(rows[0].kind, "recipient");
  EXPECT_EQ(rows[0].address, "bob@example.test");
  EXPECT_EQ(rows[0].until, at(t0 + 7200));
  EXPECT_EQ(rows[0].user, "alice");
  EXPECT_EQ(rows[0].uid, 1000);
  EXPECT_EQ(rows[0].reason, "ticket 4711");
  EXPECT_EQ(rows[0].result, "ok");
  EXPECT_EQ(rows[0].detail, "done");
  EXPECT_EQ(rows[1].command, "release");
  EXPECT_EQ(rows[1].until, time_point{});
  EXPECT_EQ(rows[2].result, "refused");
  EXPECT_EQ(rows[2].user, "nobody");
  EXPECT_LT(rows[0].id, rows[1].id);

  // A limit keeps the newest, newest first, and the total says what was cut.
  const page<operator_action> last = list_operator_actions(db, hour, "", 2);
  EXPECT_EQ(last.total, 3);
  EXPECT_TRUE(last.truncated());
  ASSERT_EQ(last.rows.size(), 2U);
  EXPECT_EQ(last.rows[0].result, "refused");
  EXPECT_EQ(last.rows[1].command, "release");

  // One address: only what acted on it.
  const page<operator_action> carol = list_operator_actions(db, hour, "carol@example.test", 0);
  EXPECT_EQ(carol.total, 1);
  ASSERT_EQ(carol.rows.size(), 1U);
  EXPECT_EQ(carol.rows[0].command, "release");

  EXPECT_EQ(query_text(path,
                       "SELECT at_utc || '|' || user || '|' || command || '|' || allowed_until "
                       "FROM v_operator_actions WHERE command = 'allow'"),
            "2024-03-04T10:00:10Z|alice|allow|2024-03-04T12:00:00Z");

  // Pruning: audit rows older than the retention go (here the allow at t0 + 10).
  prune_operator_rows(db, at(t0 + 4000), std::chrono::seconds{3985});
  const auto kept = list_operator_actions(db, {0, t0 + 9999}, "", 0).rows;
  ASSERT_EQ(kept.size(), 3U);
  EXPECT_EQ(kept.back().command, "release");
}

TEST(OperatorActions, AllowEntriesRoundTripAndExpire) {
  temp_dir dir;
  const std::string path = dir.file("db");
  SQLite::Database db = open_read_write({.path = path});
  save_operator_allow(db, allow("bob@example.test", decision::allow_kind::recipient, 0));
  save_operator_allow(db, allow("bob@example.test", decision::allow_kind::sender, t0 + 600));
  save_operator_allow(db, allow("carol@example.test", decision::allow_kind::recipient, t0 + 60));
  // The same address and kind again replaces the entry.
  decision::operator_allow_entry replaced =
      allow("carol@example.test", decision::allow_kind::recipient, t0 + 3600);
  replaced.user = "root";
  save_operator_allow(db, replaced);

  auto entries = load_operator_allows(db, at(t0 + 100));
  ASSERT_EQ(entries.size(), 3U);
  EXPECT_EQ(entries[0].address, "bob@example.test");  // recipients first, by address
  EXPECT_EQ(entries[0].kind, decision::allow_kind::recipient);
  EXPECT_TRUE(entries[0].for_good());
  EXPECT_EQ(entries[1].address, "carol@example.test");
  EXPECT_EQ(entries[1].until, at(t0 + 3600));
  EXPECT_EQ(entries[1].user, "root");
  EXPECT_EQ(entries[2].kind, decision::allow_kind::sender);
  EXPECT_EQ(entries[2].created_at, at(t0));
  EXPECT_EQ(entries[2].reason, "ticket 4711");

  // Expired entries are not loaded, and pruning deletes them.
  EXPECT_EQ(load_operator_allows(db, at(t0 + 601)).size(), 2U);
  delete_operator_allow(db, "bob@example.test", decision::allow_kind::recipient);
  prune_operator_rows(db, at(t0 + 601), std::chrono::hours{24});
  EXPECT_EQ(query_int(path, "SELECT count(*) FROM operator_allow"), 1);
  EXPECT_EQ(query_text(path, "SELECT address || '|' || kind FROM operator_allow"),
            "carol@example.test|recipient");
}

TEST(OperatorActions, RecentResetsAndReleasesAreLoadedForTheRestore) {
  temp_dir dir;
  SQLite::Database db = open_read_write({.path = dir.file("db")});
  insert_operator_action(db, action(t0 - 26 * 3600, "reset", "old@example.test"));
  insert_operator_action(db, action(t0 + 10, "reset", "bob@example.test"));
  insert_operator_action(db, action(t0 + 70, "release", "bob@example.test"));
  insert_operator_action(db, action(t0 + 80, "release", "carol@example.test", "failed"));
  insert_operator_action(db, action(t0 + 90, "allow", "dave@example.test"));
  const auto resets = load_counter_resets(db, at(t0 + 100));
  ASSERT_EQ(resets.size(), 1U);
  EXPECT_EQ(resets[0].recipient, "bob@example.test");
  EXPECT_EQ(resets[0].at, at(t0 + 70));
}

TEST(OperatorActions, AnEpisodeReleasedByAnOperatorSaysSo) {
  temp_dir dir;
  const std::string path = dir.file("db");
  store s(options_for(path));
  decision::outbox box;
  box.episodes.push_back(episode("bob@example.test", t0, t0 + 60, false, 2.5));
  decision::episode_record released = episode("bob@example.test", t0, t0 + 120, true, 2.5);
  released.closed_by = decision::close_cause::released;
  box.episodes.push_back(released);
  box.episodes.push_back(episode("carol@example.test", t0, t0 + 60, false, 1.5));
  s.apply(box);
  EXPECT_EQ(query_text(path, "SELECT closed_by FROM v_alerts WHERE recipient = 'bob@example.test'"),
            "operator");
  EXPECT_EQ(query_int(path,
                      "SELECT count(*) FROM episode WHERE recipient = 'carol@example.test' "
                      "AND closed_by IS NULL"),
            1);
  decision::outbox cooled;
  cooled.episodes.push_back(episode("carol@example.test", t0, t0 + 900, true, 1.5));
  s.apply(cooled);
  EXPECT_EQ(
      query_text(path, "SELECT closed_by FROM episode WHERE recipient = 'carol@example.test'"),
      "cool_down");
}

}  // namespace
}  // namespace rcptguard::store
