// `rcptguard review`: reads the store's database (read-only) and prints alerts, the recipients
// most unlike their baseline, or one recipient's story, for a window of time, as an aligned
// table for people, JSON Lines for a SIEM or CSV for a spreadsheet.
// Exit codes: 0 success, 1 failure (database missing or unreadable, invalid configuration),
// 2 usage error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "common/time.hpp"
#include "decision/settings.hpp"

namespace rcptguard::cli {

enum class review_view : std::uint8_t { alerts, top, explain, actions };
enum class review_format : std::uint8_t { table, json, csv };
/// What `review top` ranks by.
enum class top_order : std::uint8_t { deviation, volume };

/// A parsed review request; what the argv front end hands run_review().
struct review_args {
  review_view view = review_view::alerts;
  /// Opened read-only, never created. alerts and actions take several (one node's each, with
  /// a cluster store), top and explain one.
  std::vector<std::string> databases;
  std::string recipient;   ///< explain: the normalised key, as the engine stores it
  std::int64_t since = 0;  ///< the window [since, until), Unix seconds
  std::int64_t until = 0;
  /// alerts and top: rows; explain: rows of each list. 0: all.
  std::size_t limit = 50;
  /// The limit was given: json and csv apply only a given one (a table always applies it).
  bool limit_given = false;
  review_format format = review_format::table;
  top_order order = top_order::deviation;
  /// top and explain: the engine's settings the baseline model is replayed with.
  decision::settings detection;
};

/// Runs one query and prints it to `out`; problems go to `err`. Returns 0, or 1 when the
/// database is missing or cannot be read.
int run_review(const review_args& args, std::FILE* out, std::FILE* err);

/// Where command_review() writes, and its clock; the defaults are the process's.
struct review_io {
  std::FILE* out = stdout;
  std::FILE* err = stderr;
  std::optional<time_point> now;  ///< empty: the system clock
};

/// `rcptguard review SUBCOMMAND [options]`; argv[0] is "review". Parses the options (times
/// relative to io.now), finds the database (-d, else store.path of the settings chosen by -c/-o
/// as for `serve`) and calls run_review(). Never throws.
int command_review(int argc, char** argv, const review_io& io);
int command_review(int argc, char** argv);

}  // namespace rcptguard::cli
