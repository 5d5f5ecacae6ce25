// Opening the rcptguard database and bringing its schema up to date (PRAGMA user_version).
// The schema is written for two readers: the daemon, which joins on integer Unix seconds, and an
// analyst in sqlite3, who reads the *_utc generated columns and the v_* views.
#pragma once

#include <SQLiteCpp/Database.h>

#include <chrono>
#include <stdexcept>
#include <string>

namespace rcptguard::store {

/// The newest schema this binary knows. A file with a higher user_version was written by a newer
/// rcptguard and is refused rather than misread.
inline constexpr int schema_version = 9;

/// A database that rcptguard cannot use as it is: newer schema, foreign file, symlinked path.
class schema_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct open_options {
  std::string path;
  /// How long a statement waits for another connection's lock before failing with SQLITE_BUSY.
  /// Only the store thread waits, never the network thread.
  std::chrono::milliseconds busy_timeout{2000};
  /// Mode for a database file created by us; the -wal and -shm files inherit it. It holds mail
  /// addresses, so it is not world-readable by default.
  unsigned file_mode = 0640;
};

/// Opens (creating if missing) the database for writing, refuses a symlinked path, sets WAL,
/// synchronous=NORMAL and foreign keys, and migrates it to schema_version.
/// Throws schema_error or SQLite::Exception.
SQLite::Database open_read_write(const open_options& options);

/// Opens an existing database for the review queries only; never creates or migrates it.
SQLite::Database open_read_only(const std::string& path,
                                std::chrono::milliseconds busy_timeout = std::chrono::seconds{2});

/// Applies every migration step above the file's user_version, each in its own transaction.
/// Exposed for tests; open_read_write already calls it.
void migrate(SQLite::Database& db);

/// As migrate(), but stops at `target_version`; tests use it to build an old file.
void migrate_to(SQLite::Database& db, int target_version);

/// PRAGMA user_version of an open database.
int user_version(SQLite::Database& db);

}  // namespace rcptguard::store
