// Text for the HTML report: escaping of untrusted bytes and the few number and time formats the
// report uses. Pure; only the standard library and common/text.hpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace rcptguard::report {

namespace limits {
/// An address is at most 256 bytes (RFC 5321); client names and file names rarely more.
inline constexpr std::size_t max_name = 320;
/// Summaries, reasons and action texts are ours but quote addresses.
inline constexpr std::size_t max_text = 2000;
}  // namespace limits

/// `untrusted` as text of an element or of a double- or single-quoted attribute: & < > " '
/// become character references; bytes that are not valid UTF-8 and control characters become
/// '?'; cut at `max_bytes` on a code point boundary. Nothing it returns can open a tag, end
/// an attribute or start an entity of its own.
std::string escape(std::string_view untrusted, std::size_t max_bytes = limits::max_name);

/// A fixed-point number with `decimals` digits after the point ("12.5"); NaN and infinities as 0.
std::string fixed(double value, int decimals);

/// Up to two decimals, trailing zeros dropped: 3 -> "3", 2.5 -> "2.5", 0.333 -> "0.33".
std::string short_number(double value);

/// "2026-12-05 14:00" (UTC).
std::string utc_minute(std::int64_t unix_seconds);

/// "2026-12-05" (UTC).
std::string utc_date(std::int64_t unix_seconds);

/// "Dec 05" (UTC), for chart axes.
std::string utc_day_label(std::int64_t unix_seconds);

/// "2h05m", "4m10s", "12s".
std::string span_text(std::int64_t seconds);

}  // namespace rcptguard::report
