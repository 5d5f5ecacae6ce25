// Timestamps at the start of a mail-log line: classic syslog ("Nov 27 00:00:01", no year, local
// time), RFC 3339 / ISO 8601 (rsyslog high precision, Postfix maillog_file) and RFC 5424.
// Hand-written scanning: this runs once per log line, so no regex and no allocation.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "common/time.hpp"

namespace rcptguard::ingest {

/// "+HH:MM", "-HHMM", "+HH" or "Z" as seconds east of UTC; nullopt when malformed or beyond
/// ±18 hours.
std::optional<std::chrono::seconds> parse_utc_offset(std::string_view text);

struct timestamp_options {
  /// Year of the first classic-syslog line; unset: inferred from `reference` (the line's month
  /// and day are placed in the year that puts them at most a day after the reference, so a
  /// December line read in January is last year's).
  std::optional<int> year;
  /// Instant the year inference is relative to: "now" for a live log.
  time_point reference;
  /// Offset of the timestamps that carry none (classic syslog, ISO without zone). Unset: the
  /// system time zone (TZ), looked up once per local hour so DST changes are followed; the one
  /// repeated hour of a DST fall-back is read as its first occurrence.
  std::optional<std::chrono::seconds> utc_offset;
};

/// Stateful because classic syslog has no year: each line takes the year that puts it within
/// six months of the previous line, so a log running across New Year advances the year and a
/// slightly out-of-order line does not jump a year.
class timestamp_parser {
 public:
  explicit timestamp_parser(timestamp_options options);

  /// Parses the timestamp at the start of `line` (classic syslog or ISO 8601; RFC 5424 is
  /// the header parser's business). Returns the characters consumed, 0 when there is none.
  std::size_t parse(std::string_view line, time_point& out);

  /// An ISO 8601 / RFC 3339 timestamp that is the whole of `text`.
  bool parse_iso(std::string_view text, time_point& out);

 private:
  std::size_t parse_classic(std::string_view line, time_point& out);
  std::size_t parse_iso_prefix(std::string_view line, time_point& out);
  /// Seconds of the given local civil time, using the configured or system offset.
  std::int64_t local_to_unix(std::int64_t civil_seconds);
  int year_for(int month, int day, int seconds_of_day);

  timestamp_options options_;
  int last_year_ = 0;
  std::int64_t last_civil_ = 0;  ///< civil seconds (as if UTC) of the previous classic line
  bool have_last_ = false;
  // System-zone cache: the offset of one local hour.
  std::int64_t cached_hour_ = -1;
  std::int64_t cached_offset_ = 0;
};

/// Days since 1970-01-01 of a proleptic Gregorian date (no time zone involved).
std::int64_t days_from_civil(int year, unsigned month, unsigned day);

}  // namespace rcptguard::ingest
