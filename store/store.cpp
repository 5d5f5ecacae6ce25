// Batch writes, the start-up snapshot and pruning over one SQLite connection.
#include "store/store.hpp"

#include <SQLiteCpp/Transaction.h>

#include <algorithm>
#include <cassert>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>

#include "store/spool.hpp"

namespace rcptguard::store {
namespace {

using decision::event_source;
using decision::verdict_level;

constexpr std::int64_t seconds_per_hour = 3600;
// Name ids remembered across batches: the recipients, senders and clients of recent floods.
constexpr std::size_t name_cache_size = 200'000;

std::int64_t floor_to(std::int64_t t, std::int64_t step) {
  const std::int64_t rem = t % step;
  return rem < 0 ? t - rem - step : t - rem;
}

const char* level_text(verdict_level level) {
  switch (level) {
    case verdict_level::dunno:
      return "dunno";
    case verdict_level::warn:
      return "warn";
    case verdict_level::defer:
      return "defer";
  }
  return "warn";
}

verdict_level level_from(std::string_view text) {
  if (text == "defer") return verdict_level::defer;
  if (text == "dunno") return verdict_level::dunno;
  return verdict_level::warn;
}

const char* source_text(event_source source) {
  return source == event_source::log ? "log" : "policy";
}

event_source source_from(std::string_view text) {
  return text == "log" ? event_source::log : event_source::policy;
}

const char* close_cause_text(decision::close_cause cause) {
  switch (cause) {
    case decision::close_cause::cool_down:
      return "cool_down";
    case decision::close_cause::evicted:
      return "evicted";
    case decision::close_cause::stale:
      return "stale";
    case decision::close_cause::released:
      return "operator";
  }
  return "cool_down";
}

std::uint32_t clamp_u32(std::int64_t v) {
  return static_cast<std::uint32_t>(
      std::clamp<std::int64_t>(v, 0, std::numeric_limits<std::uint32_t>::max()));
}

std::int64_t clamp_i64(std::uint64_t v) {
  return static_cast<std::int64_t>(
      std::min<std::uint64_t>(v, std::numeric_limits<std::int64_t>::max()));
}

std::int64_t to_i64(std::size_t v) {
  return clamp_i64(v);
}

// A statement whose last step failed stays in that error until reset; tryReset clears it
// without rethrowing the old error, so every use starts from a clean state.
SQLite::Statement& fresh(SQLite::Statement& statement) {
  statement.tryReset();
  return statement;
}

// Binds text without copying it: SQLite reads it in place until the statement's next bind or
// reset. `text` must view a whole std::string of the batch, so it is followed by that string's
// NUL; one holding a NUL itself (not a normalised address, but possible) is bound by copy.
void bind_text(SQLite::Statement& st, int index, std::string_view text) {
  if (std::memchr(text.data(), '\0', text.size()) != nullptr) {
    st.bind(index, std::string{text});
    return;
  }
  assert(text.data()[text.size()] == '\0');
  st.bindNoCopy(index, text.data());
}

// The sender-cache key: the hour's 8 bytes, then recipient NUL sender (neither holds a NUL:
// both are normalised addresses).
void sender_key(std::string& out, std::string_view recipient, std::int64_t hour,
                std::string_view sender) {
  out.resize(sizeof hour);
  std::memcpy(out.data(), &hour, sizeof hour);
  out.append(recipient);
  out.push_back('\0');
  out.append(sender);
}

std::int64_t sender_key_hour(const std::string& key) {
  std::int64_t hour = 0;
  std::memcpy(&hour, key.data(), sizeof hour);
  return hour;
}

struct hour_totals {
  std::int64_t accepted = 0;
  std::int64_t attempted = 0;
  std::int64_t distinct_senders = 0;
  std::int64_t bytes = 0;
  std::int64_t peak_minute = 0;
  std::int64_t peak_ten_minutes = 0;
  bool in_episode = false;
};

struct minute_totals {
  std::int64_t accepted = 0;
  std::int64_t attempted = 0;
};

struct pair_totals {
  std::int64_t first_seen = std::numeric_limits<std::int64_t>::max();
  std::int64_t last_seen = std::numeric_limits<std::int64_t>::min();
  std::int64_t messages = 0;
};

// Keys view the batch's strings; the batch outlives the aggregation.
using recipient_time = std::pair<std::string_view, std::int64_t>;
// Time first, as recipient_minute's primary key (schema v5).
using time_recipient = std::pair<std::int64_t, std::string_view>;

}  // namespace

store::store(store_options options)
    : options_(std::move(options)),
      db_(open_read_write(options_.database)),
      upsert_hourly_(db_, R"sql(
        INSERT INTO recipient_hourly (recipient, hour_start, accepted, attempted, distinct_senders,
                                      bytes, peak_minute, peak_ten_minutes, in_episode)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
        ON CONFLICT (recipient, hour_start) DO UPDATE SET
          accepted = accepted + excluded.accepted,
          attempted = attempted + excluded.attempted,
          distinct_senders = distinct_senders + excluded.distinct_senders,
          bytes = bytes + excluded.bytes,
          peak_minute = max(peak_minute, excluded.peak_minute),
          peak_ten_minutes = max(peak_ten_minutes, excluded.peak_ten_minutes),
          in_episode = in_episode OR excluded.in_episode)sql"),
      upsert_minute_(db_, R"sql(
        INSERT INTO recipient_minute (recipient, minute_start, accepted, attempted)
        VALUES (?1, ?2, ?3, ?4)
        ON CONFLICT (minute_start, recipient) DO UPDATE SET
          accepted = accepted + excluded.accepted,
          attempted = attempted + excluded.attempted)sql"),
      insert_hour_sender_(db_, R"sql(
        INSERT INTO recipient_hour_sender (recipient, hour_start, sender) VALUES (?1, ?2, ?3)
        ON CONFLICT DO NOTHING)sql"),
      upsert_correspondent_(db_, R"sql(
        INSERT INTO correspondent (recipient, sender, first_seen, last_seen, messages)
        VALUES (?1, ?2, ?3, ?4, ?5)
        ON CONFLICT (recipient, sender) DO UPDATE SET
          first_seen = min(first_seen, excluded.first_seen),
          last_seen = max(last_seen, excluded.last_seen),
          messages = messages + excluded.messages)sql"),
      upsert_cluster_hour_(db_, R"sql(
        INSERT INTO cluster_hourly (recipient, hour_start, attempted) VALUES (?1, ?2, ?3)
        ON CONFLICT (hour_start, recipient) DO UPDATE SET
          attempted = max(attempted, excluded.attempted))sql"),
      upsert_flagged_(db_, R"sql(
        INSERT INTO flagged (recipient, at, sender, client, code, requests)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6)
        ON CONFLICT (recipient, at, sender, client, code) DO UPDATE SET
          requests = requests + excluded.requests)sql"),
      upsert_flagged_span_(db_, R"sql(
        INSERT INTO flagged_span (recipient, first_at) VALUES (?1, ?2)
        ON CONFLICT (recipient) DO UPDATE SET first_at = min(first_at, excluded.first_at))sql"),
      select_name_(db_, "SELECT id FROM name WHERE text = ?1"),
      insert_name_(db_, "INSERT INTO name (text) VALUES (?1)"),
      insert_party_(db_, "INSERT INTO party (text) VALUES (?1)"),
      insert_explanation_(db_, R"sql(
        INSERT INTO explanation (at, recipient, sender, client, level, monitor_only, score,
                                 action_text, source)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9))sql"),
      insert_reason_(db_, R"sql(
        INSERT INTO explanation_reason (explanation_id, ordinal, name, weight, observed, baseline,
                                        detail)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7))sql"),
      // The engine's latest record of an episode is authoritative, so it replaces the row.
      upsert_episode_(db_, R"sql(
        INSERT INTO episode (recipient, started, updated, ended, ended_at, peak_level, peak_score,
                             peak_window, peak_observed, peak_baseline, summary, source, closed_by,
                             cluster_id)
        VALUES (?1, ?2, ?3, ?4, CASE WHEN ?4 THEN ?3 END, ?5, ?6, ?7, ?8, ?9, ?10, ?11,
                CASE WHEN ?4 THEN ?12 END, NULLIF(?13, ''))
        ON CONFLICT (recipient, started) DO UPDATE SET
          updated = excluded.updated,
          ended = excluded.ended,
          ended_at = excluded.ended_at,
          peak_level = excluded.peak_level,
          peak_score = excluded.peak_score,
          peak_window = excluded.peak_window,
          peak_observed = excluded.peak_observed,
          peak_baseline = excluded.peak_baseline,
          summary = excluded.summary,
          source = excluded.source,
          closed_by = excluded.closed_by,
          cluster_id = COALESCE(excluded.cluster_id, cluster_id))sql"),
      prune_hourly_(db_, R"sql(
        DELETE FROM recipient_hourly WHERE (recipient, hour_start) IN (
          SELECT recipient, hour_start FROM recipient_hourly WHERE hour_start < ?1 LIMIT ?2))sql"),
      prune_cluster_hourly_(db_, R"sql(
        DELETE FROM cluster_hourly WHERE (hour_start, recipient) IN (
          SELECT hour_start, recipient FROM cluster_hourly WHERE hour_start < ?1 LIMIT ?2))sql"),
      prune_minute_(db_, R"sql(
        DELETE FROM recipient_minute WHERE (minute_start, recipient) IN (
          SELECT minute_start, recipient FROM recipient_minute WHERE minute_start < ?1 LIMIT ?2))sql"),
      prune_hour_sender_(db_, R"sql(
        DELETE FROM recipient_hour_sender WHERE (hour_start, recipient, sender) IN (
          SELECT hour_start, recipient, sender FROM recipient_hour_sender
           WHERE hour_start < ?1 LIMIT ?2))sql"),
      // Correspondents have no index on last_seen: a sweep in key order from a cursor. The
      // end of one step is the budget-th key after the cursor (or none: the table's end).
      sweep_end_(db_, R"sql(
        SELECT recipient, sender FROM correspondent WHERE (recipient, sender) > (?1, ?2)
         ORDER BY recipient, sender LIMIT 1 OFFSET ?3)sql"),
      sweep_delete_(db_, R"sql(
        DELETE FROM correspondent
         WHERE (recipient, sender) > (?1, ?2) AND (?5 OR (recipient, sender) <= (?3, ?4))
           AND last_seen < ?6)sql"),
      // Reasons go with their explanation through ON DELETE CASCADE.
      prune_explanation_(db_, R"sql(
        DELETE FROM explanation WHERE id IN (
          SELECT id FROM explanation WHERE at < ?1 ORDER BY at LIMIT ?2))sql"),
      // Recipients whose oldest flagged row is due, oldest first.
      due_flagged_spans_(db_, R"sql(
        SELECT recipient FROM flagged_span WHERE first_at < ?1 ORDER BY first_at LIMIT ?2)sql"),
      prune_flagged_(db_, R"sql(
        DELETE FROM flagged WHERE (recipient, at, sender, client, code) IN (
          SELECT recipient, at, sender, client, code FROM flagged
           WHERE recipient = ?1 AND at < ?2 LIMIT ?3))sql"),
      refresh_flagged_span_(db_, R"sql(
        UPDATE flagged_span SET first_at = (SELECT min(at) FROM flagged WHERE recipient = ?1)
         WHERE recipient = ?1)sql"),
      drop_flagged_span_(db_, R"sql(
        DELETE FROM flagged_span
         WHERE recipient = ?1 AND NOT EXISTS (SELECT 1 FROM flagged WHERE recipient = ?1))sql"),
      // An episode still open but not updated for the whole retention lost its closing record
      // (e.g. dropped in an outage); it goes too, or it would be restored forever.
      prune_episode_(db_, R"sql(
        DELETE FROM episode WHERE id IN (SELECT id FROM episode WHERE updated < ?1 LIMIT ?2))sql"),
      positions_(db_) {
  // A zero budget would make prune() report "more to do" forever.
  options_.prune_chunk_rows = std::max<std::size_t>(1, options_.prune_chunk_rows);
  options_.prune_max_chunks = std::max<std::size_t>(1, options_.prune_max_chunks);
  // Writes touch rows of many recipients all over the hot tables: keep their pages cached
  // (16 MiB instead of SQLite's 2 MiB) so a batch does not read back what the last one wrote,
  // and checkpoint every ~40 MiB of WAL instead of every 4 MiB, so a page rewritten by many
  // batches is copied back and synced once per checkpoint, not once per few batches.
  db_.exec("PRAGMA cache_size = -16384");
  db_.exec("PRAGMA temp_store = MEMORY");
  db_.exec("PRAGMA wal_autocheckpoint = 10000");
}

void store::apply(const decision::outbox& batch, const std::vector<followed_position>& positions,
                  time_point now) {
  delta d;
  explanation_filter filter = explanations_;  // kept only once the batch is committed
  d.add(batch, filter);
  for (const followed_position& p : positions) {
    d.set_log_position(p.path, p.device, p.inode, p.offset, to_unix_seconds(now));
  }
  apply(d);
  explanations_ = std::move(filter);
}

void store::apply(const delta& batch) {
  if (batch.empty()) return;
  // IMMEDIATE takes the write lock up front, so a busy database fails here (after busy_timeout)
  // rather than half-way through the batch.
  pending_senders_.clear();
  try {
    SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
    write_counts(batch);
    write_flagged(batch);
    for (const decision::verdict_record& e : batch.explanations()) write_explanation(e);
    for (const decision::episode_record& episode : batch.episodes()) write_episode(episode);
    for (const auto& [path, p] : batch.log_positions()) {
      positions_.save(path, ingest_position{p.device, p.inode, p.offset},
                      from_unix_seconds(p.saved_at));
    }
    tx.commit();
  } catch (...) {
    reset_statements();
    throw;
  }
  remember_committed_senders();
  remember_committed_names();
  rows_written_ += batch.minutes().size() + batch.pairs().size() + batch.flagged().size() +
                   batch.explanations().size() + batch.episodes().size();
}

// Only keys of a committed transaction are remembered: a rolled-back batch leaves no rows, so
// its keys must still be inserted (and counted) when it is applied again.
void store::remember_committed_senders() {
  if (options_.sender_key_cache == 0 || pending_senders_.empty()) return;
  if (committed_senders_.size() + pending_senders_.size() > options_.sender_key_cache) {
    committed_senders_
        .clear();  // start over rather than track recency; a miss only costs an INSERT
  }
  for (std::string& key : pending_senders_) {
    if (committed_senders_.size() >= options_.sender_key_cache) break;
    committed_senders_.insert(std::move(key));
  }
  pending_senders_.clear();
}

void store::remember_committed_names() {
  // Start over rather than track recency: a recipient missed costs one SELECT, a party a row.
  for (auto [cache, pending] :
       {std::pair{&name_ids_, &pending_names_}, std::pair{&party_ids_, &pending_parties_}}) {
    if (cache->size() + pending->size() > name_cache_size) cache->clear();
    cache->merge(*pending);
    pending->clear();
  }
}

// prune() deletes the keys of these hours, so they must not be remembered as present.
void store::forget_senders_before(std::int64_t hour) {
  std::erase_if(committed_senders_,
                [hour](const std::string& key) { return sender_key_hour(key) < hour; });
}

// One upsert per (recipient, minute) and per (recipient, hour), however many requests they
// cover; hours are the sums of their minutes.
void store::write_counts(const delta& batch) {
  const std::vector<std::string>& names = batch.names();
  std::map<std::pair<std::uint32_t, std::int64_t>, hour_totals> hours;
  for (const auto& [key, m] : batch.minutes()) {
    hour_totals& h = hours[{key.second, floor_to(key.first, seconds_per_hour)}];
    h.attempted += m.attempted;
    h.accepted += m.accepted;
    h.bytes += clamp_i64(m.bytes);
    h.peak_minute = std::max<std::int64_t>(h.peak_minute, m.peak_minute);
    h.peak_ten_minutes = std::max<std::int64_t>(h.peak_ten_minutes, m.peak_ten_minutes);
    h.in_episode = h.in_episode || m.in_episode;
  }
  // In key order, i.e. the table's primary-key order: neighbouring inserts share B-tree pages.
  std::vector<hour_sender_key> senders(batch.senders().begin(), batch.senders().end());
  std::sort(senders.begin(), senders.end(),
            [&](const hour_sender_key& a, const hour_sender_key& b) {
              return std::tie(a.hour, names[a.recipient], names[a.sender]) <
                     std::tie(b.hour, names[b.recipient], names[b.sender]);
            });
  for (const hour_sender_key& k : senders) {
    if (first_sender_of_hour(names[k.recipient], k.hour, names[k.sender])) {
      ++hours[{k.recipient, k.hour}].distinct_senders;
    }
  }

  for (const auto& [key, h] : hours) {
    SQLite::Statement& st = fresh(upsert_hourly_);
    bind_text(st, 1, names[key.first]);
    st.bind(2, key.second);
    st.bind(3, h.accepted);
    st.bind(4, h.attempted);
    st.bind(5, h.distinct_senders);
    st.bind(6, h.bytes);
    st.bind(7, h.peak_minute);
    st.bind(8, h.peak_ten_minutes);
    st.bind(9, static_cast<int>(h.in_episode));
    st.exec();
  }
  for (const auto& [key, m] : batch.minutes()) {
    if (key.first < minute_horizon_) continue;
    SQLite::Statement& st = fresh(upsert_minute_);
    bind_text(st, 1, names[key.second]);
    st.bind(2, key.first);
    st.bind(3, static_cast<std::int64_t>(m.accepted));
    st.bind(4, static_cast<std::int64_t>(m.attempted));
    st.exec();
  }
  for (const auto& [id, p] : batch.pairs()) {
    SQLite::Statement& st = fresh(upsert_correspondent_);
    bind_text(st, 1, names[static_cast<std::uint32_t>(id >> 32U)]);
    bind_text(st, 2, names[static_cast<std::uint32_t>(id)]);
    st.bind(3, p.first_seen);
    st.bind(4, p.last_seen);
    st.bind(5, static_cast<std::int64_t>(p.messages));
    st.exec();
  }
  for (const auto& [key, attempted] : batch.cluster_hours()) {
    SQLite::Statement& st = fresh(upsert_cluster_hour_);
    bind_text(st, 1, names[key.second]);
    st.bind(2, key.first);
    st.bind(3, static_cast<std::int64_t>(attempted));
    st.exec();
  }  // The text bindings point into the batch; drop them before it goes.
  for (SQLite::Statement* st : {&upsert_hourly_, &upsert_minute_, &insert_hour_sender_,
                                &upsert_correspondent_, &upsert_cluster_hour_}) {
    st->tryReset();
    st->clearBindings();
  }
}

// The database id of a recipient, inserted on first use. Ids are remembered across batches (a
// name row is never deleted while the process runs); a rolled-back insert is forgotten with the
// transaction's other pending ids.
std::int64_t store::name_id(const std::string& text) {
  if (const auto found = name_ids_.find(text); found != name_ids_.end()) return found->second;
  if (const auto found = pending_names_.find(text); found != pending_names_.end()) {
    return found->second;
  }
  SQLite::Statement& select = fresh(select_name_);
  select.bind(1, text);
  std::int64_t id = 0;
  if (select.executeStep()) {
    id = select.getColumn(0).getInt64();
  } else {
    SQLite::Statement& insert = fresh(insert_name_);
    insert.bind(1, text);
    insert.exec();
    id = db_.getLastInsertRowid();
  }
  pending_names_.emplace(text, id);
  return id;
}

// A sender's or client's id: the one this process gave it, or a new row. `party` has no index
// on its text (see schema v6), so a text forgotten by the cache gets a second id, never a scan.
std::int64_t store::party_id(const std::string& text) {
  if (const auto found = party_ids_.find(text); found != party_ids_.end()) return found->second;
  if (const auto found = pending_parties_.find(text); found != pending_parties_.end()) {
    return found->second;
  }
  SQLite::Statement& insert = fresh(insert_party_);
  insert.bind(1, text);
  insert.exec();
  const std::int64_t id = db_.getLastInsertRowid();
  pending_parties_.emplace(text, id);
  return id;
}

void store::write_flagged(const delta& batch) {
  pending_names_.clear();
  pending_parties_.clear();
  if (batch.flagged().empty()) return;
  const std::vector<std::string>& names = batch.names();
  // Recipient-first, as the table is clustered.
  std::vector<std::pair<const flagged_key*, std::uint32_t>> rows;
  rows.reserve(batch.flagged().size());
  for (const auto& [key, requests] : batch.flagged()) rows.emplace_back(&key, requests);
  std::sort(rows.begin(), rows.end(), [&](const auto& a, const auto& b) {
    return std::tie(names[a.first->recipient], a.first->at) <
           std::tie(names[b.first->recipient], b.first->at);
  });
  std::map<std::int64_t, std::int64_t> first_at;  // recipient id -> oldest row of the batch
  for (const auto& [key, requests] : rows) {
    const std::int64_t recipient = name_id(names[key->recipient]);
    SQLite::Statement& st = fresh(upsert_flagged_);
    st.bind(1, recipient);
    st.bind(2, key->at);
    st.bind(3, party_id(names[key->sender]));
    st.bind(4, party_id(names[key->client]));
    st.bind(5, static_cast<int>(key->code));
    st.bind(6, static_cast<std::int64_t>(requests));
    st.exec();
    const auto [it, inserted] = first_at.emplace(recipient, key->at);
    if (!inserted) it->second = std::min(it->second, key->at);
  }
  for (const auto& [recipient, at] : first_at) {
    SQLite::Statement& st = fresh(upsert_flagged_span_);
    st.bind(1, recipient);
    st.bind(2, at);
    st.exec();
  }
}

// Distinct senders are counted exactly: the (recipient, hour, sender) key is recorded in the
// same transaction as the count, so neither a later batch, a restart nor replayed log lines
// count a sender twice. The keys are pruned once their hour is over.
// A key committed earlier (remembered in committed_senders_) is known to be in the table, so
// its INSERT would do nothing; only unknown keys go to SQLite.
bool store::first_sender_of_hour(std::string_view recipient, std::int64_t hour,
                                 std::string_view sender) {
  std::string key;
  if (options_.sender_key_cache != 0) {
    sender_key(key, recipient, hour, sender);
    if (committed_senders_.contains(key)) return false;
  }
  SQLite::Statement& st = fresh(insert_hour_sender_);
  bind_text(st, 1, recipient);
  st.bind(2, hour);
  bind_text(st, 3, sender);
  const bool inserted = st.exec() == 1;
  if (options_.sender_key_cache != 0) pending_senders_.push_back(std::move(key));
  return inserted;
}

void store::write_explanation(const decision::verdict_record& explanation) {
  SQLite::Statement& st = fresh(insert_explanation_);
  st.bind(1, to_unix_seconds(explanation.at));
  st.bindNoCopy(2, explanation.recipient);
  st.bindNoCopy(3, explanation.sender);
  st.bindNoCopy(4, explanation.client);
  st.bindNoCopy(5, level_text(explanation.level));
  st.bind(6, explanation.monitor_only ? 1 : 0);
  st.bind(7, explanation.score);
  st.bindNoCopy(8, explanation.action_text);
  st.bindNoCopy(9, source_text(explanation.source));
  st.exec();
  const std::int64_t id = db_.getLastInsertRowid();
  std::int64_t ordinal = 0;
  for (const decision::reason& r : explanation.reasons) {
    SQLite::Statement& rs = fresh(insert_reason_);
    rs.bind(1, id);
    rs.bind(2, ordinal++);
    rs.bindNoCopy(3, r.name);
    rs.bind(4, r.weight);
    rs.bind(5, r.observed);
    rs.bind(6, r.baseline);
    rs.bindNoCopy(7, r.detail);
    rs.exec();
  }
}

void store::write_episode(const decision::episode_record& episode) {
  SQLite::Statement& st = fresh(upsert_episode_);
  st.bindNoCopy(1, episode.recipient);
  st.bind(2, to_unix_seconds(episode.started));
  st.bind(3, to_unix_seconds(episode.updated));
  st.bind(4, episode.ended ? 1 : 0);
  st.bindNoCopy(5, level_text(episode.peak_level));
  st.bind(6, episode.peak_score);
  st.bindNoCopy(7, episode.peak_window);
  st.bind(8, episode.peak_observed);
  st.bind(9, episode.peak_baseline);
  st.bindNoCopy(10, episode.summary);
  st.bindNoCopy(11, source_text(episode.source));
  st.bindNoCopy(12, close_cause_text(episode.closed_by));
  st.bindNoCopy(13, episode.cluster_id);
  st.exec();
}

decision::restore_snapshot store::load_snapshot(time_point now) {
  const std::int64_t t = to_unix_seconds(now);
  decision::restore_snapshot snapshot;
  // One read transaction, so the four parts agree with each other.
  SQLite::Transaction tx(db_, SQLite::TransactionBehavior::DEFERRED);

  SQLite::Statement minutes(db_, R"sql(
    SELECT recipient, minute_start, accepted, attempted FROM recipient_minute
     WHERE minute_start >= ?1 ORDER BY minute_start, recipient)sql");
  minutes.bind(1, floor_to(t, 60) - std::chrono::seconds{recent_minutes_loaded}.count() + 60);
  while (minutes.executeStep()) {
    snapshot.recent_minutes.push_back(
        {minutes.getColumn(0).getString(), minutes.getColumn(1).getInt64(),
         clamp_u32(minutes.getColumn(2).getInt64()), clamp_u32(minutes.getColumn(3).getInt64())});
  }

  snapshot.histories = load_histories(db_, now, options_.history_weeks);

  SQLite::Statement pairs(db_, R"sql(
    SELECT recipient, sender, first_seen, last_seen, messages FROM correspondent
     ORDER BY last_seen DESC LIMIT ?1)sql");  // a sort at start-up: no index on last_seen
  pairs.bind(1, to_i64(options_.correspondent_limit));
  while (pairs.executeStep()) {
    snapshot.correspondents.push_back({pairs.getColumn(0).getString(),
                                       pairs.getColumn(1).getString(),
                                       pairs.getColumn(2).getInt64(), pairs.getColumn(3).getInt64(),
                                       clamp_u32(pairs.getColumn(4).getInt64())});
  }

  SQLite::Statement episodes(db_, R"sql(
    SELECT recipient, started, updated, peak_level, peak_score, peak_window, peak_observed,
           peak_baseline, summary, source, COALESCE(cluster_id, '')
      FROM episode WHERE ended = 0 ORDER BY started)sql");
  while (episodes.executeStep()) {
    decision::episode_record e;
    e.recipient = episodes.getColumn(0).getString();
    e.started = from_unix_seconds(episodes.getColumn(1).getInt64());
    e.updated = from_unix_seconds(episodes.getColumn(2).getInt64());
    e.ended = false;
    e.peak_level = level_from(episodes.getColumn(3).getText());
    e.peak_score = episodes.getColumn(4).getDouble();
    e.peak_window = episodes.getColumn(5).getString();
    e.peak_observed = episodes.getColumn(6).getDouble();
    e.peak_baseline = episodes.getColumn(7).getDouble();
    e.summary = episodes.getColumn(8).getString();
    e.source = source_from(episodes.getColumn(9).getText());
    e.cluster_id = episodes.getColumn(10).getString();
    snapshot.open_episodes.push_back(std::move(e));
  }
  tx.commit();
  return snapshot;
}

void save_node_name(SQLite::Database& db, std::string_view node) {
  SQLite::Statement st(db, R"sql(
    INSERT INTO store_meta (key, value) VALUES ('node', ?1)
    ON CONFLICT (key) DO UPDATE SET value = excluded.value)sql");
  st.bind(1, std::string{node});
  st.exec();
}

std::string load_node_name(SQLite::Database& db) {
  SQLite::Statement st(db, "SELECT value FROM store_meta WHERE key = 'node'");
  return st.executeStep() ? st.getColumn(0).getString() : std::string{};
}

namespace {

// The other nodes' counts (cluster_hourly, v9) join each hour of the histories: a clustered
// node learns the cluster's volume per recipient, its own share plus theirs. Hours only they
// had mail in are added. Both lists are in hour order: one merge per recipient.
void merge_cluster_hours(decision::recipient_history& h,
                         const std::vector<std::pair<std::int64_t, std::uint32_t>>& others) {
  std::vector<decision::hourly_count> merged;
  merged.reserve(h.hours.size() + others.size());
  std::size_t k = 0;
  for (const auto& [hour, attempted] : others) {
    while (k < h.hours.size() && h.hours[k].hour_start < hour) merged.push_back(h.hours[k++]);
    if (k < h.hours.size() && h.hours[k].hour_start == hour) {
      decision::hourly_count c = h.hours[k++];
      c.attempted = clamp_u32(std::int64_t{c.attempted} + attempted);
      merged.push_back(c);
    } else {
      decision::hourly_count c;
      c.hour_start = hour;
      c.attempted = attempted;
      merged.push_back(c);
    }
  }
  merged.insert(merged.end(), h.hours.begin() + static_cast<std::ptrdiff_t>(k), h.hours.end());
  h.hours = std::move(merged);
}

void add_cluster_hours(SQLite::Database& db, std::int64_t from,
                       std::vector<decision::recipient_history>& histories) {
  SQLite::Statement rows(db, R"sql(
    SELECT recipient, hour_start, attempted FROM cluster_hourly
     WHERE hour_start >= ?1 ORDER BY recipient, hour_start)sql");
  rows.bind(1, from);
  std::unordered_map<std::string, std::size_t> index;
  for (std::size_t k = 0; k < histories.size(); ++k) index.emplace(histories[k].recipient, k);
  std::string recipient;
  std::vector<std::pair<std::int64_t, std::uint32_t>> others;
  const auto flush = [&] {
    if (others.empty()) return;
    auto found = index.find(recipient);
    if (found == index.end()) {
      histories.push_back({recipient, {}});
      found = index.emplace(recipient, histories.size() - 1).first;
    }
    merge_cluster_hours(histories[found->second], others);
    others.clear();
  };
  while (rows.executeStep()) {
    const char* text = rows.getColumn(0).getText();
    if (recipient != text) {
      flush();
      recipient = text;
    }
    others.emplace_back(rows.getColumn(1).getInt64(), clamp_u32(rows.getColumn(2).getInt64()));
  }
  flush();
}

}  // namespace

std::vector<decision::recipient_history> load_histories(SQLite::Database& db, time_point now,
                                                        int weeks) {
  std::vector<decision::recipient_history> histories;
  if (weeks <= 0) return histories;
  SQLite::Statement hours(db, R"sql(
    SELECT recipient, hour_start, accepted, attempted, distinct_senders, peak_minute,
           peak_ten_minutes, in_episode
      FROM recipient_hourly
     WHERE hour_start >= ?1 ORDER BY recipient, hour_start)sql");
  const std::int64_t history_hours = std::int64_t{weeks} * 7 * 24;
  const std::int64_t from =
      floor_to(to_unix_seconds(now), seconds_per_hour) - (history_hours - 1) * seconds_per_hour;
  hours.bind(1, from);
  while (hours.executeStep()) {
    std::string recipient = hours.getColumn(0).getString();
    if (histories.empty() || histories.back().recipient != recipient) {
      histories.push_back({std::move(recipient), {}});
    }
    histories.back().hours.push_back(
        {hours.getColumn(1).getInt64(), clamp_u32(hours.getColumn(2).getInt64()),
         clamp_u32(hours.getColumn(3).getInt64()), clamp_u32(hours.getColumn(4).getInt64()),
         clamp_u32(hours.getColumn(5).getInt64()), clamp_u32(hours.getColumn(6).getInt64()),
         hours.getColumn(7).getInt() != 0});
  }
  add_cluster_hours(db, from, histories);
  return histories;
}

std::uint64_t store::prune_table(SQLite::Statement& chunk_delete, std::int64_t cutoff,
                                 std::size_t& rows_left, bool& complete) {
  std::uint64_t deleted = 0;
  for (;;) {
    if (rows_left == 0) {
      complete = false;
      return deleted;
    }
    const std::size_t limit = std::min(options_.prune_chunk_rows, rows_left);
    SQLite::Statement& st = fresh(chunk_delete);
    st.bind(1, cutoff);
    st.bind(2, to_i64(limit));
    // Autocommit: each chunk is its own short write transaction, so a pending batch waits for
    // at most one chunk.
    const auto n = static_cast<std::size_t>(st.exec());
    deleted += n;
    rows_left -= n;
    if (n < limit) return deleted;
  }
}

// Examines at most one budget of rows per call from where the last call stopped, deleting those
// not seen since `cutoff`; a full sweep of the table therefore takes several calls, which is
// fine at retentions of weeks.
std::uint64_t store::prune_correspondents(std::int64_t cutoff, bool& complete) {
  const std::size_t budget = options_.prune_chunk_rows * options_.prune_max_chunks;
  SQLite::Statement& end = fresh(sweep_end_);
  end.bind(1, sweep_cursor_.first);
  end.bind(2, sweep_cursor_.second);
  end.bind(3, to_i64(budget - 1));
  std::optional<std::pair<std::string, std::string>> last;
  if (end.executeStep()) last.emplace(end.getColumn(0).getString(), end.getColumn(1).getString());
  end.tryReset();
  SQLite::Statement& del = fresh(sweep_delete_);
  del.bind(1, sweep_cursor_.first);
  del.bind(2, sweep_cursor_.second);
  del.bind(3, last ? last->first : std::string{});
  del.bind(4, last ? last->second : std::string{});
  del.bind(5, last ? 0 : 1);
  del.bind(6, cutoff);
  const auto deleted = static_cast<std::uint64_t>(del.exec());
  if (last) {
    sweep_cursor_ = std::move(*last);
    complete = false;
  } else {
    sweep_cursor_ = {};  // the end: the next sweep starts over
  }
  return deleted;
}

// Flagged rows are clustered by recipient; flagged_span says whose oldest rows are due, so the
// old rows are found by key range, never by a scan of the table.
std::uint64_t store::prune_flagged(std::int64_t cutoff, std::size_t& rows_left, bool& complete) {
  std::vector<std::int64_t> due;
  {
    SQLite::Statement& st = fresh(due_flagged_spans_);
    st.bind(1, cutoff);
    st.bind(2, to_i64(options_.prune_max_chunks));
    while (st.executeStep()) due.push_back(st.getColumn(0).getInt64());
    st.tryReset();
  }
  std::uint64_t deleted = 0;
  for (const std::int64_t recipient : due) {
    for (;;) {
      if (rows_left == 0) {
        complete = false;
        return deleted;
      }
      const std::size_t limit = std::min(options_.prune_chunk_rows, rows_left);
      SQLite::Statement& st = fresh(prune_flagged_);
      st.bind(1, recipient);
      st.bind(2, cutoff);
      st.bind(3, to_i64(limit));
      const auto n = static_cast<std::size_t>(st.exec());
      deleted += n;
      rows_left -= n;
      if (n < limit) break;
    }
    SQLite::Statement& drop = fresh(drop_flagged_span_);
    drop.bind(1, recipient);
    drop.exec();
    SQLite::Statement& refresh = fresh(refresh_flagged_span_);
    refresh.bind(1, recipient);
    refresh.exec();
  }
  if (due.size() == options_.prune_max_chunks) complete = false;
  return deleted;
}

// A statement whose step failed (SQLITE_BUSY on a locked database) stays active until it is
// reset, and while a write statement is active every COMMIT on the connection fails with "SQL
// statements in progress": one busy prune chunk would fail every later write for good. So a
// failed write or prune resets them all before the error goes up.
void store::reset_statements() {
  for (SQLite::Statement* st : {&upsert_hourly_,        &upsert_minute_,
                                &insert_hour_sender_,   &upsert_correspondent_,
                                &upsert_flagged_,       &upsert_flagged_span_,
                                &select_name_,          &insert_name_,
                                &insert_party_,         &insert_explanation_,
                                &insert_reason_,        &upsert_episode_,
                                &prune_hourly_,         &prune_minute_,
                                &prune_hour_sender_,    &sweep_end_,
                                &upsert_cluster_hour_,  &prune_cluster_hourly_,
                                &sweep_delete_,         &prune_explanation_,
                                &due_flagged_spans_,    &prune_flagged_,
                                &refresh_flagged_span_, &drop_flagged_span_,
                                &prune_episode_}) {
    st->tryReset();
  }
  positions_.reset();
}

prune_result store::prune(time_point now, std::chrono::seconds retention,
                          std::chrono::seconds spool_retention) {
  try {
    return prune_chunks(now, retention, spool_retention);
  } catch (...) {
    reset_statements();
    throw;
  }
}

prune_result store::prune_chunks(time_point now, std::chrono::seconds retention,
                                 std::chrono::seconds spool_retention) {
  const std::int64_t t = to_unix_seconds(now);
  const std::int64_t horizon = t - retention.count();
  prune_result result;
  // The budget is in rows, so a table with nothing due costs nothing and later tables are
  // always reached.
  std::size_t rows_left = options_.prune_chunk_rows * options_.prune_max_chunks;
  // Cheapest and most time-critical first: minute rows and sender keys grow fastest.
  result.rows_deleted +=
      prune_table(prune_minute_, t - std::chrono::seconds{minute_rows_kept}.count(), rows_left,
                  result.complete);
  const std::int64_t sender_cutoff = floor_to(t, seconds_per_hour) - seconds_per_hour;
  forget_senders_before(sender_cutoff);
  result.rows_deleted += prune_table(prune_hour_sender_, sender_cutoff, rows_left, result.complete);
  result.rows_deleted += prune_table(prune_hourly_, horizon, rows_left, result.complete);
  result.rows_deleted += prune_table(prune_cluster_hourly_, horizon, rows_left, result.complete);
  result.rows_deleted += prune_table(prune_explanation_, horizon, rows_left, result.complete);
  result.rows_deleted += prune_flagged(horizon, rows_left, result.complete);
  result.rows_deleted += prune_table(prune_episode_, horizon, rows_left, result.complete);
  result.rows_deleted += prune_correspondents(horizon, result.complete);
  // Spool rows are few (one per stored message and attachment) and age by hours.
  if (rows_left > 0) result.rows_deleted += prune_spool(db_, now - spool_retention);
  return result;
}

}  // namespace rcptguard::store
