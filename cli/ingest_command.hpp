// `rcptguard ingest`: replays mail logs (plain, gzip, "-" for stdin, several in order) or
// follows live ones (--follow, like tail -F) through the same decision engine and store as the
// policy daemon, at the logs' own timestamps, and appends alert episodes as JSON Lines.
// Exit codes: 0 success, 1 failure (unreadable file, database error, invalid configuration),
// 2 usage error.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/time.hpp"
#include "config/config.hpp"
#include "ingest/joiner.hpp"
#include "ingest/line_parser.hpp"

namespace rcptguard::cli {

struct ingest_options {
  std::vector<std::string> files;
  bool follow = false;
  /// Follow mode: start at the beginning even when a position is stored (or the file is new).
  bool from_start = false;
  std::optional<int> year;                         ///< of the first classic-syslog line
  std::optional<std::chrono::seconds> utc_offset;  ///< of timestamps without one; unset: TZ
  std::string alerts_file;                         ///< empty: no JSON Lines output
  ingest::joiner_options joiner;
  std::chrono::milliseconds poll_interval{500};
};

struct ingest_summary {
  ingest::parse_counts lines;
  ingest::joiner_stats joiner;
  std::uint64_t long_lines = 0;
  std::uint64_t verdicts = 0;
  std::uint64_t alerts = 0;  ///< JSON lines written (episode opened or escalated)
  std::uint64_t rotations = 0;
  std::uint64_t truncations = 0;
  double seconds = 0.0;
};

/// Follow mode's pace and end, injectable so tests run it without waiting.
struct follow_control {
  std::function<void(std::chrono::milliseconds)> sleep;
  std::function<bool()> stop;  ///< checked between polls
  std::function<time_point()> clock;
};

/// Runs one ingestion with loaded settings (store.path is the database; detection settings
/// apply, in monitor mode: a log cannot be deferred). Prints the summary to `out`, problems
/// to `err`. Returns the exit code; fills `summary` when given.
int run_ingest(const config& settings, const ingest_options& options, std::FILE* out,
               std::FILE* err, const follow_control& control = {},
               ingest_summary* summary = nullptr);

/// `rcptguard ingest [--follow] FILE... [options]`; argv[0] is "ingest". Never throws.
int command_ingest(int argc, char** argv);

}  // namespace rcptguard::cli
