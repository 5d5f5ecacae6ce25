// The time arguments of `rcptguard review` (--since, --until): a duration back from now, or a
// date and time, in the machine's local time zone (TZ honoured) unless it carries an offset.
// Local times go through the C library (tzset, mktime, localtime_r): g++-12's std::chrono has no
// time zone database yet.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace rcptguard::cli {

/// The accepted forms, for --help and for the message of a malformed time.
inline constexpr std::string_view time_argument_forms =
    "a duration back from now (7d, 24h, 90m, 30s) or a time: 2026-10-01, 2026-10-01T14:00, "
    "2026-10-01T14:00:30 or '2026-10-01 14:00', in local time unless it ends in Z or an offset "
    "like +02:00";

/// An instant, or why the text is not one.
struct time_argument {
  std::optional<std::int64_t> unix_seconds;  ///< empty: see problem
  /// "malformed", or a sentence naming the problem of a well-formed local time that the clock
  /// skipped (a DST change); empty when unix_seconds is set.
  std::string problem;
};

/// Reads one --since/--until value against `now_unix`. A duration d is now - d. A date alone is
/// its midnight. Without Z or an offset the time is local: a time the clock showed twice (the
/// hour repeated when DST ends) is the earlier instant; one it skipped is a problem. Years are
/// 1970 to 9999, seconds 00 to 59, offsets at most 23:59.
time_argument parse_time_argument(std::string_view text, std::int64_t now_unix);

}  // namespace rcptguard::cli
