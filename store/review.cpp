// The review queries; each is one or a few parameterised SELECTs over the tables and views.
#include "store/review.hpp"

#include <algorithm>
#include <array>
#include <ctime>
#include <limits>
#include <map>

#include "store/delta.hpp"

namespace rcptguard::store {
namespace {

constexpr std::int64_t no_end = std::numeric_limits<std::int64_t>::max();

std::int64_t to_i64(std::size_t v) {
  return static_cast<std::int64_t>(
      std::min<std::size_t>(v, std::numeric_limits<std::int64_t>::max()));
}

/// SQLite's LIMIT: a negative one is no limit.
std::int64_t sql_limit(std::size_t limit) {
  return limit == 0 ? -1 : to_i64(limit);
}

std::int64_t hour_of(std::int64_t s) {
  const std::int64_t rem = s % 3600;
  return rem < 0 ? s - rem - 3600 : s - rem;
}

std::int64_t hour_of(time_point t) {
  return hour_of(to_unix_seconds(t));
}

// Column order shared by the alert queries below.
constexpr const char* alert_columns = R"sql(
  SELECT id, recipient, started, updated, ended_at, peak_level, peak_score, peak_window,
         peak_observed, peak_baseline, summary, source, verdicts, closed_by, cluster_id FROM v_alerts)sql";

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
  if (!st.isColumnNull(13)) a.closed_by = st.getColumn(13).getString();
  if (!st.isColumnNull(14)) a.cluster_id = st.getColumn(14).getString();
  return a;
}

// What was answered, summed over flagged rows `f` (flagged.code: level in bits 0-1, monitor only
// 4, log 8, flag header 16); read back by read_counts() from column `first` on.
constexpr const char* action_sums = R"sql(
  COALESCE(sum(f.requests), 0),
  COALESCE(sum(CASE WHEN (f.code & 16) = 0 AND ((f.code & 3) <> 2 OR (f.code & 4) <> 0)
                    THEN f.requests ELSE 0 END), 0),
  COALESCE(sum(CASE WHEN (f.code & 16) = 0 AND (f.code & 3) = 2 AND (f.code & 4) = 0
                    THEN f.requests ELSE 0 END), 0),
  COALESCE(sum(CASE WHEN (f.code & 16) <> 0 THEN f.requests ELSE 0 END), 0),
  COALESCE(sum(CASE WHEN (f.code & 16) = 0 AND (f.code & 3) = 2 AND (f.code & 4) <> 0
                    THEN f.requests ELSE 0 END), 0))sql";

action_counts read_counts(const SQLite::Statement& st, int first) {
  return {st.getColumn(first).getInt64(), st.getColumn(first + 1).getInt64(),
          st.getColumn(first + 2).getInt64(), st.getColumn(first + 3).getInt64(),
          st.getColumn(first + 4).getInt64()};
}

hourly_row read_hour(const SQLite::Statement& st) {
  return {st.getColumn(0).getInt64(), st.getColumn(1).getInt64(),   st.getColumn(2).getInt64(),
          st.getColumn(3).getInt64(), st.getColumn(4).getInt64(),   st.getColumn(5).getInt64(),
          st.getColumn(6).getInt64(), st.getColumn(7).getInt() != 0};
}

/// An explanation's reasons, in the order the engine listed them.
class reason_reader {
 public:
  explicit reason_reader(SQLite::Database& db)
      : select_(db, R"sql(
          SELECT name, weight, observed, baseline, detail FROM explanation_reason
           WHERE explanation_id = ?1 ORDER BY ordinal)sql") {}

  std::vector<reason_row> read(std::int64_t explanation_id) {
    select_.reset();
    select_.bind(1, explanation_id);
    std::vector<reason_row> reasons;
    while (select_.executeStep()) {
      reasons.push_back({select_.getColumn(0).getString(), select_.getColumn(1).getDouble(),
                         select_.getColumn(2).getDouble(), select_.getColumn(3).getDouble(),
                         select_.getColumn(4).getString()});
    }
    return reasons;
  }

 private:
  SQLite::Statement select_;
};

std::int64_t count_of(SQLite::Database& db, const std::string& sql, const std::string& recipient,
                      std::int64_t from, std::int64_t until) {
  SQLite::Statement st(db, sql);
  st.bind(1, recipient);
  st.bind(2, from);
  st.bind(3, until);
  return st.executeStep() ? st.getColumn(0).getInt64() : 0;
}

// Senders or clients of the recipient's flagged requests in the window (`party_column` is
// f.sender or f.client). The same text may sit under several party ids, so rows group by text.
page<party_row> parties(SQLite::Database& db, const std::string& recipient,
                        const review_window& window, std::size_t limit,
                        const std::string& party_column) {
  const std::string from_where = " FROM flagged f JOIN party p ON p.id = " + party_column +
                                 " WHERE f.recipient = (SELECT id FROM name WHERE text = ?1)"
                                 " AND f.at >= ?2 AND f.at < ?3";
  page<party_row> result;
  result.total = count_of(db, "SELECT count(DISTINCT p.text)" + from_where, recipient, window.from,
                          window.until);
  SQLite::Statement st(db, "SELECT p.text, min(f.at), max(f.at)," + std::string{action_sums} +
                               from_where + " GROUP BY p.text ORDER BY 4 DESC, p.text LIMIT ?4");
  st.bind(1, recipient);
  st.bind(2, window.from);
  st.bind(3, window.until);
  st.bind(4, sql_limit(limit));
  while (st.executeStep()) {
    result.rows.push_back({st.getColumn(0).getString(), read_counts(st, 3),
                           st.getColumn(1).getInt64(), st.getColumn(2).getInt64()});
  }
  return result;
}

}  // namespace

std::vector<alert_row> list_alerts(SQLite::Database& db, time_point since, std::size_t limit) {
  return list_alerts(db, review_window{to_unix_seconds(since), no_end}, limit).rows;
}

page<alert_row> list_alerts(SQLite::Database& db, const review_window& window, std::size_t limit) {
  page<alert_row> result;
  SQLite::Statement count(db, R"sql(
    SELECT count(*) FROM episode WHERE (updated >= ?1 OR ended_at IS NULL) AND started < ?2)sql");
  count.bind(1, window.from);
  count.bind(2, window.until);
  if (count.executeStep()) result.total = count.getColumn(0).getInt64();
  SQLite::Statement st(db, std::string{alert_columns} +
                               " WHERE (updated >= ?1 OR ended_at IS NULL) AND started < ?2"
                               " ORDER BY started DESC, id DESC LIMIT ?3");
  st.bind(1, window.from);
  st.bind(2, window.until);
  st.bind(3, sql_limit(limit));
  while (st.executeStep()) result.rows.push_back(read_alert(st));
  return result;
}

recipient_report recipient_detail(SQLite::Database& db, const std::string& recipient,
                                  time_point since, std::size_t verdict_limit) {
  recipient_report report;
  report.recipient = recipient;
  const std::int64_t from = to_unix_seconds(since);

  hourly_reader hours(db);
  report.hours = hours.read(recipient, hour_of(since), no_end);

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
  reason_reader reasons(db);
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
    v.reasons = reasons.read(id);
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
    v.header_flagged = code_header_flagged(code);
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

explain_report explain_recipient(SQLite::Database& db, const std::string& recipient,
                                 const review_window& window, std::size_t limit) {
  explain_report report;
  report.recipient = recipient;

  hourly_reader hours(db);
  report.hours = hours.read(recipient, hour_of(window.from), window.until);

  // Episodes, each with its peak (the highest stored score inside it) and its answers.
  SQLite::Statement episodes(db, std::string{alert_columns} +
                                     " WHERE recipient = ?1 AND started < ?3"
                                     " AND (updated >= ?2 OR ended_at IS NULL)"
                                     " ORDER BY started, id");
  SQLite::Statement peak(db, R"sql(
    SELECT at FROM explanation WHERE recipient = ?1 AND at BETWEEN ?2 AND ?3
     ORDER BY score DESC, at, id LIMIT 1)sql");
  SQLite::Statement answered(db, "SELECT" + std::string{action_sums} + R"sql(
      FROM flagged f
     WHERE f.recipient = (SELECT id FROM name WHERE text = ?1) AND f.at BETWEEN ?2 AND ?3)sql");
  episodes.bind(1, recipient);
  episodes.bind(2, window.from);
  episodes.bind(3, window.until);
  while (episodes.executeStep()) {
    episode_report e;
    e.episode = read_alert(episodes);
    const std::int64_t end = e.episode.ended_at.value_or(e.episode.updated);
    peak.reset();
    peak.bind(1, recipient);
    peak.bind(2, e.episode.started);
    peak.bind(3, end);
    if (peak.executeStep()) e.peak_at = peak.getColumn(0).getInt64();
    answered.reset();
    answered.bind(1, recipient);
    answered.bind(2, e.episode.started);
    answered.bind(3, end);
    if (answered.executeStep()) e.done = read_counts(answered, 0);
    report.episodes.push_back(std::move(e));
  }

  SQLite::Statement all_answered(db, "SELECT" + std::string{action_sums} + R"sql(
      FROM flagged f
     WHERE f.recipient = (SELECT id FROM name WHERE text = ?1) AND f.at >= ?2 AND f.at < ?3)sql");
  all_answered.bind(1, recipient);
  all_answered.bind(2, window.from);
  all_answered.bind(3, window.until);
  if (all_answered.executeStep()) report.done = read_counts(all_answered, 0);

  const std::string explanations_where =
      " FROM explanation WHERE recipient = ?1 AND at >= ?2"
      " AND at < ?3";
  report.explanations.total =
      count_of(db, "SELECT count(*)" + explanations_where, recipient, window.from, window.until);
  SQLite::Statement explanations(
      db, "SELECT id, at, level, monitor_only, score, action_text, source, sender, client" +
              explanations_where + " ORDER BY at, id LIMIT ?4");
  explanations.bind(1, recipient);
  explanations.bind(2, window.from);
  explanations.bind(3, window.until);
  explanations.bind(4, sql_limit(limit));
  reason_reader reasons(db);
  while (explanations.executeStep()) {
    explanation_row x;
    x.id = explanations.getColumn(0).getInt64();
    x.at = explanations.getColumn(1).getInt64();
    x.level = explanations.getColumn(2).getString();
    x.monitor_only = explanations.getColumn(3).getInt() != 0;
    x.score = explanations.getColumn(4).getDouble();
    x.action_text = explanations.getColumn(5).getString();
    x.source = explanations.getColumn(6).getString();
    x.sender = explanations.getColumn(7).getString();
    x.client = explanations.getColumn(8).getString();
    x.reasons = reasons.read(x.id);
    report.explanations.rows.push_back(std::move(x));
  }

  report.senders = parties(db, recipient, window, limit, "f.sender");
  report.clients = parties(db, recipient, window, limit, "f.client");

  const std::string evidence_where =
      " FROM spool_evidence WHERE recipient = ?1"
      " AND window_end >= ?2 AND window_start < ?3";
  report.evidence.total =
      count_of(db, "SELECT count(*)" + evidence_where, recipient, window.from, window.until);
  SQLite::Statement evidence(db,
                             "SELECT mailbox, sha256, repeats, size, filenames, window_start,"
                             " window_end, scanned_at" +
                                 evidence_where +
                                 " ORDER BY repeats DESC, window_start, id"
                                 " LIMIT ?4");
  evidence.bind(1, recipient);
  evidence.bind(2, window.from);
  evidence.bind(3, window.until);
  evidence.bind(4, sql_limit(limit));
  while (evidence.executeStep()) {
    report.evidence.rows.push_back(
        {evidence.getColumn(0).getString(), evidence.getColumn(1).getString(),
         evidence.getColumn(2).getInt64(), evidence.getColumn(3).getInt64(),
         evidence.getColumn(4).getString(), evidence.getColumn(5).getInt64(),
         evidence.getColumn(6).getInt64(), evidence.getColumn(7).getInt64()});
  }

  // Known correspondents as of the window's end.
  SQLite::Statement known_count(
      db, "SELECT count(*) FROM correspondent WHERE recipient = ?1 AND first_seen < ?2");
  known_count.bind(1, recipient);
  known_count.bind(2, window.until);
  if (known_count.executeStep()) report.correspondents.total = known_count.getColumn(0).getInt64();
  SQLite::Statement known(db, R"sql(
    SELECT sender, first_seen, last_seen, messages FROM correspondent
     WHERE recipient = ?1 AND first_seen < ?2
     ORDER BY messages DESC, last_seen DESC, sender LIMIT ?3)sql");
  known.bind(1, recipient);
  known.bind(2, window.until);
  known.bind(3, sql_limit(limit));
  while (known.executeStep()) {
    report.correspondents.rows.push_back(
        {known.getColumn(0).getString(), known.getColumn(1).getInt64(),
         known.getColumn(2).getInt64(), known.getColumn(3).getInt64()});
  }
  return report;
}

std::vector<top_recipient_row> top_recipients(SQLite::Database& db, time_point since,
                                              std::size_t limit) {
  return top_recipients(db, review_window{to_unix_seconds(since), no_end}, limit).rows;
}

page<top_recipient_row> top_recipients(SQLite::Database& db, const review_window& window,
                                       std::size_t limit) {
  page<top_recipient_row> result;
  SQLite::Statement count(db, R"sql(
    SELECT count(DISTINCT recipient) FROM recipient_hourly
     WHERE hour_start >= ?1 AND hour_start < ?2)sql");
  count.bind(1, hour_of(window.from));
  count.bind(2, window.until);
  if (count.executeStep()) result.total = count.getColumn(0).getInt64();

  SQLite::Statement st(db, R"sql(
    SELECT h.recipient, sum(h.accepted) AS accepted, sum(h.attempted), sum(h.bytes),
           max(h.distinct_senders), count(*),
           (SELECT COALESCE(sum(f.requests), 0) FROM flagged f
             WHERE f.recipient = (SELECT id FROM name WHERE text = h.recipient)
               AND f.at >= ?1 AND f.at < ?3),
           sum(max(h.attempted, h.accepted))
      FROM recipient_hourly h
     WHERE h.hour_start >= ?2 AND h.hour_start < ?3
     GROUP BY h.recipient
     ORDER BY accepted DESC, h.recipient
     LIMIT ?4)sql");
  st.bind(1, window.from);
  st.bind(2, hour_of(window.from));
  st.bind(3, window.until);
  st.bind(4, sql_limit(limit));
  while (st.executeStep()) {
    result.rows.push_back({st.getColumn(0).getString(), st.getColumn(1).getInt64(),
                           st.getColumn(2).getInt64(), st.getColumn(3).getInt64(),
                           st.getColumn(4).getInt64(), st.getColumn(5).getInt64(),
                           st.getColumn(6).getInt64(), st.getColumn(7).getInt64()});
  }
  return result;
}

hourly_reader::hourly_reader(SQLite::Database& db)
    : select_(db, R"sql(
        SELECT hour_start, accepted, attempted, distinct_senders, bytes, peak_minute,
               peak_ten_minutes, in_episode
          FROM recipient_hourly
         WHERE recipient = ?1 AND hour_start >= ?2 AND hour_start < ?3 ORDER BY hour_start)sql") {}

std::vector<hourly_row> hourly_reader::read(const std::string& recipient, std::int64_t from,
                                            std::int64_t until) {
  select_.reset();
  select_.bind(1, recipient);
  select_.bind(2, from);
  select_.bind(3, until);
  std::vector<hourly_row> rows;
  while (select_.executeStep()) rows.push_back(read_hour(select_));
  return rows;
}

std::vector<prior_sample> prior_samples(SQLite::Database& db, std::int64_t from,
                                        std::int64_t until) {
  SQLite::Statement st(db, R"sql(
    SELECT recipient, min(hour_start), sum(max(attempted, accepted)), sum(distinct_senders)
      FROM recipient_hourly WHERE hour_start >= ?1 AND hour_start < ?2 GROUP BY recipient)sql");
  st.bind(1, from);
  st.bind(2, until);
  std::vector<prior_sample> samples;
  while (st.executeStep()) {
    samples.push_back({st.getColumn(0).getString(), st.getColumn(1).getInt64(),
                       st.getColumn(2).getInt64(), st.getColumn(3).getInt64()});
  }
  return samples;
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
