// --since/--until: durations through config/duration.hpp, dates and times by a strict little
// reader (ISO 8601 extended, a space allowed for the 'T'), local time through the C library.
#include "cli/time_argument.hpp"

#include <chrono>
#include <ctime>

#include "config/duration.hpp"

namespace rcptguard::cli {
namespace {

/// The fields as written; the reader checks ranges, mktime() checks that the time exists.
struct civil_time {
  int year = 0;
  int month = 0;
  int day = 0;
  int hour = 0;
  int minute = 0;
  int second = 0;
  bool has_offset = false;
  int offset_seconds = 0;  ///< east of UTC
};

class reader {
 public:
  explicit reader(std::string_view text) : text_(text) {}

  /// Exactly `n` ASCII digits.
  bool digits(int n, int& out) {
    out = 0;
    for (int k = 0; k < n; ++k) {
      if (at_end() || text_[pos_] < '0' || text_[pos_] > '9') return false;
      out = out * 10 + (text_[pos_++] - '0');
    }
    return true;
  }
  bool eat(char c) {
    if (at_end() || text_[pos_] != c) return false;
    ++pos_;
    return true;
  }
  bool eat_any(std::string_view set) {
    if (at_end() || set.find(text_[pos_]) == std::string_view::npos) return false;
    ++pos_;
    return true;
  }
  char peek() const { return at_end() ? '\0' : text_[pos_]; }
  bool at_end() const { return pos_ >= text_.size(); }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

std::optional<civil_time> read_civil(std::string_view text) {
  reader r(text);
  civil_time t;
  if (!r.digits(4, t.year) || !r.eat('-') || !r.digits(2, t.month) || !r.eat('-') ||
      !r.digits(2, t.day)) {
    return std::nullopt;
  }
  if (!r.at_end()) {
    if (!r.eat_any("Tt ") || !r.digits(2, t.hour) || !r.eat(':') || !r.digits(2, t.minute)) {
      return std::nullopt;
    }
    if (r.eat(':') && !r.digits(2, t.second)) return std::nullopt;
    if (r.eat_any("Zz")) {
      t.has_offset = true;
    } else if (const char sign = r.peek(); sign == '+' || sign == '-') {
      r.eat(sign);
      int hours = 0;
      int minutes = 0;
      if (!r.digits(2, hours) || !r.eat(':') || !r.digits(2, minutes)) return std::nullopt;
      if (hours > 23 || minutes > 59) return std::nullopt;
      t.has_offset = true;
      t.offset_seconds = (sign == '-' ? -1 : 1) * (hours * 3600 + minutes * 60);
    }
    if (!r.at_end()) return std::nullopt;
  }
  const std::chrono::year_month_day date{std::chrono::year{t.year},
                                         std::chrono::month{static_cast<unsigned>(t.month)},
                                         std::chrono::day{static_cast<unsigned>(t.day)}};
  if (t.year < 1970 || !date.ok() || t.hour > 23 || t.minute > 59 || t.second > 59) {
    return std::nullopt;
  }
  return t;
}

std::int64_t utc_instant(const civil_time& t) {
  const std::chrono::sys_days day{std::chrono::year_month_day{
      std::chrono::year{t.year}, std::chrono::month{static_cast<unsigned>(t.month)},
      std::chrono::day{static_cast<unsigned>(t.day)}}};
  return std::int64_t{day.time_since_epoch().count()} * 86400 + t.hour * 3600 + t.minute * 60 +
         t.second - t.offset_seconds;
}

// Every instant whose local time shows exactly these fields: one normally, two in the hour
// repeated when DST ends, none in the hour skipped when it starts. mktime() is asked with each
// DST flag and its answer kept only when localtime_r() shows the same fields back (mktime
// silently moves a skipped time, and honours a wrong flag by shifting an hour).
std::optional<std::int64_t> local_instant(const civil_time& t) {
  ::tzset();  // localtime_r need not; TZ may have changed since the last call
  std::optional<std::int64_t> earliest;
  for (const int dst : {0, 1, -1}) {
    std::tm fields{};
    fields.tm_year = t.year - 1900;
    fields.tm_mon = t.month - 1;
    fields.tm_mday = t.day;
    fields.tm_hour = t.hour;
    fields.tm_min = t.minute;
    fields.tm_sec = t.second;
    fields.tm_isdst = dst;
    const std::time_t instant = std::mktime(&fields);
    std::tm back{};
    if (::localtime_r(&instant, &back) == nullptr) continue;
    if (back.tm_year != t.year - 1900 || back.tm_mon != t.month - 1 || back.tm_mday != t.day ||
        back.tm_hour != t.hour || back.tm_min != t.minute || back.tm_sec != t.second) {
      continue;
    }
    if (!earliest || instant < *earliest) earliest = instant;
  }
  return earliest;
}

}  // namespace

time_argument parse_time_argument(std::string_view text, std::int64_t now_unix) {
  if (const auto back = parse_duration(text)) {
    return {now_unix - std::chrono::duration_cast<std::chrono::seconds>(*back).count(), {}};
  }
  const std::optional<civil_time> t = read_civil(text);
  if (!t) return {std::nullopt, "malformed"};
  if (t->has_offset) return {utc_instant(*t), {}};
  if (const auto instant = local_instant(*t)) return {*instant, {}};
  return {std::nullopt,
          "does not exist in the local time zone (the clock skipped it at a DST change); give "
          "an offset, e.g. +01:00"};
}

}  // namespace rcptguard::cli
