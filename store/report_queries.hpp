// Read-only queries behind `rcptguard report`: the episodes, verdicts, hourly history and spool
// evidence of a period [from, until). Parameterised SELECTs only; they take a connection from
// open_read_only(), so a report can never change the database. Separate from review.hpp, whose
// views answer other questions.
#pragma once

#include <SQLiteCpp/Database.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "decision/events.hpp"

namespace rcptguard::store {

// Times are Unix seconds (UTC). An hour belongs to the period when its start lies in
// [hour of from, until).

struct report_episode_row {
  std::int64_t id = 0;
  std::string recipient;
  std::int64_t started = 0;
  std::int64_t updated = 0;
  std::optional<std::int64_t> ended_at;  ///< empty while open
  std::string peak_level;
  double peak_score = 0.0;
  std::string peak_window;
  double peak_observed = 0.0;
  double peak_baseline = 0.0;
  std::string summary;
  std::int64_t verdicts = 0;  ///< flagged requests of the recipient during the episode
  std::string cluster_id;     ///< the flood's id on every node (cluster store); empty without
};

/// Episodes active in the period (started before `until`, ended or last updated at or after
/// `from`), oldest start first.
std::vector<report_episode_row> report_episodes(SQLite::Database& db, std::int64_t from,
                                                std::int64_t until);

/// Flagged requests (all recipients) per UTC day of the period, days without any left out.
/// One pass over the flagged table, which has no index on time: fine for a report.
std::vector<std::pair<std::int64_t, std::int64_t>> report_flagged_per_day(SQLite::Database& db,
                                                                          std::int64_t from,
                                                                          std::int64_t until);

/// Messages in the period: per recipient-hour the larger of attempted and accepted.
std::int64_t report_messages(SQLite::Database& db, std::int64_t from, std::int64_t until);

/// The recipients with mail in the period, by name, so several nodes' can be counted once.
std::vector<std::string> report_recipients(SQLite::Database& db, std::int64_t from,
                                           std::int64_t until);

/// Recipients with the most messages in the period (`by_peak_hour` false), or with the largest
/// single hour (true); at most `limit`. The candidates for the deviation table.
std::vector<std::string> report_busiest(SQLite::Database& db, std::int64_t from, std::int64_t until,
                                        bool by_peak_hour, std::size_t limit);

/// A recipient's hourly rows from `from` (rounded down to its hour) to before `until`,
/// ascending: the baseline model's input, with the flags it needs.
std::vector<decision::hourly_count> report_history(SQLite::Database& db,
                                                   const std::string& recipient, std::int64_t from,
                                                   std::int64_t until);

/// Flagged requests to a recipient per hour, by what was answered.
struct report_flagged_hour {
  std::int64_t hour_start = 0;
  std::int64_t warn = 0;   ///< verdict level warn
  std::int64_t defer = 0;  ///< level defer; in monitor mode the WARN sent instead of a DEFER
  std::int64_t flag = 0;   ///< delivered with the flag header (enforce_action = "flag")
};

std::vector<report_flagged_hour> report_flagged_hours(SQLite::Database& db,
                                                      const std::string& recipient,
                                                      std::int64_t from, std::int64_t until);

struct report_reason_row {
  std::string name;
  double weight = 0.0;
  double observed = 0.0;
  double baseline = 0.0;
  std::string detail;
};

struct report_explanation_row {
  std::int64_t id = 0;
  std::int64_t at = 0;
  std::string level;
  bool monitor_only = false;
  double score = 0.0;
  std::string action_text;
  std::string sender;
  std::string client;
  std::vector<report_reason_row> reasons;  ///< in the engine's order
};

/// The recipient's explanations in the period, oldest first, at most `limit`.
std::vector<report_explanation_row> report_explanations(SQLite::Database& db,
                                                        const std::string& recipient,
                                                        std::int64_t from, std::int64_t until,
                                                        std::size_t limit);

/// How many explanations the recipient has in the period.
std::int64_t report_explanation_count(SQLite::Database& db, const std::string& recipient,
                                      std::int64_t from, std::int64_t until);

struct report_party_row {
  std::string text;  ///< a sender ('' the null sender) or a client
  std::int64_t requests = 0;
};

/// Senders (`clients` false) or clients (true) of the recipient's flagged requests in the
/// period, most requests first, at most `limit`.
std::vector<report_party_row> report_top_parties(SQLite::Database& db, const std::string& recipient,
                                                 std::int64_t from, std::int64_t until,
                                                 bool clients, std::size_t limit);

struct report_evidence_row {
  std::string sha256;
  std::string mailbox;
  std::int64_t repeats = 0;
  std::int64_t size = 0;
  std::string filenames;
  std::int64_t window_start = 0;  ///< first copy stored
  std::int64_t window_end = 0;    ///< last copy stored
};

/// Repeated-attachment evidence for the recipient whose copies were stored in the period,
/// most copies first, at most `limit`.
std::vector<report_evidence_row> report_evidence(SQLite::Database& db, const std::string& recipient,
                                                 std::int64_t from, std::int64_t until,
                                                 std::size_t limit);

/// Known correspondents of the recipient (senders it exchanged mail with, all that are kept).
std::int64_t report_correspondents(SQLite::Database& db, const std::string& recipient);

}  // namespace rcptguard::store
