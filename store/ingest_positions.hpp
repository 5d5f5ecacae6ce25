// Where `rcptguard ingest --follow` is in each followed log (table ingest_position, schema v3):
// read at start-up so a restart resumes at the line after the last one stored.
#pragma once

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <cstdint>
#include <optional>
#include <string>

#include "common/time.hpp"

namespace rcptguard::store {

struct ingest_position {
  std::uint64_t device = 0;
  std::uint64_t inode = 0;
  std::uint64_t offset = 0;
};

/// On a connection opened with open_read_write() (so the table exists). One thread only.
class ingest_positions {
 public:
  explicit ingest_positions(SQLite::Database& db);

  std::optional<ingest_position> load(const std::string& path);
  /// Upserts the position of `path`. Throws SQLite::Exception.
  void save(const std::string& path, const ingest_position& position, time_point now);
  /// Ends whatever a failed call left active (see store::reset_statements).
  void reset();

 private:
  SQLite::Statement select_;
  SQLite::Statement upsert_;
};

}  // namespace rcptguard::store
