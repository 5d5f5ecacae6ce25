// Duration parsing and formatting; see duration.hpp.
#include "config/duration.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>

namespace rcptguard {

namespace {

struct unit {
  std::string_view suffix;
  std::int64_t ms;
};

// Largest first, so format_duration() picks the coarsest exact unit.
constexpr std::array<unit, 5> units{{
    {"d", 86'400'000},
    {"h", 3'600'000},
    {"m", 60'000},
    {"s", 1'000},
    {"ms", 1},
}};

}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) return std::nullopt;
  const std::string_view suffix = text.substr(digits);
  std::int64_t scale = 0;
  if (suffix.empty()) {
    scale = 1'000;
  } else {
    for (const unit& u : units) {
      if (u.suffix == suffix) scale = u.ms;
    }
    if (scale == 0) return std::nullopt;
  }
  const std::int64_t limit = std::numeric_limits<std::int64_t>::max() / scale;
  std::int64_t count = 0;
  for (std::size_t i = 0; i < digits; ++i) {
    const auto digit = static_cast<std::int64_t>(text[i] - '0');
    if (count > (limit - digit) / 10) return std::nullopt;
    count = count * 10 + digit;
  }
  return std::chrono::milliseconds{count * scale};
}

std::string format_duration(std::chrono::milliseconds d) {
  const std::int64_t ms = d.count();
  if (ms == 0) return "0s";
  // Always found: the last unit, ms, divides everything.
  const auto* exact =
      std::find_if(units.begin(), units.end(), [ms](const unit& u) { return ms % u.ms == 0; });
  return std::to_string(ms / exact->ms) + std::string{exact->suffix};
}

}  // namespace rcptguard
