// The one mail-log pipeline: a line -> its syslog envelope and Postfix/Sendmail fields
// (ingest::line_parser) -> the deliveries its message completes, joined by queue id
// (ingest::joiner) -> the engine's entry for an observed delivery. `rcptguard ingest` runs it on
// one thread at the log's own time; the daemon's followed logs run the reading half on their
// reader thread and count_delivery() on the engine's thread.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "common/time.hpp"
#include "decision/engine.hpp"
#include "ingest/joiner.hpp"
#include "ingest/line_parser.hpp"
#include "ingest/timestamp.hpp"

namespace rcptguard::daemon {

/// Lines in, deliveries out: the reading half of the pipeline. Not thread-safe; one per reader.
class mail_log_reader {
 public:
  mail_log_reader(const ingest::timestamp_options& timestamps,
                  const ingest::joiner_options& joining);

  /// Appends to `deliveries` what `line` completes (most lines complete nothing).
  void add_line(std::string_view line, std::vector<ingest::message_event>& deliveries);

  const ingest::parse_counts& line_counts() const { return parser_.counts(); }
  ingest::joiner_stats joiner_stats() const { return joiner_.stats(); }

 private:
  ingest::line_parser parser_;
  ingest::joiner joiner_;
};

/// What count_delivery() answered, summed.
struct delivery_counts {
  std::uint64_t deliveries = 0;
  /// Deliveries that got a verdict other than DUNNO (a WARN; what would have been deferred is
  /// a WARN too, since the mail was already delivered).
  std::uint64_t verdicts = 0;
};

/// The counting half: one delivery the log showed, counted by `engine` at `at` (the log line's
/// time, or the caller's clock when that is not usable). The one translation from
/// ingest::message_event to the engine's delivery entry.
decision::verdict count_delivery(decision::engine& engine, const ingest::message_event& delivery,
                                 time_point at, delivery_counts& counts);

}  // namespace rcptguard::daemon
