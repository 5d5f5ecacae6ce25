// Alerts for a SIEM: every alert episode as one JSON object per line, appended to a file, with
// the field names of `rcptguard review alerts --format json` ("type", "time", "recipient",
// "verdict", "score", "window", "observed", "baseline", "reasons", "source", "attack").
// A line is written when an episode opens and again when it escalates (warn -> defer); peak
// updates of the same level and the close are in the database, not repeated here.
#pragma once

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "daemon/alert_command.hpp"
#include "decision/events.hpp"

namespace rcptguard::daemon {

/// One episode record as the JSON object written for it (no newline). `time` is the instant
/// of the event that raised it: the start, or the update that escalated it.
std::string alert_json(const decision::episode_record& episode, bool escalated);

/// An episode record that deserves an alert, pointing into the batch it came from.
struct raised_alert {
  const decision::episode_record* episode;
  bool escalated;  ///< false: the episode opened
};

/// Which episode records deserve an alert: an episode's opening and its escalation (warn ->
/// defer), once each. The alert file and the alert command both act on this one decision.
class alert_tracker {
 public:
  /// The alerts `episodes` raise, in the engine's order; remembers what it has seen, so call it
  /// exactly once per batch. The result points into `episodes`.
  std::vector<raised_alert> track(const std::vector<decision::episode_record>& episodes);

 private:
  /// Open episodes by (recipient, started seconds) with the level last alerted; bounded by
  /// the engine's open episodes, each erased when its episode ends.
  std::map<std::pair<std::string, std::int64_t>, decision::verdict_level> open_;
};

class alert_file {
 public:
  /// Appends to `path` (created 0640). Throws std::runtime_error with the reason.
  explicit alert_file(const std::string& path);
  /// Writes to an open stream that the caller keeps owning (tests, stdout).
  explicit alert_file(std::FILE* stream);
  alert_file(const alert_file&) = delete;
  alert_file& operator=(const alert_file&) = delete;
  ~alert_file();

  /// Writes the lines `episodes` call for (in the engine's order) and flushes, so a SIEM
  /// tailing the file sees an alert as soon as the batch is handled. Returns lines written.
  std::size_t write(const std::vector<decision::episode_record>& episodes);
  /// As above for alerts a caller's own tracker selected (the daemon's alert_sink, which also
  /// hands them to the alert command).
  std::size_t write(const std::vector<raised_alert>& alerts);

  std::uint64_t lines() const { return lines_; }
  /// Batches whose flush failed (disk full, I/O error); the stream's error flag is cleared so
  /// the next batch is tried. The daemon's alert_sink logs them.
  std::uint64_t write_errors() const { return write_errors_; }

 private:
  std::FILE* stream_ = nullptr;
  bool owned_ = false;
  alert_tracker tracker_;
  std::uint64_t lines_ = 0;
  std::uint64_t write_errors_ = 0;
};

/// Alert episodes of both sources as JSON Lines ([alerts] file), in alert_file's format, and
/// as runs of the alert command ([alerts] command) for the same alerts. The daemon calls
/// write() with engine.pending().episodes before persistence.pump() moves them. An unset path
/// writes nothing. The file is opened on first use (append, O_NOFOLLOW, after the privilege
/// drop) and flushed per batch; a failed open or write is logged and never stops the daemon:
/// an open is retried a minute later, and the alerts stay in the database (`rcptguard review
/// alerts --format json`).
class alert_sink {
 public:
  /// `command` may be null (none configured); it must outlive the sink.
  alert_sink(std::string path, std::shared_ptr<spdlog::logger> log,
             alert_command* command = nullptr);
  alert_sink(const alert_sink&) = delete;
  alert_sink& operator=(const alert_sink&) = delete;
  ~alert_sink();

  void write(const std::vector<decision::episode_record>& episodes);

  std::uint64_t lines() const;
  std::uint64_t failures() const { return failures_; }

 private:
  void write_file(const std::vector<raised_alert>& alerts);

  const std::string path_;
  const std::shared_ptr<spdlog::logger> log_;
  alert_command* const command_;
  alert_tracker tracker_;
  std::unique_ptr<alert_file> file_;
  std::optional<std::chrono::steady_clock::time_point> next_open_;
  std::uint64_t failures_ = 0;
};

}  // namespace rcptguard::daemon
