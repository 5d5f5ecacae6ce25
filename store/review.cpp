// The review queries; each is one or a few parameterised SELECTs over the tables and views.
#include "store/review.hpp"

#include <SQLiteCpp/Statement.h>

#include <algorithm>
#include <array>
#include <ctime>
#include <limits>

namespace rcptguard::store {
namespace {

std::int64_t to_i64(std::size_t v) {
  return static_cast<std::int64_t>(
      std::min<std::size_t>(v, std::numeric_limits<std::int64_t>::max()));
}

std::int64_t hour_of(time_point t) {
  const std::int64_t s = to_unix_seconds(t);
  const std::int64_t rem = s % 3600;
  return rem < 0 ? s - rem - 3600 : s - rem;
}

// Column order shared by both alert queries below.
constexpr const char* alert_columns = R"sql(
  SELECT id, recipient, started, updated, ended_at, peak_level, peak_score, peak_window,
         peak_observed, peak_baseline, summary, source, verdicts FROM v_alerts)sql";

alert_row read_alert(const SQLite::Statement& st) {
  alert_row a;
  a.id = st.getColumn(0).getInt64();
  a.recipient = st.getColumn(1).getString();
  a.started = st.getColumn(2).getInt64();
  a.updated = st.getColumn(3).getInt64();
  if (!st.isColumnNull(4)) a.ended_at = st.getColumn(4).getInt64();
  a.peak_level = st.getColumn(5).getString();
  a.peak_score = st.getColumn(6).getDouble();
  a.peak_window = st.getColumn(7).getString();
  a.peak_observed = st.getColumn(8).getDouble();
  a.peak_baseline = st.getColumn(9).getDouble();
  a.summary = st.getColumn(10).getString();
  a.source = st.getColumn(11).getString();
  a.verdicts = st.getColumn(12).getInt64();
  return a;
}

}  // namespace

std::vector<alert_row> list_alerts(SQLite::Database& db, time_point since, std::size_t limit) {
  SQLite::Statement st(db, std::string{alert_columns} +
                               " WHERE updated >= ?1 ORDER BY started DESC, id DESC LIMIT ?2");
  st.bind(1, to_unix_seconds(since));
  st.bind(2, to_i64(limit));
  std::vector<alert_row> rows;
  while (st.executeStep()) rows.push_back(read_alert(st));
  return rows;
}

recipient_report recipient_detail(SQLite::Database& db, const std::string& recipient,
                                  time_point since, std::size_t verdict_limit) {
  recipient_report report;
  report.recipient = recipient;
  const std::int64_t from = to_unix_seconds(since);

  SQLite::Statement hours(db, R"sql(
    SELECT hour_start, accepted, attempted, distinct_senders, bytes FROM recipient_hourly
     WHERE recipient = ?1 AND hour_start >= ?2 ORDER BY hour_start)sql");
  hours.bind(1, recipient);
  hours.bind(2, hour_of(since));
  while (hours.executeStep()) {
    report.hours.push_back({hours.getColumn(0).getInt64(), hours.getColumn(1).getInt64(),
                            hours.getColumn(2).getInt64(), hours.getColumn(3).getInt64(),
                            hours.getColumn(4).getInt64()});
  }

  // A read-only connection never migrates, so a file the daemon has not upgraded yet (v1) is
  // read without the v2 column.
  const bool has_monitor_only = db.execAndGet("PRAGMA user_version").getInt() >= 2;
  SQLite::Statement verdicts(
      db, std::string{"SELECT id, at, sender, client, level, score, action_text, source, "} +
              (has_monitor_only ? "monitor_only" : "0") +
              " FROM verdict WHERE recipient = ?1 AND at >= ?2 ORDER BY at DESC, id DESC LIMIT ?3");
  SQLite::Statement reasons(db, R"sql(
    SELECT name, weight, observed, baseline, detail FROM verdict_reason
     WHERE verdict_id = ?1 ORDER BY ordinal)sql");
  verdicts.bind(1, recipient);
  verdicts.bind(2, from);
  verdicts.bind(3, to_i64(verdict_limit));
  while (verdicts.executeStep()) {
    verdict_row v;
    v.id = verdicts.getColumn(0).getInt64();
    v.at = verdicts.getColumn(1).getInt64();
    v.recipient = recipient;
    v.sender = verdicts.getColumn(2).getString();
    v.client = verdicts.getColumn(3).getString();
    v.level = verdicts.getColumn(4).getString();
    v.score = verdicts.getColumn(5).getDouble();
    v.action_text = verdicts.getColumn(6).getString();
    v.source = verdicts.getColumn(7).getString();
    v.monitor_only = verdicts.getColumn(8).getInt() != 0;
    reasons.reset();
    reasons.bind(1, v.id);
    while (reasons.executeStep()) {
      v.reasons.push_back({reasons.getColumn(0).getString(), reasons.getColumn(1).getDouble(),
                           reasons.getColumn(2).getDouble(), reasons.getColumn(3).getDouble(),
                           reasons.getColumn(4).getString()});
    }
    report.verdicts.push_back(std::move(v));
  }

  SQLite::Statement episodes(db, std::string{alert_columns} +
                                     " WHERE recipient = ?1 AND updated >= ?2"
                                     " ORDER BY started DESC, id DESC");
  episodes.bind(1, recipient);
  episodes.bind(2, from);
  while (episodes.executeStep()) report.episodes.push_back(read_alert(episodes));

  SQLite::Statement known(db, "SELECT count(*) FROM correspondent WHERE recipient = ?1");
  known.bind(1, recipient);
  if (known.executeStep()) report.correspondents = known.getColumn(0).getInt64();
  return report;
}

std::vector<top_recipient_row> top_recipients(SQLite::Database& db, time_point since,
                                              std::size_t limit) {
  SQLite::Statement st(db, R"sql(
    SELECT h.recipient, sum(h.accepted) AS accepted, sum(h.attempted), sum(h.bytes),
           max(h.distinct_senders), count(*),
           (SELECT count(*) FROM verdict v WHERE v.recipient = h.recipient AND v.at >= ?1)
      FROM recipient_hourly h
     WHERE h.hour_start >= ?2
     GROUP BY h.recipient
     ORDER BY accepted DESC, h.recipient
     LIMIT ?3)sql");
  st.bind(1, to_unix_seconds(since));
  st.bind(2, hour_of(since));
  st.bind(3, to_i64(limit));
  std::vector<top_recipient_row> rows;
  while (st.executeStep()) {
    rows.push_back({st.getColumn(0).getString(), st.getColumn(1).getInt64(),
                    st.getColumn(2).getInt64(), st.getColumn(3).getInt64(),
                    st.getColumn(4).getInt64(), st.getColumn(5).getInt64(),
                    st.getColumn(6).getInt64()});
  }
  return rows;
}

std::string format_utc(std::int64_t unix_seconds) {
  const auto t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  if (::gmtime_r(&t, &tm) == nullptr) return "?";
  std::array<char, 32> buf{};
  const std::size_t n = std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return {buf.data(), n};
}

}  // namespace rcptguard::store
