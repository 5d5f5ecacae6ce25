// Followed-log positions in SQLite (see ingest_positions.hpp).
#include "store/ingest_positions.hpp"

namespace rcptguard::store {

namespace {

// SQLite integers are signed 64-bit; device and inode numbers are stored bit for bit.
std::int64_t as_row(std::uint64_t v) {
  return static_cast<std::int64_t>(v);
}

std::uint64_t from_row(std::int64_t v) {
  return static_cast<std::uint64_t>(v);
}

}  // namespace

ingest_positions::ingest_positions(SQLite::Database& db)
    : select_(db, "SELECT device, inode, offset FROM ingest_position WHERE path = ?"),
      upsert_(db,
              "INSERT INTO ingest_position (path, device, inode, offset, updated) "
              "VALUES (?, ?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET device = excluded.device, "
              "inode = excluded.inode, offset = excluded.offset, updated = excluded.updated") {}

std::optional<ingest_position> ingest_positions::load(const std::string& path) {
  select_.reset();
  select_.bind(1, path);
  if (!select_.executeStep()) return std::nullopt;
  ingest_position p;
  p.device = from_row(select_.getColumn(0).getInt64());
  p.inode = from_row(select_.getColumn(1).getInt64());
  p.offset = from_row(select_.getColumn(2).getInt64());
  // Ends the read transaction now: kept open, its old snapshot would make this connection's
  // next write fail (SQLITE_BUSY_SNAPSHOT) once the store's connection has written.
  select_.reset();
  return p;
}

void ingest_positions::save(const std::string& path, const ingest_position& position,
                            time_point now) {
  upsert_.reset();
  upsert_.bind(1, path);
  upsert_.bind(2, as_row(position.device));
  upsert_.bind(3, as_row(position.inode));
  upsert_.bind(4, as_row(position.offset));
  upsert_.bind(5, to_unix_seconds(now));
  upsert_.exec();
}

void ingest_positions::reset() {
  select_.tryReset();
  upsert_.tryReset();
}

}  // namespace rcptguard::store
