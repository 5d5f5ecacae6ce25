// Shared by the store tests: a per-test temporary directory, record builders, and a second
// connection for looking at what the store wrote.
#pragma once

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include "common/time.hpp"
#include "decision/events.hpp"
#include "store/store.hpp"
#include "tests/common/temp_dir.hpp"

namespace rcptguard::store::testing {

using rcptguard::test_support::temp_dir;

/// 2024-03-04T10:00:00Z, a Monday: a fixed origin so expected rows are easy to write down.
inline constexpr std::int64_t t0 = 1709546400;

inline time_point at(std::int64_t unix_seconds) {
  return from_unix_seconds(unix_seconds);
}

inline decision::delivery_record delivery(std::int64_t when, std::string recipient,
                                          std::string sender, bool accepted,
                                          std::uint64_t size = 1000) {
  decision::delivery_record d;
  d.at = at(when);
  d.recipient = std::move(recipient);
  d.sender = std::move(sender);
  d.client = "192.0.2.1";
  d.size = size;
  d.accepted = accepted;
  return d;
}

inline decision::episode_record episode(std::string recipient, std::int64_t started,
                                        std::int64_t updated, bool ended, double peak_score) {
  decision::episode_record e;
  e.recipient = std::move(recipient);
  e.started = at(started);
  e.updated = at(updated);
  e.ended = ended;
  e.peak_level = decision::verdict_level::defer;
  e.peak_score = peak_score;
  e.peak_window = "10m";
  e.peak_observed = 240;
  e.peak_baseline = 6;
  e.summary = "rcptguard: bob@example.test 240 msgs/10m, baseline 6";
  return e;
}

inline decision::verdict_record verdict(std::int64_t when, std::string recipient) {
  decision::verdict_record v;
  v.at = at(when);
  v.recipient = std::move(recipient);
  v.sender = "spam@bad.test";
  v.client = "198.51.100.7";
  v.level = decision::verdict_level::defer;
  v.score = 3.5;
  v.action_text = "DEFER_IF_PERMIT 4.2.1 rcptguard: flood";
  v.reasons = {{"volume_10m", 2.0, 240, 6, "240 msgs/10m, baseline 6"},
               {"sender_diversity", 1.5, 180, 3, "180 senders"}};
  return v;
}

inline store_options options_for(const std::string& path) {
  store_options o;
  o.database.path = path;
  return o;
}

/// One node's database of a cluster as its daemon leaves it: `records` written by the store,
/// and the node's name in store_meta. Returns `path`.
inline std::string write_node_database(const std::string& path, std::string_view node,
                                       const decision::outbox& records) {
  store s(options_for(path));
  save_node_name(s.database(), node);
  s.apply(records);
  return path;
}

/// A separate read-only connection, as an analyst would have.
inline std::int64_t query_int(const std::string& path, const std::string& sql) {
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  return db.execAndGet(sql).getInt64();
}

inline std::string query_text(const std::string& path, const std::string& sql) {
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  return db.execAndGet(sql).getString();
}

}  // namespace rcptguard::store::testing
