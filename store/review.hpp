// Read-only queries behind `rcptguard review`: alerts, one recipient's story, top recipients,
// and the hourly history the review's baseline comparison needs. They take a connection from
// open_read_only(), so reviewing can never change the database.
#pragma once

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/time.hpp"

namespace rcptguard::store {

// Times below are Unix seconds (UTC); format_utc() renders them.

/// The reviewed span [from, until). Hourly counts are kept per whole hour, so queries over them
/// take every hour that overlaps it: from the hour containing `from` to the one containing
/// `until - 1`.
struct review_window {
  std::int64_t from = 0;
  std::int64_t until = 0;
};

/// The rows of a listing, and how many there were before the limit cut it.
template <class Row>
struct page {
  std::vector<Row> rows;
  std::int64_t total = 0;

  bool truncated() const { return static_cast<std::int64_t>(rows.size()) < total; }
};

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
  bool header_flagged = false;  ///< delivered with the flag header instead of deferred
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
  /// Why it ended: "cool_down", "evicted", "stale", "operator"; "" while open or before v8.
  std::string closed_by;
  /// The flood's id across the nodes of a cluster (v9); "" alone.
  std::string cluster_id;
};

struct hourly_row {
  std::int64_t hour_start = 0;
  std::int64_t accepted = 0;
  std::int64_t attempted = 0;
  std::int64_t distinct_senders = 0;
  std::int64_t bytes = 0;
  std::int64_t peak_minute = 0;       ///< largest 1-minute volume of the hour (0: unknown)
  std::int64_t peak_ten_minutes = 0;  ///< largest 10-minute volume (0: unknown)
  bool in_episode = false;            ///< counted inside an alert episode: not learned from
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
  /// Per hour the larger of attempted and accepted (a replayed log knows only deliveries),
  /// summed: the volume the baseline model learns from and judges.
  std::int64_t observed = 0;
};

/// What was answered to a recipient's flagged requests. Each request is exactly one of warned,
/// deferred or flagged; would_defer counts the warned ones that enforce mode would have deferred.
struct action_counts {
  std::int64_t requests = 0;
  std::int64_t warned = 0;       ///< WARN sent (a warn verdict, or any verdict in monitor mode)
  std::int64_t deferred = 0;     ///< the defer action sent
  std::int64_t flagged = 0;      ///< delivered with the flag header (enforce_action = flag)
  std::int64_t would_defer = 0;  ///< monitor mode: defer level, WARN sent
};

/// An episode with what its peak was and what was done while it lasted.
struct episode_report {
  alert_row episode;
  /// The stored explanation with the highest score inside the episode (the earliest of equal
  /// ones); empty when none is kept, then the episode's own peak numbers stand alone.
  std::optional<std::int64_t> peak_at;
  action_counts done;  ///< flagged requests from its start to its end (or last update)
};

/// A stored explanation: the story as it stood from `at` on (first verdict of an episode, each
/// escalation or new peak, each change of reasons).
struct explanation_row {
  std::int64_t id = 0;
  std::int64_t at = 0;
  std::string level;
  bool monitor_only = false;
  double score = 0.0;
  std::string action_text;
  std::string source;
  std::string sender;  ///< of the request that changed the story
  std::string client;
  std::vector<reason_row> reasons;
};

/// A sender or client of flagged requests, with what it was answered.
struct party_row {
  std::string text;
  action_counts done;
  std::int64_t first_at = 0;
  std::int64_t last_at = 0;
};

/// Repeated-attachment evidence of the spool scanner.
struct evidence_row {
  std::string mailbox;
  std::string sha256;
  std::int64_t repeats = 0;
  std::int64_t size = 0;
  std::string filenames;  ///< examples, "; "-separated
  std::int64_t first_stored = 0;
  std::int64_t last_stored = 0;
  std::int64_t scanned_at = 0;
};

struct correspondent_row {
  std::string sender;
  std::int64_t first_seen = 0;
  std::int64_t last_seen = 0;
  std::int64_t messages = 0;
};

/// `rcptguard review explain`: one recipient's story in a window, each list at most `limit`
/// rows (0: all) with its total.
struct explain_report {
  std::string recipient;
  std::vector<hourly_row> hours;           ///< the window's hours with mail, ascending
  std::vector<episode_report> episodes;    ///< overlapping the window (as alerts), oldest first
  page<explanation_row> explanations;      ///< stored in the window, oldest first
  page<party_row> senders;                 ///< of flagged requests, most requests first
  page<party_row> clients;                 ///< likewise
  page<evidence_row> evidence;             ///< overlapping the window, most repeats first
  page<correspondent_row> correspondents;  ///< known before `until`, most messages first
  action_counts done;                      ///< all flagged requests in the window
};

/// Episodes active at or after `since` (updated since then), newest start first.
std::vector<alert_row> list_alerts(SQLite::Database& db, time_point since, std::size_t limit);

/// Episodes overlapping the window (started before its end, and updated at or after its start
/// or still open), newest start first; `limit` 0 lists all.
page<alert_row> list_alerts(SQLite::Database& db, const review_window& window, std::size_t limit);

/// Everything recorded about one (normalised) recipient from `since` on.
recipient_report recipient_detail(SQLite::Database& db, const std::string& recipient,
                                  time_point since, std::size_t verdict_limit = 500);

/// One recipient's story in the window; see explain_report.
explain_report explain_recipient(SQLite::Database& db, const std::string& recipient,
                                 const review_window& window, std::size_t limit);

/// Recipients by accepted messages in the hours from `since` on (the hour containing `since`
/// included), most first.
std::vector<top_recipient_row> top_recipients(SQLite::Database& db, time_point since,
                                              std::size_t limit);

/// Recipients with mail in the window's hours, most accepted first (then by name); verdicts are
/// flagged requests inside the window itself. `limit` 0 lists all.
page<top_recipient_row> top_recipients(SQLite::Database& db, const review_window& window,
                                       std::size_t limit);

/// One recipient's hourly rows in [from, until), ascending: the baseline model's input. Prepared
/// once, for reading many recipients.
class hourly_reader {
 public:
  explicit hourly_reader(SQLite::Database& db);
  std::vector<hourly_row> read(const std::string& recipient, std::int64_t from, std::int64_t until);

 private:
  SQLite::Statement select_;
};

/// What the server-wide prior is computed from, per recipient with mail in [from, until): its
/// first hour there and its totals (volume as in top_recipient_row::observed).
struct prior_sample {
  std::string recipient;
  std::int64_t first_hour = 0;
  std::int64_t volume = 0;
  std::int64_t senders = 0;
};
std::vector<prior_sample> prior_samples(SQLite::Database& db, std::int64_t from,
                                        std::int64_t until);

/// "2024-05-01T13:00:00Z".
std::string format_utc(std::int64_t unix_seconds);

}  // namespace rcptguard::store
