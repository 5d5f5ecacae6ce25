// The databases an offline command reads, one per cluster node (README, "Several MX hosts":
// every MX keeps its own SQLite): each opened read-only, its schema checked, and named after its
// node, so `review alerts`, `review actions` and `report` can show the cluster as one.
#pragma once

#include <SQLiteCpp/Database.h>

#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rcptguard::cli {

/// One node's database, read-only.
struct node_database {
  SQLite::Database db;
  std::string node;  ///< store_meta's name, else the file's name (no daemon has served it yet)
  std::string path;  ///< as given
};

/// Opens every path in order. When any is missing (checked for all before opening one),
/// unreadable or of an older schema, or there is none, prints why as "`who`: database PATH ..."
/// to `err` and returns nothing.
std::optional<std::vector<node_database>> open_node_databases(const std::vector<std::string>& paths,
                                                              std::string_view who, std::FILE* err);

}  // namespace rcptguard::cli
