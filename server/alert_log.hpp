// Alerts for a SIEM: every alert episode as one JSON object per line, appended to a file, with
// the field names of `rcptguard review alerts --format json` ("type", "time", "recipient",
// "verdict", "score", "window", "observed", "baseline", "reasons", "source", "attack").
// A line is written when an episode opens and again when it escalates (warn -> defer); peak
// updates of the same level and the close are in the database, not repeated here.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "decision/events.hpp"

namespace rcptguard::server {

/// One episode record as the JSON object written for it (no newline). `time` is the instant
/// of the event that raised it: the start, or the update that escalated it.
std::string alert_json(const decision::episode_record& episode, bool escalated);

class alert_log {
 public:
  /// Appends to `path` (created 0640). Throws std::runtime_error with the reason.
  explicit alert_log(const std::string& path);
  /// Writes to an open stream that the caller keeps owning (tests, stdout).
  explicit alert_log(std::FILE* stream);
  alert_log(const alert_log&) = delete;
  alert_log& operator=(const alert_log&) = delete;
  ~alert_log();

  /// Writes the lines `episodes` call for (in the engine's order) and flushes, so a SIEM
  /// tailing the file sees an alert as soon as the batch is handled. Returns lines written.
  std::size_t write(const std::vector<decision::episode_record>& episodes);

  std::uint64_t lines() const { return lines_; }
  /// Batches whose flush failed (disk full, I/O error); the stream's error flag is cleared so
  /// the next batch is tried. The daemon's alert_sink logs them.
  std::uint64_t write_errors() const { return write_errors_; }

 private:
  std::FILE* stream_ = nullptr;
  bool owned_ = false;
  /// Open episodes by (recipient, started seconds) with the level last written; bounded by
  /// the engine's open episodes, each erased when its episode ends.
  std::map<std::pair<std::string, std::int64_t>, decision::verdict_level> open_;
  std::uint64_t lines_ = 0;
  std::uint64_t write_errors_ = 0;
};

}  // namespace rcptguard::server
