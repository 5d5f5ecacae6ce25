// Time as the decision engine and the store see it: a wall-clock instant passed in by the caller.
// Nothing below server/ reads a clock, so log replay and tests drive time explicitly.
#pragma once

#include <chrono>
#include <cstdint>

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

}  // namespace rcptguard
