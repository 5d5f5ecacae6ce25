// Time as the decision engine and the store see it: a wall-clock instant passed in by the caller.
// The libraries never read a clock themselves, so log replay and tests drive time explicitly;
// the transport, the daemon and the commands read it through wall_clock_now().
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <string>

namespace rcptguard {

using clock_type = std::chrono::system_clock;
using time_point = std::chrono::time_point<clock_type, std::chrono::microseconds>;

/// Seconds since the Unix epoch, the unit SQLite rows and bucket keys use.
inline std::int64_t to_unix_seconds(time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

inline time_point from_unix_seconds(std::int64_t s) {
  return time_point{std::chrono::seconds{s}};
}

/// "2026-12-05T10:00:00Z": whole seconds, UTC.
inline std::string format_utc(time_point t) {
  const std::time_t seconds = to_unix_seconds(t);
  std::tm tm{};
  ::gmtime_r(&seconds, &tm);
  char text[64];  // room for any int the fields can hold
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return text;
}

/// The system clock now, at the resolution of time_point. Only the top floor calls this.
inline time_point wall_clock_now() {
  return std::chrono::time_point_cast<std::chrono::microseconds>(clock_type::now());
}

}  // namespace rcptguard
