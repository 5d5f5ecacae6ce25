// Read-only queries behind `rcptguard review`: alerts, one recipient's story, top recipients.
// They take a connection from open_read_only(), so reviewing can never change the database.
#pragma once

#include <SQLiteCpp/Database.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/time.hpp"

namespace rcptguard::store {

// Times below are Unix seconds (UTC); format_utc() renders them.

struct reason_row {
  std::string name;
  double weight = 0.0;
  double observed = 0.0;
  double baseline = 0.0;
  std::string detail;
};

/// One flagged request (or several identical ones within a second) with the explanation in
/// force for it: the score, action text and reasons the recipient's story had then.
struct verdict_row {
  std::int64_t id = 0;  ///< of the explanation; 0 when none is stored (pruned)
  std::int64_t at = 0;
  std::string recipient;
  std::string sender;
  std::string client;
  std::string level;  ///< "warn" or "defer"
  /// Monitor mode: level is what enforce mode would have answered, action_text what was sent.
  bool monitor_only = false;
  double score = 0.0;
  std::string action_text;
  std::string source;  ///< "policy" or "log"
  std::vector<reason_row> reasons;
  std::int64_t requests = 1;  ///< identical requests in the same second
};

struct alert_row {
  std::int64_t id = 0;
  std::string recipient;
  std::int64_t started = 0;
  std::int64_t updated = 0;
  std::optional<std::int64_t> ended_at;  ///< empty while the episode is open
  std::string peak_level;
  double peak_score = 0.0;
  std::string peak_window;
  double peak_observed = 0.0;
  double peak_baseline = 0.0;
  std::string summary;
  std::string source;
  std::int64_t verdicts = 0;  ///< verdicts for the recipient during the episode
};

struct hourly_row {
  std::int64_t hour_start = 0;
  std::int64_t accepted = 0;
  std::int64_t attempted = 0;
  std::int64_t distinct_senders = 0;
  std::int64_t bytes = 0;
};

struct recipient_report {
  std::string recipient;
  std::vector<hourly_row> hours;      ///< ascending
  std::vector<verdict_row> verdicts;  ///< newest first, at most verdict_limit
  std::vector<alert_row> episodes;    ///< newest first
  std::int64_t correspondents = 0;    ///< known senders of this recipient
};

struct top_recipient_row {
  std::string recipient;
  std::int64_t accepted = 0;
  std::int64_t attempted = 0;
  std::int64_t bytes = 0;
  std::int64_t peak_hourly_senders = 0;
  std::int64_t active_hours = 0;
  std::int64_t verdicts = 0;
};

/// Episodes active at or after `since` (updated since then), newest start first.
std::vector<alert_row> list_alerts(SQLite::Database& db, time_point since, std::size_t limit);

/// Everything recorded about one (normalised) recipient from `since` on.
recipient_report recipient_detail(SQLite::Database& db, const std::string& recipient,
                                  time_point since, std::size_t verdict_limit = 500);

/// Recipients by accepted messages in the hours from `since` on (the hour containing `since`
/// included), most first.
std::vector<top_recipient_row> top_recipients(SQLite::Database& db, time_point since,
                                              std::size_t limit);

/// "2024-05-01T13:00:00Z".
std::string format_utc(std::int64_t unix_seconds);

}  // namespace rcptguard::store
