// `rcptguard report --html FILE`: one self-contained HTML file about a period, read from the
// store's database (read-only), or from every node's database of a cluster together: alerts per
// day, the most deviating recipients, and for every flagged (or named) recipient its hours
// against the learned baseline with the episodes, the verdicts and their reasons, the top senders
// and clients, and repeated attachments.
// Exit codes: 0 success, 1 failure (database missing or unreadable, invalid configuration, the
// file cannot be written), 2 usage error.
#pragma once

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "common/time.hpp"
#include "decision/settings.hpp"

namespace rcptguard::cli {

/// A parsed report request; what the argv front end hands run_report().
struct report_args {
  std::string html;  ///< the file written; "-" for standard output
  /// Opened read-only, never created: one, or one per node of a cluster, reported as one.
  std::vector<std::string> databases;
  std::vector<std::string> recipients;  ///< normalised keys, as the engine stores them
  time_point since{};                   ///< the period, [since, until)
  time_point until{};
  /// The baseline model and the recipient classes, so the report's "expected" is what the
  /// detector expected.
  decision::settings detection;
  time_point now{};  ///< when the report is generated
};

/// Reads the period from the database, renders it and writes args.html. Problems go to `err`;
/// `out` receives the document when args.html is "-". Returns 0 or 1.
int run_report(const report_args& args, std::FILE* out, std::FILE* err);

/// Where command_report() writes, and its clock; the defaults are the process's.
struct report_io {
  std::FILE* out = stdout;
  std::FILE* err = stderr;
  std::optional<time_point> now;  ///< empty: the system clock
};

/// `rcptguard report --html FILE [options]`; argv[0] is "report". Never throws.
int command_report(int argc, char** argv, const report_io& io);
int command_report(int argc, char** argv);

}  // namespace rcptguard::cli
