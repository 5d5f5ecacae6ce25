// Opening and migrating the database: fresh file, reopen, newer schema, foreign file, symlinks.
#include "store/schema.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <set>
#include <string>

#include "store/store.hpp"
#include "store_test_util.hpp"

namespace rcptguard::store {
namespace {

using testing::query_int;
using testing::query_text;
using testing::temp_dir;

std::set<std::string> schema_objects(const std::string& path, const std::string& type) {
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  SQLite::Statement st(db, "SELECT name FROM sqlite_schema WHERE type = ?1");
  st.bind(1, type);
  std::set<std::string> names;
  while (st.executeStep()) names.insert(st.getColumn(0).getString());
  return names;
}

TEST(Schema, FreshFileMigratesToLatestWithEveryTableAndView) {
  temp_dir dir;
  const std::string path = dir.file("rcptguard.db");
  { SQLite::Database db = open_read_write({.path = path}); }

  EXPECT_EQ(query_int(path, "PRAGMA user_version"), schema_version);
  EXPECT_EQ(query_text(path, "PRAGMA journal_mode"), "wal");
  const std::set<std::string> tables = schema_objects(path, "table");
  for (const char* t :
       {"recipient_hourly", "recipient_minute", "recipient_hour_sender", "correspondent", "name",
        "party", "explanation", "explanation_reason", "flagged", "flagged_span", "episode",
        "ingest_position", "spool_file", "spool_message", "spool_attachment", "spool_evidence",
        "operator_action", "operator_allow"}) {
    EXPECT_TRUE(tables.contains(t)) << t;
  }
  // v6 replaced the per-request verdict rows; nothing of them is left behind.
  EXPECT_FALSE(tables.contains("verdict"));
  EXPECT_FALSE(tables.contains("verdict_reason"));
  const std::set<std::string> views = schema_objects(path, "view");
  EXPECT_EQ(views, (std::set<std::string>{"v_alerts", "v_explanations", "v_verdicts",
                                          "v_top_recipients_24h", "v_recipient_hourly",
                                          "v_spool_evidence", "v_operator_actions"}));
  // Every view compiles against the tables (a typo would only show up when queried).
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  for (const std::string& v : views) {
    EXPECT_NO_THROW(db.exec("SELECT * FROM " + v + " LIMIT 1")) << v;
  }
  // flagged is clustered by recipient, then time: one episode's rows are one key range.
  SQLite::Statement pk(db,
                       "SELECT group_concat(name, ',') FROM (SELECT name FROM pragma_index_info("
                       "(SELECT name FROM pragma_index_list('flagged') WHERE origin = 'pk')) "
                       "ORDER BY seqno)");
  ASSERT_TRUE(pk.executeStep());
  EXPECT_EQ(pk.getColumn(0).getString(), "recipient,at,sender,client,code");
}

TEST(Schema, VersionOneFileMigratesKeepingItsVerdicts) {
  temp_dir dir;
  const std::string path = dir.file("rcptguard.db");
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    migrate_to(db, 1);
    ASSERT_EQ(user_version(db), 1);
    db.exec(
        "INSERT INTO verdict (id, at, recipient, sender, client, level, score, action_text, "
        "source) VALUES (7, 1709546400, 'bob@example.test', 's@x.test', '192.0.2.1', 'defer', "
        "3.5, 'DEFER_IF_PERMIT flood', 'policy');"
        "INSERT INTO verdict_reason (verdict_id, ordinal, name, weight, observed, baseline, "
        "detail) VALUES (7, 0, 'volume_10m', 2.0, 240, 6, '240 msgs/10m')");
  }
  // A read-only connection still opens a file the daemon has not migrated yet (review then
  // refuses it with a message; it never migrates).
  {
    SQLite::Database ro = open_read_only(path);
    EXPECT_EQ(user_version(ro), 1);
  }
  { SQLite::Database db = open_read_write({.path = path}); }
  EXPECT_EQ(query_int(path, "PRAGMA user_version"), schema_version);
  // The verdict is an explanation (id kept) with its reason, and one flagged request.
  EXPECT_EQ(query_int(path, "SELECT count(*) FROM explanation"), 1);
  EXPECT_EQ(query_int(path, "SELECT id FROM explanation"), 7);
  EXPECT_EQ(query_int(path, "SELECT monitor_only FROM explanation"), 0);  // v2's default
  EXPECT_EQ(query_text(path, "SELECT reasons FROM v_explanations"),
            "volume_10m=2.00 (240 msgs/10m)");
  EXPECT_EQ(query_int(path, "SELECT count(*) FROM flagged"), 1);
  EXPECT_EQ(query_int(path, "SELECT requests FROM flagged"), 1);
  EXPECT_EQ(query_int(path, "SELECT first_at FROM flagged_span"), 1709546400);
  EXPECT_EQ(query_int(path, "SELECT monitor_only FROM v_verdicts"), 0);
  EXPECT_EQ(query_text(path, "SELECT at_utc FROM v_verdicts"), "2024-03-04T10:00:00Z");
  EXPECT_EQ(query_text(path,
                       "SELECT level || '|' || sender || '|' || client || '|' || source || "
                       "'|' || action_text || '|' || explanation_id FROM v_verdicts"),
            "defer|s@x.test|192.0.2.1|policy|DEFER_IF_PERMIT flood|7");
  EXPECT_EQ(query_int(path, "SELECT count(*) FROM sqlite_schema WHERE name LIKE 'verdict%'"), 0);
}

// The primary-key columns of a WITHOUT ROWID table, in key order.
std::string primary_key(SQLite::Database& db, const std::string& table) {
  SQLite::Statement st(
      db,
      "SELECT group_concat(name, ',') FROM (SELECT name FROM pragma_index_info("
      "(SELECT name FROM pragma_index_list(?1) WHERE origin = 'pk')) ORDER BY seqno)");
  st.bind(1, table);
  return st.executeStep() ? st.getColumn(0).getString() : "";
}

std::string all_rows(SQLite::Database& db, const std::string& sql) {
  SQLite::Statement st(db, sql);
  std::string out;
  while (st.executeStep()) {
    for (int c = 0; c < st.getColumnCount(); ++c) out += st.getColumn(c).getString() + "|";
    out += "\n";
  }
  return out;
}

TEST(Schema, VersionFourFileMigratesToTimeFirstKeysKeepingItsRows) {
  temp_dir dir;
  const std::string path = dir.file("rcptguard.db");
  const char* minutes_sql =
      "SELECT recipient, minute_start, accepted, attempted, minute_utc FROM recipient_minute "
      "ORDER BY recipient, minute_start";
  const char* senders_sql =
      "SELECT recipient, hour_start, sender FROM recipient_hour_sender "
      "ORDER BY recipient, hour_start, sender";
  std::string minutes_before;
  std::string senders_before;
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    migrate_to(db, 4);
    ASSERT_EQ(user_version(db), 4);
    ASSERT_EQ(primary_key(db, "recipient_minute"), "recipient,minute_start");
    db.exec(R"sql(
      INSERT INTO recipient_minute (recipient, minute_start, accepted, attempted) VALUES
        ('bob@example.test', 1709546460, 1, 2), ('alice@example.test', 1709546460, 0, 1),
        ('bob@example.test', 1709546400, 3, 3), ('carol@example.test', 1709546520, 5, 7);
      INSERT INTO recipient_hour_sender (recipient, hour_start, sender) VALUES
        ('bob@example.test', 1709546400, 's1@x.test'), ('bob@example.test', 1709546400, ''),
        ('alice@example.test', 1709550000, 's1@x.test'), ('bob@example.test', 1709542800, 's2@x.test');
      INSERT INTO recipient_hourly (recipient, hour_start, accepted, attempted, distinct_senders)
        VALUES ('bob@example.test', 1709546400, 4, 5, 2);)sql");
    minutes_before = all_rows(db, minutes_sql);
    senders_before = all_rows(db, senders_sql);
  }
  { SQLite::Database db = open_read_write({.path = path}); }

  SQLite::Database db(path, SQLite::OPEN_READONLY);
  EXPECT_EQ(user_version(db), schema_version);
  EXPECT_EQ(all_rows(db, minutes_sql), minutes_before);
  EXPECT_EQ(all_rows(db, senders_sql), senders_before);
  EXPECT_EQ(query_int(path, "SELECT count(*) FROM recipient_minute"), 4);
  EXPECT_EQ(query_int(path, "SELECT count(*) FROM recipient_hour_sender"), 4);
  EXPECT_EQ(query_int(path, "SELECT distinct_senders FROM recipient_hourly"), 2);
  // Keyed by time first; the time indexes are gone with the old tables, nothing else is left.
  EXPECT_EQ(primary_key(db, "recipient_minute"), "minute_start,recipient");
  EXPECT_EQ(primary_key(db, "recipient_hour_sender"), "hour_start,recipient,sender");
  EXPECT_EQ(primary_key(db, "recipient_hourly"), "recipient,hour_start");
  const std::set<std::string> indexes = schema_objects(path, "index");
  EXPECT_FALSE(indexes.contains("recipient_minute_by_minute"));
  EXPECT_FALSE(indexes.contains("recipient_hour_sender_by_hour"));
  EXPECT_TRUE(indexes.contains("recipient_hourly_by_hour"));
  const std::set<std::string> tables = schema_objects(path, "table");
  EXPECT_FALSE(tables.contains("recipient_minute_v5"));
  EXPECT_FALSE(tables.contains("recipient_hour_sender_v5"));
  EXPECT_EQ(db.execAndGet("PRAGMA integrity_check").getString(), "ok");

  // The store writes into the migrated rows: a known minute and sender key are found by the
  // new keys (added to, not duplicated), and the start-up load reads them back in time order.
  {
    store s({.database = {.path = path}});
    decision::outbox batch;
    batch.deliveries.push_back(
        testing::delivery(1709546430, "bob@example.test", "s1@x.test", true));
    s.apply(batch);
    const decision::restore_snapshot snapshot = s.load_snapshot(testing::at(1709546530));
    ASSERT_EQ(snapshot.recent_minutes.size(), 4u);
    EXPECT_EQ(snapshot.recent_minutes[0].recipient, "bob@example.test");
    EXPECT_EQ(snapshot.recent_minutes[1].recipient, "alice@example.test");  // 10:01, a < b
    EXPECT_EQ(snapshot.recent_minutes[2].recipient, "bob@example.test");
    EXPECT_EQ(snapshot.recent_minutes[3].recipient, "carol@example.test");
  }
  EXPECT_EQ(query_int(path, "SELECT count(*) FROM recipient_minute"), 4);
  EXPECT_EQ(query_int(path,
                      "SELECT accepted FROM recipient_minute "
                      "WHERE recipient = 'bob@example.test' AND minute_start = 1709546400"),
            4);
  EXPECT_EQ(query_int(path, "SELECT count(*) FROM recipient_hour_sender"), 4);
  EXPECT_EQ(query_int(path, "SELECT distinct_senders FROM recipient_hourly"), 2);
}

TEST(Schema, ConnectionSettingsAreApplied) {
  temp_dir dir;
  SQLite::Database db =
      open_read_write({.path = dir.file("a.db"), .busy_timeout = std::chrono::milliseconds{1234}});
  EXPECT_EQ(db.execAndGet("PRAGMA foreign_keys").getInt(), 1);
  EXPECT_EQ(db.execAndGet("PRAGMA synchronous").getInt(), 1);  // NORMAL
  EXPECT_EQ(db.execAndGet("PRAGMA busy_timeout").getInt(), 1234);
}

TEST(Schema, ReopeningIsIdempotentAndKeepsData) {
  temp_dir dir;
  const std::string path = dir.file("rcptguard.db");
  {
    SQLite::Database db = open_read_write({.path = path});
    db.exec(
        "INSERT INTO correspondent (recipient, sender, first_seen, last_seen, messages) "
        "VALUES ('bob@example.test', 'alice@example.test', 1, 2, 3)");
  }
  {
    SQLite::Database db = open_read_write({.path = path});
    migrate(db);
    EXPECT_EQ(user_version(db), schema_version);
  }
  EXPECT_EQ(query_int(path, "SELECT messages FROM correspondent"), 3);
}

TEST(Schema, NewerSchemaIsRefusedWithAClearError) {
  temp_dir dir;
  const std::string path = dir.file("rcptguard.db");
  {
    SQLite::Database db = open_read_write({.path = path});
    db.exec("PRAGMA user_version = " + std::to_string(schema_version + 1));
  }
  try {
    SQLite::Database db = open_read_write({.path = path});
    FAIL() << "a newer schema was accepted";
  } catch (const schema_error& e) {
    EXPECT_NE(std::string{e.what()}.find("newer"), std::string::npos) << e.what();
  }
  EXPECT_THROW(open_read_only(path), schema_error);
}

TEST(Schema, ForeignDatabaseIsRefused) {
  temp_dir dir;
  const std::string path = dir.file("other.db");
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec("CREATE TABLE accounts (id INTEGER PRIMARY KEY)");
  }
  EXPECT_THROW(open_read_write({.path = path}), schema_error);
  EXPECT_EQ(query_int(path, "PRAGMA user_version"), 0);  // untouched
}

TEST(Schema, SymlinkedPathIsRefused) {
  temp_dir dir;
  const std::string real = dir.file("real.db");
  { SQLite::Database db = open_read_write({.path = real}); }
  const std::string link = dir.file("link.db");
  std::filesystem::create_symlink(real, link);
  EXPECT_THROW(open_read_write({.path = link}), schema_error);
  EXPECT_THROW(open_read_only(link), schema_error);

  // A dangling link must not be followed to create a file somewhere else either.
  const std::string dangling = dir.file("dangling.db");
  std::filesystem::create_symlink(dir.file("elsewhere.db"), dangling);
  EXPECT_THROW(open_read_write({.path = dangling}), schema_error);
  EXPECT_FALSE(std::filesystem::exists(dir.file("elsewhere.db")));
}

TEST(Schema, NewFileIsNotWorldReadable) {
  temp_dir dir;
  const std::string path = dir.file("rcptguard.db");
  { SQLite::Database db = open_read_write({.path = path}); }
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0007, 0u);
}

TEST(Schema, ReadOnlyOpenNeverCreatesAFile) {
  temp_dir dir;
  const std::string path = dir.file("missing.db");
  EXPECT_ANY_THROW(open_read_only(path));
  EXPECT_FALSE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace rcptguard::store
