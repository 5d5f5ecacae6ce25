// Timestamp scanning for mail-log lines; see timestamp.hpp for the formats and the year rule.
#include "ingest/timestamp.hpp"

#include <ctime>

namespace rcptguard::ingest {

namespace {

constexpr std::int64_t seconds_per_day = 86400;
// A classic line more than half a year away from the previous one is in the adjacent year.
constexpr std::int64_t half_year = 183 * seconds_per_day;

bool digit(char c) {
  return c >= '0' && c <= '9';
}

// `n` digits at `s[pos]` as a number, or -1.
int digits(std::string_view s, std::size_t pos, std::size_t n) {
  if (pos + n > s.size()) return -1;
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (!digit(s[i])) return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

// "Jan".."Dec" as 1..12, 0 otherwise. Switch on the first letter: no table scan per line.
int month_of(std::string_view s) {
  if (s.size() < 3) return 0;
  const char a = s[0];
  const char b = s[1];
  const char c = s[2];
  switch (a) {
    case 'J':
      if (b == 'a' && c == 'n') return 1;
      if (b == 'u' && c == 'n') return 6;
      if (b == 'u' && c == 'l') return 7;
      return 0;
    case 'F':
      return b == 'e' && c == 'b' ? 2 : 0;
    case 'M':
      if (b == 'a' && c == 'r') return 3;
      if (b == 'a' && c == 'y') return 5;
      return 0;
    case 'A':
      if (b == 'p' && c == 'r') return 4;
      if (b == 'u' && c == 'g') return 8;
      return 0;
    case 'S':
      return b == 'e' && c == 'p' ? 9 : 0;
    case 'O':
      return b == 'c' && c == 't' ? 10 : 0;
    case 'N':
      return b == 'o' && c == 'v' ? 11 : 0;
    case 'D':
      return b == 'e' && c == 'c' ? 12 : 0;
    default:
      return 0;
  }
}

struct civil_date {
  int year;
  unsigned month;
  unsigned day;
};

// Inverse of days_from_civil (H. Hinnant's public-domain algorithm, restated).
civil_date civil_from_days(std::int64_t z) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return {static_cast<int>(y + (m <= 2 ? 1 : 0)), m, d};
}

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  return a / b - ((a % b != 0 && (a < 0) != (b < 0)) ? 1 : 0);
}

}  // namespace

std::int64_t days_from_civil(int year, unsigned month, unsigned day) {
  const std::int64_t y = static_cast<std::int64_t>(year) - (month <= 2 ? 1 : 0);
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

std::optional<std::chrono::seconds> parse_utc_offset(std::string_view text) {
  if (text == "Z" || text == "z") return std::chrono::seconds{0};
  if (text.size() < 3 || (text[0] != '+' && text[0] != '-')) return std::nullopt;
  const int hours = digits(text, 1, 2);
  int minutes = 0;
  if (text.size() == 6 && text[3] == ':') {
    minutes = digits(text, 4, 2);
  } else if (text.size() == 5) {
    minutes = digits(text, 3, 2);
  } else if (text.size() != 3) {
    return std::nullopt;
  }
  if (hours < 0 || minutes < 0 || minutes > 59 || hours * 60 + minutes > 18 * 60) {
    return std::nullopt;
  }
  const int sign = text[0] == '-' ? -1 : 1;
  return std::chrono::seconds{sign * (hours * 3600 + minutes * 60)};
}

timestamp_parser::timestamp_parser(timestamp_options options) : options_(options) {}

std::size_t timestamp_parser::parse(std::string_view line, time_point& out) {
  if (line.empty()) return 0;
  if (digit(line[0])) return parse_iso_prefix(line, out);
  return parse_classic(line, out);
}

bool timestamp_parser::parse_iso(std::string_view text, time_point& out) {
  return !text.empty() && parse_iso_prefix(text, out) == text.size();
}

std::int64_t timestamp_parser::local_to_unix(std::int64_t civil_seconds) {
  if (options_.utc_offset) return civil_seconds - options_.utc_offset->count();
  const std::int64_t hour = floor_div(civil_seconds, 3600);
  if (hour != cached_hour_) {
    const civil_date date = civil_from_days(floor_div(hour, 24));
    std::tm local{};
    local.tm_year = date.year - 1900;
    local.tm_mon = static_cast<int>(date.month) - 1;
    local.tm_mday = static_cast<int>(date.day);
    local.tm_hour = static_cast<int>(hour - floor_div(hour, 24) * 24);
    local.tm_isdst = -1;
    const std::time_t unix = std::mktime(&local);
    cached_offset_ = unix == static_cast<std::time_t>(-1) ? 0 : hour * 3600 - unix;
    cached_hour_ = hour;
  }
  return civil_seconds - cached_offset_;
}

int timestamp_parser::year_for(int month, int day, int seconds_of_day) {
  const auto civil = [&](int year) {
    return days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) *
               seconds_per_day +
           seconds_of_day;
  };
  int year = 0;
  if (have_last_) {
    year = last_year_;
    const std::int64_t t = civil(year);
    if (t < last_civil_ - half_year) {
      ++year;
    } else if (t > last_civil_ + half_year) {
      --year;
    }
  } else if (options_.year) {
    year = *options_.year;
  } else {
    // The reference in local civil time; the zone only matters within a day of New Year.
    const std::int64_t reference = to_unix_seconds(options_.reference) +
                                   (options_.utc_offset ? options_.utc_offset->count() : 0);
    year = civil_from_days(floor_div(reference, seconds_per_day)).year;
    if (civil(year) > reference + seconds_per_day) --year;
  }
  last_year_ = year;
  last_civil_ = civil(year);
  have_last_ = true;
  return year;
}

std::size_t timestamp_parser::parse_classic(std::string_view line, time_point& out) {
  // "Mmm dd hh:mm:ss" with the day space-padded, zero-padded or a single digit.
  const int month = month_of(line);
  if (month == 0 || line.size() < 14 || line[3] != ' ') return 0;
  std::size_t pos = 4;
  if (line[pos] == ' ') ++pos;
  int day = 0;
  if (pos < line.size() && digit(line[pos])) day = line[pos++] - '0';
  if (pos < line.size() && digit(line[pos])) day = day * 10 + (line[pos++] - '0');
  if (day < 1 || day > 31 || pos >= line.size() || line[pos] != ' ') return 0;
  ++pos;
  const int h = digits(line, pos, 2);
  const int m = digits(line, pos + 3, 2);
  const int s = digits(line, pos + 6, 2);
  if (h < 0 || m < 0 || s < 0 || line[pos + 2] != ':' || line[pos + 5] != ':' || h > 23 || m > 59 ||
      s > 60) {
    return 0;
  }
  pos += 8;
  const int second_of_day = h * 3600 + m * 60 + s;
  const int year = year_for(month, day, second_of_day);
  const std::int64_t civil =
      days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) *
          seconds_per_day +
      second_of_day;
  out = from_unix_seconds(local_to_unix(civil));
  return pos;
}

std::size_t timestamp_parser::parse_iso_prefix(std::string_view line, time_point& out) {
  // YYYY-MM-DD[T ]hh:mm:ss[.frac][Z|±hh:mm|±hhmm]
  const int year = digits(line, 0, 4);
  const int month = digits(line, 5, 2);
  const int day = digits(line, 8, 2);
  if (year < 0 || month < 1 || month > 12 || day < 1 || day > 31 || line[4] != '-' ||
      line[7] != '-' || line.size() < 19 || (line[10] != 'T' && line[10] != 't')) {
    return 0;
  }
  const int h = digits(line, 11, 2);
  const int m = digits(line, 14, 2);
  const int s = digits(line, 17, 2);
  if (h < 0 || m < 0 || s < 0 || line[13] != ':' || line[16] != ':' || h > 23 || m > 59 || s > 60) {
    return 0;
  }
  std::size_t pos = 19;
  std::int64_t micros = 0;
  if (pos < line.size() && (line[pos] == '.' || line[pos] == ',')) {
    ++pos;
    int scale = 100000;
    const std::size_t start = pos;
    while (pos < line.size() && digit(line[pos])) {
      micros += (line[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start) return 0;
  }
  const std::int64_t civil =
      days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) *
          seconds_per_day +
      h * 3600 + m * 60 + s;
  std::int64_t unix = 0;
  if (pos < line.size() && (line[pos] == 'Z' || line[pos] == 'z')) {
    unix = civil;
    ++pos;
  } else if (pos < line.size() && (line[pos] == '+' || line[pos] == '-')) {
    std::size_t end = pos + 1;
    while (end < line.size() && (digit(line[end]) || line[end] == ':') && end - pos < 6) ++end;
    const auto offset = parse_utc_offset(line.substr(pos, end - pos));
    if (!offset) return 0;
    unix = civil - offset->count();
    pos = end;
  } else {
    unix = local_to_unix(civil);
  }
  out = from_unix_seconds(unix) + std::chrono::microseconds{micros};
  return pos;
}

}  // namespace rcptguard::ingest
