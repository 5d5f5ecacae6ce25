// Durations as settings spell them, Postfix-style: a whole number and a unit ("500ms", "10s",
// "5m", "2h", "60d"); without a unit the number is seconds.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace rcptguard {

/// nullopt for anything else: signs, fractions, spaces, unknown units, or more than fits.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

/// The largest unit that states `d` exactly: 300000ms -> "5m", 1500ms -> "1500ms".
std::string format_duration(std::chrono::milliseconds d);

}  // namespace rcptguard
