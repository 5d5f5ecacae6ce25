// The SQLite side of persistence: writes the engine's outbox in batches, reads back what the
// engine needs at start-up, and prunes by age. One connection, used by one thread only.
#pragma once

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/time.hpp"
#include "decision/events.hpp"
#include "store/delta.hpp"
#include "store/ingest_positions.hpp"
#include "store/schema.hpp"

namespace rcptguard::store {

struct store_options {
  open_options database;
  /// Weeks of hourly history handed to the baseline model (8 weeks = 1344 hours).
  int history_weeks = 8;
  /// Most correspondent pairs loaded at start-up, most recently seen first.
  std::size_t correspondent_limit = 200'000;
  /// Rows deleted per prune statement; each chunk is its own short write transaction.
  std::size_t prune_chunk_rows = 1000;
  /// One prune() call deletes at most prune_chunk_rows * prune_max_chunks rows in all.
  std::size_t prune_max_chunks = 50;
  /// Most committed (recipient, hour, sender) keys remembered in memory, so a sender seen in an
  /// earlier batch of the hour costs no INSERT; when full the memory starts over (0 disables).
  std::size_t sender_key_cache = 200'000;
};

struct prune_result {
  std::uint64_t rows_deleted = 0;
  /// False when the chunk budget ran out with rows still due; call prune() again.
  bool complete = true;
};

/// Row and window horizons that do not depend on configuration.
inline constexpr std::chrono::hours minute_rows_kept{25};  ///< 24 h of windows plus slack
inline constexpr std::chrono::hours recent_minutes_loaded{24};

/// Names the node that writes this database (store_meta 'node', schema v9): the daemon sets
/// it at start (cluster.node, or the host name), so review over several nodes' databases can
/// say which row came from where. Throws SQLite::Exception.
void save_node_name(SQLite::Database& db, std::string_view node);
/// The node name saved there, or "" (a database `rcptguard ingest` wrote, or never served).
std::string load_node_name(SQLite::Database& db);

/// Hourly histories of the `weeks` weeks up to and including the hour of `now`, grouped by
/// recipient (ascending) with hours ascending: the baseline model's input. Reads only, so it
/// works on an open_read_only() connection, e.g. for an hourly baseline refresh on another
/// thread while the store's own connection keeps writing (WAL: readers never block the writer
/// nor wait for it). One SELECT, so the result is one consistent snapshot. Throws
/// SQLite::Exception.
std::vector<decision::recipient_history> load_histories(SQLite::Database& db, time_point now,
                                                        int weeks);

class store {
 public:
  /// Opens and migrates the database (see open_read_write); throws on failure.
  explicit store(store_options options);
  store(const store&) = delete;
  store& operator=(const store&) = delete;

  /// Writes one batch in one transaction, all or nothing. Deliveries become hourly and
  /// per-minute upserts (attempted counts every record, accepted and bytes only accepted ones),
  /// exact distinct senders per recipient-hour, and correspondents from accepted mail with a
  /// non-null sender (a bounce is not correspondence); an authenticated delivery (our user
  /// wrote to the recipient) also records the reverse pair, so the reply counts as known.
  /// Times are stored in whole seconds, so an episode's key is (recipient, started truncated to
  /// the second). Throws SQLite::Exception; on throw nothing of the batch is stored and the
  /// batch can be applied again.
  void apply(const delta& batch);

  /// apply() of one outbox of the engine, aggregated first, with the positions its records take
  /// followed logs to (`rcptguard ingest`, tests). Which of its verdicts become explanations is
  /// remembered across calls.
  void apply(const decision::outbox& batch, const std::vector<followed_position>& positions = {},
             time_point now = {});

  /// Minute rows before `t` are not written (a replay of old logs: the daemon would prune them
  /// at once); hourly counts still are.
  void skip_minute_rows_before(time_point t) { minute_horizon_ = to_unix_seconds(t); }

  /// Rows upserted by committed batches (counts, pairs, flagged keys, explanations, episodes).
  std::uint64_t rows_written() const { return rows_written_; }

  /// What the engine needs to resume: minute rows of the last 24 h, hourly histories of the
  /// last history_weeks, the most recent correspondents, and the episodes still open.
  decision::restore_snapshot load_snapshot(time_point now);

  /// Deletes rows older than `retention` (hourly counts, verdicts with their reasons, episodes
  /// not updated since, correspondents not seen since), minute rows older than 25 h and
  /// distinct-sender keys of hours before the previous one. Bounded work per call.
  /// Spool rows (store/spool.hpp) older than `spool_retention` go too.
  prune_result prune(time_point now, std::chrono::seconds retention,
                     std::chrono::seconds spool_retention = std::chrono::hours{24});

  /// The connection, for the writer's other jobs (a spool scan's rows).
  SQLite::Database& database() { return db_; }

 private:
  void write_counts(const delta& batch);
  void write_flagged(const delta& batch);
  std::int64_t name_id(const std::string& text);
  std::int64_t party_id(const std::string& text);
  std::uint64_t prune_flagged(std::int64_t cutoff, std::size_t& rows_left, bool& complete);
  std::uint64_t prune_correspondents(std::int64_t cutoff, bool& complete);
  bool first_sender_of_hour(std::string_view recipient, std::int64_t hour, std::string_view sender);
  void remember_committed_senders();
  void remember_committed_names();
  void forget_senders_before(std::int64_t hour);
  void write_explanation(const decision::verdict_record& explanation);
  void write_episode(const decision::episode_record& episode);
  prune_result prune_chunks(time_point now, std::chrono::seconds retention,
                            std::chrono::seconds spool_retention);
  void reset_statements();
  std::uint64_t prune_table(SQLite::Statement& chunk_delete, std::int64_t cutoff,
                            std::size_t& rows_left, bool& complete);

  store_options options_;
  SQLite::Database db_;
  // Prepared once; declared after db_ so they are finalised before the connection closes.
  SQLite::Statement upsert_hourly_;
  SQLite::Statement upsert_minute_;
  SQLite::Statement insert_hour_sender_;
  SQLite::Statement upsert_correspondent_;
  SQLite::Statement upsert_cluster_hour_;
  SQLite::Statement upsert_flagged_;
  SQLite::Statement upsert_flagged_span_;
  SQLite::Statement select_name_;
  SQLite::Statement insert_name_;
  SQLite::Statement insert_party_;
  SQLite::Statement insert_explanation_;
  SQLite::Statement insert_reason_;
  SQLite::Statement upsert_episode_;
  SQLite::Statement prune_hourly_;
  SQLite::Statement prune_cluster_hourly_;
  SQLite::Statement prune_minute_;
  SQLite::Statement prune_hour_sender_;
  SQLite::Statement sweep_end_;
  SQLite::Statement sweep_delete_;
  SQLite::Statement prune_explanation_;
  SQLite::Statement due_flagged_spans_;
  SQLite::Statement prune_flagged_;
  SQLite::Statement refresh_flagged_span_;
  SQLite::Statement drop_flagged_span_;
  SQLite::Statement prune_episode_;

  // (recipient, hour, sender) keys known to be committed in recipient_hour_sender, encoded as
  // "hour\0recipient\0sender". Filled only after a commit, emptied of hours that prune() deletes.
  std::unordered_set<std::string> committed_senders_;
  std::int64_t oldest_cached_hour_ = 0;
  // Keys inserted by the transaction in progress; moved to committed_senders_ on commit.
  std::vector<std::string> pending_senders_;

  ingest_positions positions_;

  // Recipient (name) and sender/client (party) ids known to be committed, and those inserted by
  // the transaction in progress.
  std::unordered_map<std::string, std::int64_t> name_ids_;
  std::unordered_map<std::string, std::int64_t> pending_names_;
  std::unordered_map<std::string, std::int64_t> party_ids_;
  std::unordered_map<std::string, std::int64_t> pending_parties_;
  explanation_filter explanations_;  ///< for apply(outbox)
  std::uint64_t rows_written_ = 0;
  std::int64_t minute_horizon_ = 0;
  std::pair<std::string, std::string> sweep_cursor_;  ///< (recipient, sender) last examined
};

}  // namespace rcptguard::store
