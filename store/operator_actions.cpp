// The operator controls' tables (see operator_actions.hpp).
#include "store/operator_actions.hpp"

#include <SQLiteCpp/Statement.h>

#include <algorithm>
#include <limits>

namespace rcptguard::store {

namespace {

// The number of seconds a time_point holds, or SQL NULL for the epoch ("for good", "none").
void bind_optional_time(SQLite::Statement& st, int index, time_point t) {
  if (t == time_point{}) {
    st.bind(index);
  } else {
    st.bind(index, to_unix_seconds(t));
  }
}

time_point optional_time(const SQLite::Column& column) {
  return column.isNull() ? time_point{} : from_unix_seconds(column.getInt64());
}

decision::allow_kind allow_kind_from(std::string_view text) {
  return text == "sender" ? decision::allow_kind::sender : decision::allow_kind::recipient;
}

}  // namespace

std::string_view allow_kind_text(decision::allow_kind kind) {
  return kind == decision::allow_kind::sender ? "sender" : "recipient";
}

void insert_operator_action(SQLite::Database& db, const operator_action& action) {
  SQLite::Statement st(db, R"sql(
    INSERT INTO operator_action (at, user, uid, command, kind, address, until, reason, result,
                                 detail)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10))sql");
  st.bind(1, to_unix_seconds(action.at));
  st.bindNoCopy(2, action.user);
  st.bind(3, action.uid);
  st.bindNoCopy(4, action.command);
  st.bindNoCopy(5, action.kind);
  st.bindNoCopy(6, action.address);
  bind_optional_time(st, 7, action.until);
  st.bindNoCopy(8, action.reason);
  st.bindNoCopy(9, action.result);
  st.bindNoCopy(10, action.detail);
  st.exec();
}

void save_operator_allow(SQLite::Database& db, const decision::operator_allow_entry& entry) {
  SQLite::Statement st(db, R"sql(
    INSERT INTO operator_allow (address, kind, until, created_at, user, reason)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6)
    ON CONFLICT (address, kind) DO UPDATE SET
      until = excluded.until,
      created_at = excluded.created_at,
      user = excluded.user,
      reason = excluded.reason)sql");
  const std::string kind{allow_kind_text(entry.kind)};
  st.bindNoCopy(1, entry.address);
  st.bindNoCopy(2, kind);
  bind_optional_time(st, 3, entry.until);
  st.bind(4, to_unix_seconds(entry.created_at));
  st.bindNoCopy(5, entry.user);
  st.bindNoCopy(6, entry.reason);
  st.exec();
}

void delete_operator_allow(SQLite::Database& db, std::string_view address,
                           decision::allow_kind kind) {
  SQLite::Statement st(db, "DELETE FROM operator_allow WHERE address = ?1 AND kind = ?2");
  st.bind(1, std::string{address});
  st.bind(2, std::string{allow_kind_text(kind)});
  st.exec();
}

void prune_operator_rows(SQLite::Database& db, time_point now, std::chrono::seconds retention) {
  SQLite::Statement actions(db, "DELETE FROM operator_action WHERE at < ?1");
  actions.bind(1, to_unix_seconds(now) - retention.count());
  actions.exec();
  SQLite::Statement allows(db,
                           "DELETE FROM operator_allow WHERE until IS NOT NULL AND until <= ?1");
  allows.bind(1, to_unix_seconds(now));
  allows.exec();
}

std::vector<decision::operator_allow_entry> load_operator_allows(SQLite::Database& db,
                                                                 time_point now) {
  SQLite::Statement st(db, R"sql(
    SELECT address, kind, until, created_at, user, reason FROM operator_allow
     WHERE until IS NULL OR until > ?1
     ORDER BY kind, address)sql");
  st.bind(1, to_unix_seconds(now));
  std::vector<decision::operator_allow_entry> entries;
  while (st.executeStep()) {
    decision::operator_allow_entry entry;
    entry.address = st.getColumn(0).getString();
    entry.kind = allow_kind_from(st.getColumn(1).getText());
    entry.until = optional_time(st.getColumn(2));
    entry.created_at = from_unix_seconds(st.getColumn(3).getInt64());
    entry.user = st.getColumn(4).getString();
    entry.reason = st.getColumn(5).getString();
    entries.push_back(std::move(entry));
  }
  return entries;
}

std::vector<decision::counter_reset> load_counter_resets(SQLite::Database& db, time_point now) {
  SQLite::Statement st(db, R"sql(
    SELECT address, max(at) FROM operator_action
     WHERE at >= ?1 AND command IN ('reset', 'release') AND result = 'ok' AND address <> ''
     GROUP BY address ORDER BY address)sql");
  st.bind(1, to_unix_seconds(now) - std::int64_t{25} * 3600);
  std::vector<decision::counter_reset> resets;
  while (st.executeStep()) {
    resets.push_back({st.getColumn(0).getString(), from_unix_seconds(st.getColumn(1).getInt64())});
  }
  return resets;
}

page<operator_action> list_operator_actions(SQLite::Database& db, const review_window& window,
                                            std::string_view address, std::size_t limit) {
  // ?3 = '' matches every address: one statement for the whole log and for one address.
  constexpr const char* matching =
      " FROM operator_action WHERE at >= ?1 AND at < ?2"
      " AND (?3 = '' OR address = ?3)";
  page<operator_action> result;
  SQLite::Statement count(db, std::string{"SELECT count(*)"} + matching);
  count.bind(1, window.from);
  count.bind(2, window.until);
  count.bind(3, std::string{address});
  if (count.executeStep()) result.total = count.getColumn(0).getInt64();
  SQLite::Statement st(db, std::string{"SELECT id, at, user, uid, command, kind, address, until,"
                                       " reason, result, detail"} +
                               matching + " ORDER BY at DESC, id DESC LIMIT ?4");
  st.bind(1, window.from);
  st.bind(2, window.until);
  st.bind(3, std::string{address});
  st.bind(4, limit == 0 ? std::int64_t{-1}
                        : static_cast<std::int64_t>(std::min<std::size_t>(
                              limit, std::numeric_limits<std::int64_t>::max())));
  while (st.executeStep()) {
    operator_action a;
    a.id = st.getColumn(0).getInt64();
    a.at = from_unix_seconds(st.getColumn(1).getInt64());
    a.user = st.getColumn(2).getString();
    a.uid = st.getColumn(3).getInt64();
    a.command = st.getColumn(4).getString();
    a.kind = st.getColumn(5).getString();
    a.address = st.getColumn(6).getString();
    a.until = optional_time(st.getColumn(7));
    a.reason = st.getColumn(8).getString();
    a.result = st.getColumn(9).getString();
    a.detail = st.getColumn(10).getString();
    result.rows.push_back(std::move(a));
  }
  return result;
}

}  // namespace rcptguard::store
