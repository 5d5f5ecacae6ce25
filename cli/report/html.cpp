// Escaping and formatting for the report (see html.hpp).
#include "cli/report/html.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "common/text.hpp"

namespace rcptguard::report {
namespace {

// The UTC calendar fields of `unix_seconds`; false when it is out of range.
bool utc_fields(std::int64_t unix_seconds, std::tm& tm) {
  const auto t = static_cast<std::time_t>(unix_seconds);
  return ::gmtime_r(&t, &tm) != nullptr;
}

}  // namespace

std::string escape(std::string_view untrusted, std::size_t max_bytes) {
  // sanitize_for_reply() leaves valid UTF-8 without C0 controls or DEL; what is left to do is
  // the five characters HTML gives a meaning.
  const std::string clean = sanitize_for_reply(untrusted, max_bytes);
  std::string out;
  out.reserve(clean.size() + clean.size() / 8);
  for (std::size_t i = 0; i < clean.size(); ++i) {
    const char c = clean[i];
    // Bidirectional overrides and isolates (U+202A-U+202E, U+2066-U+2069) would let an address
    // display reversed, e.g. as someone else's.
    if (c == '\xe2' && i + 2 < clean.size()) {
      const auto b1 = static_cast<unsigned char>(clean[i + 1]);
      const auto b2 = static_cast<unsigned char>(clean[i + 2]);
      if ((b1 == 0x80 && b2 >= 0xaa && b2 <= 0xae) || (b1 == 0x81 && b2 >= 0xa6 && b2 <= 0xa9)) {
        out += '?';
        i += 2;
        continue;
      }
    }
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  if (untrusted.size() > max_bytes) out += "\u2026";  // cut: say so
  return out;
}

std::string fixed(double value, int decimals) {
  if (!std::isfinite(value)) value = 0.0;
  std::array<char, 64> buf{};
  const int n = std::snprintf(buf.data(), buf.size(), "%.*f", std::clamp(decimals, 0, 6), value);
  if (n < 0) return "0";
  std::string s(buf.data(), std::min<std::size_t>(static_cast<std::size_t>(n), buf.size() - 1));
  if (s == "-0" || s == "-0.0" || s == "-0.00") s.erase(0, 1);  // no negative zero on an axis
  return s;
}

std::string short_number(double value) {
  std::string s = fixed(value, 2);
  if (s.find('.') == std::string::npos) return s;
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s;
}

std::string utc_minute(std::int64_t unix_seconds) {
  std::tm tm{};
  if (!utc_fields(unix_seconds, tm)) return "?";
  std::array<char, 64> buf{};
  std::snprintf(buf.data(), buf.size(), "%04d-%02d-%02d %02d:%02d", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min);
  return buf.data();
}

std::string utc_date(std::int64_t unix_seconds) {
  return utc_minute(unix_seconds).substr(0, 10);
}

std::string utc_day_label(std::int64_t unix_seconds) {
  static constexpr std::array<const char*, 12> months{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::tm tm{};
  if (!utc_fields(unix_seconds, tm)) return "?";
  std::array<char, 32> buf{};
  std::snprintf(buf.data(), buf.size(), "%s %02d",
                months[static_cast<std::size_t>(std::clamp(tm.tm_mon, 0, 11))], tm.tm_mday);
  return buf.data();
}

std::string span_text(std::int64_t seconds) {
  seconds = std::max<std::int64_t>(seconds, 0);
  std::array<char, 64> buf{};
  if (seconds >= 3600) {
    std::snprintf(buf.data(), buf.size(), "%lldh%02lldm", static_cast<long long>(seconds / 3600),
                  static_cast<long long>(seconds % 3600 / 60));
  } else if (seconds >= 60) {
    std::snprintf(buf.data(), buf.size(), "%lldm%02llds", static_cast<long long>(seconds / 60),
                  static_cast<long long>(seconds % 60));
  } else {
    std::snprintf(buf.data(), buf.size(), "%llds", static_cast<long long>(seconds));
  }
  return buf.data();
}

}  // namespace rcptguard::report
