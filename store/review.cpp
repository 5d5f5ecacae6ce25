// The review queries; each is one or a few parameterised SELECTs over the tables and views.
#include "store/review.hpp"

#include <SQLiteCpp/Statement.h>

#include <algorithm>
#include <array>
#include <ctime>
#include <limits>
#include <map>

#include "store/delta.hpp"

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

  // Flagged requests with the explanation in force for each: its own when it is one (same
  // second, sender, client and level), else the recipient's latest at or before it. Explanations
  // change rarely, so each is read once.
  SQLite::Statement flagged(db, R"sql(
    SELECT f.at, s.text, c.text, f.code, f.requests,
           COALESCE(
             (SELECT e.id FROM explanation e
               WHERE e.recipient = ?1 AND e.at = f.at AND e.sender = s.text
                 AND e.client = c.text
                 AND e.level = CASE f.code & 3 WHEN 2 THEN 'defer' ELSE 'warn' END
               ORDER BY e.id DESC LIMIT 1),
             (SELECT e.id FROM explanation e WHERE e.recipient = ?1 AND e.at <= f.at
               ORDER BY e.at DESC, e.id DESC LIMIT 1))
      FROM flagged f
      JOIN party s ON s.id = f.sender
      JOIN party c ON c.id = f.client
     WHERE f.recipient = (SELECT id FROM name WHERE text = ?1) AND f.at >= ?2
     ORDER BY f.at DESC, f.sender DESC, f.client DESC, f.code DESC
     LIMIT ?3)sql");
  SQLite::Statement explanation(db, "SELECT score, action_text FROM explanation WHERE id = ?1");
  SQLite::Statement reasons(db, R"sql(
    SELECT name, weight, observed, baseline, detail FROM explanation_reason
     WHERE explanation_id = ?1 ORDER BY ordinal)sql");
  flagged.bind(1, recipient);
  flagged.bind(2, from);
  flagged.bind(3, to_i64(verdict_limit));
  std::map<std::int64_t, verdict_row> explained;  // explanation id -> its story
  const auto story = [&](std::int64_t id) -> const verdict_row& {
    auto [it, inserted] = explained.try_emplace(id);
    if (!inserted) return it->second;
    verdict_row& v = it->second;
    v.id = id;
    explanation.reset();
    explanation.bind(1, id);
    if (explanation.executeStep()) {
      v.score = explanation.getColumn(0).getDouble();
      v.action_text = explanation.getColumn(1).getString();
    }
    reasons.reset();
    reasons.bind(1, id);
    while (reasons.executeStep()) {
      v.reasons.push_back({reasons.getColumn(0).getString(), reasons.getColumn(1).getDouble(),
                           reasons.getColumn(2).getDouble(), reasons.getColumn(3).getDouble(),
                           reasons.getColumn(4).getString()});
    }
    return v;
  };
  while (flagged.executeStep()) {
    verdict_row v;
    if (!flagged.isColumnNull(5)) v = story(flagged.getColumn(5).getInt64());
    v.at = flagged.getColumn(0).getInt64();
    v.recipient = recipient;
    v.sender = flagged.getColumn(1).getString();
    v.client = flagged.getColumn(2).getString();
    const auto code = static_cast<std::uint8_t>(flagged.getColumn(3).getInt());
    v.level = code_level(code) == decision::verdict_level::defer ? "defer" : "warn";
    v.monitor_only = code_monitor_only(code);
    v.source = code_source(code) == decision::event_source::log ? "log" : "policy";
    v.requests = flagged.getColumn(4).getInt64();
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
           (SELECT COALESCE(sum(f.requests), 0) FROM flagged f
             WHERE f.recipient = (SELECT id FROM name WHERE text = h.recipient) AND f.at >= ?1)
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
