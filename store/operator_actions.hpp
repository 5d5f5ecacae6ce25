// The operator controls in the database (schema v8): the audit log of every control command
// (operator_action, view v_operator_actions) and the allow entries that must survive a restart
// (operator_allow). Writes run as writer jobs (daemon/operator_controls), reads at start-up and
// for review. Plain functions on a connection, like load_histories().
#pragma once

#include <SQLiteCpp/Database.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/time.hpp"
#include "decision/events.hpp"
#include "store/review.hpp"

namespace rcptguard::store {

/// One control command (or one refused caller) as the audit log keeps it.
struct operator_action {
  std::int64_t id = 0;  ///< set by list_operator_actions
  time_point at;
  std::string user;       ///< from the peer credentials; "" when the uid has no name
  std::int64_t uid = -1;  ///< from the peer credentials
  std::string command;    ///< "allow", "unallow", "reset", "release", "status"; "" if unread
  std::string kind;       ///< "recipient" or "sender" for allow/unallow, else ""
  std::string address;    ///< the normalised address acted on, or ""
  time_point until{};     ///< allow: when the entry ends; the epoch for good or n/a
  std::string reason;
  std::string result;  ///< "ok", "failed" (nothing changed) or "refused" (not allowed to ask)
  std::string detail;  ///< what changed, or why not
};

/// "recipient" or "sender".
std::string_view allow_kind_text(decision::allow_kind kind);

/// Appends one audit row. Throws SQLite::Exception.
void insert_operator_action(SQLite::Database& db, const operator_action& action);

/// Writes (or replaces) the allow entry of its address and kind. Throws SQLite::Exception.
void save_operator_allow(SQLite::Database& db, const decision::operator_allow_entry& entry);

/// Deletes the allow entry of `address` and `kind`, if any. Throws SQLite::Exception.
void delete_operator_allow(SQLite::Database& db, std::string_view address,
                           decision::allow_kind kind);

/// Deletes audit rows older than `retention` and allow entries that ended before `now`.
/// Throws SQLite::Exception.
void prune_operator_rows(SQLite::Database& db, time_point now, std::chrono::seconds retention);

/// The allow entries still in force at `now`, for the engine's restore.
std::vector<decision::operator_allow_entry> load_operator_allows(SQLite::Database& db,
                                                                 time_point now);

/// The successful resets and releases of the 24 hours before `now` (the minute rows the engine
/// restores), the latest per recipient.
std::vector<decision::counter_reset> load_counter_resets(SQLite::Database& db, time_point now);

/// Audit rows with window.from <= at < window.until, newest first, at most `limit` (0: all), and
/// how many matched; only those acting on `address` unless it is empty. For review: works on an
/// open_read_only() connection.
page<operator_action> list_operator_actions(SQLite::Database& db, const review_window& window,
                                            std::string_view address, std::size_t limit);

}  // namespace rcptguard::store
