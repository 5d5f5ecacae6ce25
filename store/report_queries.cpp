// The report queries (see report_queries.hpp); each is one parameterised SELECT.
#include "store/report_queries.hpp"

#include <SQLiteCpp/Statement.h>

#include <algorithm>
#include <limits>

#include "store/delta.hpp"

namespace rcptguard::store {
namespace {

constexpr std::int64_t hour = 3600;
constexpr std::int64_t day = 86400;

std::int64_t to_i64(std::size_t v) {
  return static_cast<std::int64_t>(
      std::min<std::size_t>(v, std::numeric_limits<std::int64_t>::max()));
}

std::int64_t floor_to(std::int64_t t, std::int64_t unit) {
  const std::int64_t rem = t % unit;
  return rem < 0 ? t - rem - unit : t - rem;
}

std::uint32_t clamp_u32(std::int64_t v) {
  return static_cast<std::uint32_t>(
      std::clamp<std::int64_t>(v, 0, std::numeric_limits<std::uint32_t>::max()));
}

}  // namespace

std::vector<report_episode_row> report_episodes(SQLite::Database& db, std::int64_t from,
                                                std::int64_t until) {
  SQLite::Statement st(db, R"sql(
    SELECT e.id, e.recipient, e.started, e.updated, e.ended_at, e.peak_level, e.peak_score,
           e.peak_window, e.peak_observed, e.peak_baseline, e.summary, e.cluster_id,
           (SELECT COALESCE(sum(f.requests), 0) FROM flagged f
             WHERE f.recipient = (SELECT id FROM name WHERE text = e.recipient)
               AND f.at BETWEEN e.started AND COALESCE(e.ended_at, e.updated))
      FROM episode e
     WHERE e.started < ?2 AND COALESCE(e.ended_at, e.updated) >= ?1
     ORDER BY e.started, e.id)sql");
  st.bind(1, from);
  st.bind(2, until);
  std::vector<report_episode_row> rows;
  while (st.executeStep()) {
    report_episode_row e;
    e.id = st.getColumn(0).getInt64();
    e.recipient = st.getColumn(1).getString();
    e.started = st.getColumn(2).getInt64();
    e.updated = st.getColumn(3).getInt64();
    if (!st.isColumnNull(4)) e.ended_at = st.getColumn(4).getInt64();
    e.peak_level = st.getColumn(5).getString();
    e.peak_score = st.getColumn(6).getDouble();
    e.peak_window = st.getColumn(7).getString();
    e.peak_observed = st.getColumn(8).getDouble();
    e.peak_baseline = st.getColumn(9).getDouble();
    e.summary = st.getColumn(10).getString();
    e.cluster_id = st.getColumn(11).getString();
    e.verdicts = st.getColumn(12).getInt64();
    rows.push_back(std::move(e));
  }
  return rows;
}

std::vector<std::pair<std::int64_t, std::int64_t>> report_flagged_per_day(SQLite::Database& db,
                                                                          std::int64_t from,
                                                                          std::int64_t until) {
  SQLite::Statement st(db, R"sql(
    SELECT at - (at % ?3), sum(requests) FROM flagged
     WHERE at >= ?1 AND at < ?2 GROUP BY 1 ORDER BY 1)sql");
  st.bind(1, from);
  st.bind(2, until);
  st.bind(3, day);
  std::vector<std::pair<std::int64_t, std::int64_t>> rows;
  while (st.executeStep()) {
    rows.emplace_back(st.getColumn(0).getInt64(), st.getColumn(1).getInt64());
  }
  return rows;
}

std::int64_t report_messages(SQLite::Database& db, std::int64_t from, std::int64_t until) {
  SQLite::Statement st(db, R"sql(
    SELECT COALESCE(sum(max(attempted, accepted)), 0)
      FROM recipient_hourly WHERE hour_start >= ?1 AND hour_start < ?2)sql");
  st.bind(1, floor_to(from, hour));
  st.bind(2, until);
  return st.executeStep() ? st.getColumn(0).getInt64() : 0;
}

std::vector<std::string> report_recipients(SQLite::Database& db, std::int64_t from,
                                           std::int64_t until) {
  SQLite::Statement st(db, R"sql(
    SELECT DISTINCT recipient FROM recipient_hourly WHERE hour_start >= ?1 AND hour_start < ?2)sql");
  st.bind(1, floor_to(from, hour));
  st.bind(2, until);
  std::vector<std::string> rows;
  while (st.executeStep()) rows.push_back(st.getColumn(0).getString());
  return rows;
}

std::vector<std::string> report_busiest(SQLite::Database& db, std::int64_t from, std::int64_t until,
                                        bool by_peak_hour, std::size_t limit) {
  // Two fixed texts, chosen by a flag: nothing of the input reaches the SQL.
  SQLite::Statement st(db, by_peak_hour ? R"sql(
    SELECT recipient, max(max(attempted, accepted)) AS v FROM recipient_hourly
     WHERE hour_start >= ?1 AND hour_start < ?2
     GROUP BY recipient ORDER BY v DESC, recipient LIMIT ?3)sql"
                                        : R"sql(
    SELECT recipient, sum(max(attempted, accepted)) AS v FROM recipient_hourly
     WHERE hour_start >= ?1 AND hour_start < ?2
     GROUP BY recipient ORDER BY v DESC, recipient LIMIT ?3)sql");
  st.bind(1, floor_to(from, hour));
  st.bind(2, until);
  st.bind(3, to_i64(limit));
  std::vector<std::string> rows;
  while (st.executeStep()) rows.push_back(st.getColumn(0).getString());
  return rows;
}

std::vector<decision::hourly_count> report_history(SQLite::Database& db,
                                                   const std::string& recipient, std::int64_t from,
                                                   std::int64_t until) {
  SQLite::Statement st(db, R"sql(
    SELECT hour_start, accepted, attempted, distinct_senders, peak_minute, peak_ten_minutes,
           in_episode
      FROM recipient_hourly
     WHERE recipient = ?1 AND hour_start >= ?2 AND hour_start < ?3 ORDER BY hour_start)sql");
  st.bind(1, recipient);
  st.bind(2, floor_to(from, hour));
  st.bind(3, until);
  std::vector<decision::hourly_count> rows;
  while (st.executeStep()) {
    rows.push_back({st.getColumn(0).getInt64(), clamp_u32(st.getColumn(1).getInt64()),
                    clamp_u32(st.getColumn(2).getInt64()), clamp_u32(st.getColumn(3).getInt64()),
                    clamp_u32(st.getColumn(4).getInt64()), clamp_u32(st.getColumn(5).getInt64()),
                    st.getColumn(6).getInt() != 0});
  }
  return rows;
}

std::vector<report_flagged_hour> report_flagged_hours(SQLite::Database& db,
                                                      const std::string& recipient,
                                                      std::int64_t from, std::int64_t until) {
  // Grouped by the stored code; what a code means is delta.hpp's business.
  SQLite::Statement st(db, R"sql(
    SELECT at - (at % ?4), code, sum(requests) FROM flagged
     WHERE recipient = (SELECT id FROM name WHERE text = ?1) AND at >= ?2 AND at < ?3
     GROUP BY 1, 2 ORDER BY 1)sql");
  st.bind(1, recipient);
  st.bind(2, from);
  st.bind(3, until);
  st.bind(4, hour);
  std::vector<report_flagged_hour> rows;
  while (st.executeStep()) {
    const std::int64_t start = st.getColumn(0).getInt64();
    if (rows.empty() || rows.back().hour_start != start) rows.push_back({start, 0, 0, 0});
    const auto code = static_cast<std::uint8_t>(st.getColumn(1).getInt());
    const std::int64_t requests = st.getColumn(2).getInt64();
    if (code_header_flagged(code)) {
      rows.back().flag += requests;
    } else if (code_level(code) == decision::verdict_level::defer) {
      rows.back().defer += requests;
    } else {
      rows.back().warn += requests;
    }
  }
  return rows;
}

std::vector<report_explanation_row> report_explanations(SQLite::Database& db,
                                                        const std::string& recipient,
                                                        std::int64_t from, std::int64_t until,
                                                        std::size_t limit) {
  SQLite::Statement st(db, R"sql(
    SELECT id, at, level, monitor_only, score, action_text, sender, client FROM explanation
     WHERE recipient = ?1 AND at >= ?2 AND at < ?3 ORDER BY at, id LIMIT ?4)sql");
  SQLite::Statement reasons(db, R"sql(
    SELECT name, weight, observed, baseline, detail FROM explanation_reason
     WHERE explanation_id = ?1 ORDER BY ordinal)sql");
  st.bind(1, recipient);
  st.bind(2, from);
  st.bind(3, until);
  st.bind(4, to_i64(limit));
  std::vector<report_explanation_row> rows;
  while (st.executeStep()) {
    report_explanation_row x;
    x.id = st.getColumn(0).getInt64();
    x.at = st.getColumn(1).getInt64();
    x.level = st.getColumn(2).getString();
    x.monitor_only = st.getColumn(3).getInt() != 0;
    x.score = st.getColumn(4).getDouble();
    x.action_text = st.getColumn(5).getString();
    x.sender = st.getColumn(6).getString();
    x.client = st.getColumn(7).getString();
    reasons.reset();
    reasons.bind(1, x.id);
    while (reasons.executeStep()) {
      x.reasons.push_back({reasons.getColumn(0).getString(), reasons.getColumn(1).getDouble(),
                           reasons.getColumn(2).getDouble(), reasons.getColumn(3).getDouble(),
                           reasons.getColumn(4).getString()});
    }
    rows.push_back(std::move(x));
  }
  return rows;
}

std::int64_t report_explanation_count(SQLite::Database& db, const std::string& recipient,
                                      std::int64_t from, std::int64_t until) {
  SQLite::Statement st(db, R"sql(
    SELECT count(*) FROM explanation WHERE recipient = ?1 AND at >= ?2 AND at < ?3)sql");
  st.bind(1, recipient);
  st.bind(2, from);
  st.bind(3, until);
  return st.executeStep() ? st.getColumn(0).getInt64() : 0;
}

std::vector<report_party_row> report_top_parties(SQLite::Database& db, const std::string& recipient,
                                                 std::int64_t from, std::int64_t until,
                                                 bool clients, std::size_t limit) {
  // The same text may sit under several party ids (the writer interns without an index), so
  // the counts are grouped by text.
  SQLite::Statement st(db, clients ? R"sql(
    SELECT p.text, sum(f.requests) AS n FROM flagged f JOIN party p ON p.id = f.client
     WHERE f.recipient = (SELECT id FROM name WHERE text = ?1) AND f.at >= ?2 AND f.at < ?3
     GROUP BY p.text ORDER BY n DESC, p.text LIMIT ?4)sql"
                                   : R"sql(
    SELECT p.text, sum(f.requests) AS n FROM flagged f JOIN party p ON p.id = f.sender
     WHERE f.recipient = (SELECT id FROM name WHERE text = ?1) AND f.at >= ?2 AND f.at < ?3
     GROUP BY p.text ORDER BY n DESC, p.text LIMIT ?4)sql");
  st.bind(1, recipient);
  st.bind(2, from);
  st.bind(3, until);
  st.bind(4, to_i64(limit));
  std::vector<report_party_row> rows;
  while (st.executeStep()) {
    rows.push_back({st.getColumn(0).getString(), st.getColumn(1).getInt64()});
  }
  return rows;
}

std::vector<report_evidence_row> report_evidence(SQLite::Database& db, const std::string& recipient,
                                                 std::int64_t from, std::int64_t until,
                                                 std::size_t limit) {
  // Later scans update a row in place; the newest scan's numbers are the ones kept.
  SQLite::Statement st(db, R"sql(
    SELECT sha256, mailbox, repeats, size, filenames, window_start, window_end
      FROM spool_evidence
     WHERE recipient = ?1 AND window_end >= ?2 AND window_start < ?3
     ORDER BY repeats DESC, window_start LIMIT ?4)sql");
  st.bind(1, recipient);
  st.bind(2, from);
  st.bind(3, until);
  st.bind(4, to_i64(limit));
  std::vector<report_evidence_row> rows;
  while (st.executeStep()) {
    rows.push_back({st.getColumn(0).getString(), st.getColumn(1).getString(),
                    st.getColumn(2).getInt64(), st.getColumn(3).getInt64(),
                    st.getColumn(4).getString(), st.getColumn(5).getInt64(),
                    st.getColumn(6).getInt64()});
  }
  return rows;
}

std::int64_t report_correspondents(SQLite::Database& db, const std::string& recipient) {
  SQLite::Statement st(db, "SELECT count(*) FROM correspondent WHERE recipient = ?1");
  st.bind(1, recipient);
  return st.executeStep() ? st.getColumn(0).getInt64() : 0;
}

}  // namespace rcptguard::store
