// Opening the nodes' databases (see node_databases.hpp).
#include "cli/node_databases.hpp"

#include <fmt/core.h>

#include <exception>
#include <filesystem>
#include <system_error>

#include "common/text.hpp"
#include "store/schema.hpp"
#include "store/store.hpp"

namespace rcptguard::cli {

std::optional<std::vector<node_database>> open_node_databases(const std::vector<std::string>& paths,
                                                              std::string_view who,
                                                              std::FILE* err) {
  // Opening read-only never creates a file, but a missing one deserves its own words.
  for (const std::string& path : paths) {
    std::error_code ec;
    const auto status = std::filesystem::symlink_status(path, ec);
    if (path.empty() || status.type() == std::filesystem::file_type::not_found) {
      fmt::print(err, "{}: database {} does not exist (give -d PATH or set store.path)\n", who,
                 path.empty() ? std::string{"(empty path)"} : printable(path));
      return std::nullopt;
    }
  }
  if (paths.empty()) {
    fmt::print(err, "{}: no database (give -d PATH or set store.path)\n", who);
    return std::nullopt;
  }
  std::vector<node_database> dbs;
  for (const std::string& path : paths) {
    try {
      SQLite::Database db = store::open_read_only(path);
      // Read-only, so it cannot migrate: an older file is upgraded by the daemon, or by
      // `rcptguard ingest` / `scan -d`, which open it for writing.
      if (const int version = store::user_version(db); version < store::schema_version) {
        fmt::print(err,
                   "{}: database {} has schema version {}, older than {}: start the daemon (or "
                   "run 'rcptguard ingest' on it) once to upgrade it\n",
                   who, printable(path), version, store::schema_version);
        return std::nullopt;
      }
      std::string node = store::load_node_name(db);
      if (node.empty()) node = std::filesystem::path(path).filename().string();
      dbs.push_back({std::move(db), std::move(node), path});
    } catch (const std::exception& e) {
      fmt::print(err, "{}: cannot read database {}: {}\n", who, printable(path),
                 printable(e.what()));
      return std::nullopt;
    }
  }
  return dbs;
}

}  // namespace rcptguard::cli
