// Inline SVG charts (see charts.hpp). Coordinates are written with one decimal; every text
// from the database goes through escape().
#include "cli/report/charts.hpp"

#include <algorithm>
#include <cmath>

#include "cli/report/html.hpp"

namespace rcptguard::report {
namespace {

constexpr std::int64_t hour_seconds = 3600;
constexpr std::int64_t day_seconds = 86400;
/// At most this many day labels under a chart; beyond it every k-th day is labelled.
constexpr std::int64_t max_day_labels = 16;

std::string num(double v) {
  return fixed(v, 1);
}

std::string plural(std::int64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// <rect x y width height class>[<title>]</rect>; `title` must be escaped already.
void rect(std::string& out, double x, double y, double w, double h, const char* cls,
          const std::string& title) {
  out += "<rect class=\"";
  out += cls;
  out += "\" x=\"" + num(x) + "\" y=\"" + num(y) + "\" width=\"" + num(w) + "\" height=\"" +
         num(h) + "\">";
  if (!title.empty()) out += "<title>" + title + "</title>";
  out += "</rect>";
}

void text(std::string& out, double x, double y, const char* anchor, const char* cls,
          const std::string& body) {
  out += "<text class=\"";
  out += cls;
  out += "\" x=\"" + num(x) + "\" y=\"" + num(y) + "\" text-anchor=\"";
  out += anchor;
  out += "\">" + body + "</text>";
}

// Horizontal grid lines at 0, half and the top of the scale, labelled on the left. A scale of
// whole things (episodes) has no line at half of an odd top: "0.5 episodes" reads wrong.
void y_grid(std::string& out, double top, double bottom, double y_max, bool whole = false) {
  out += "<g class=\"grid\">";
  for (const double share : {0.0, 0.5, 1.0}) {
    if (whole && share == 0.5 && std::fmod(y_max, 2.0) != 0.0) continue;
    const double y = bottom - share * (bottom - top);
    out += "<line x1=\"" + num(chart::plot_left) + "\" x2=\"" + num(chart::plot_right) +
           "\" y1=\"" + num(y) + "\" y2=\"" + num(y) + "\"/>";
    text(out, chart::plot_left - 6, y + 4, "end", "axis", short_number(share * y_max));
  }
  out += "</g>";
}

std::int64_t label_step(std::int64_t days) {
  return std::max<std::int64_t>(1, (days + max_day_labels - 1) / max_day_labels);
}

std::string svg_open(const char* cls, double height, const std::string& attributes,
                     const std::string& label) {
  return "<svg class=\"chart " + std::string{cls} + "\" viewBox=\"0 0 " + num(chart::width) + " " +
         num(height) + "\" role=\"img\" aria-label=\"" + label + "\"" + attributes + ">";
}

}  // namespace

double nice_ceiling(double value) {
  if (!(value > 1.0)) return 1.0;
  double power = 1.0;
  while (power * 10.0 < value) power *= 10.0;
  for (const double step : {1.0, 2.0, 5.0, 10.0}) {
    if (step * power >= value) return step * power;
  }
  return 10.0 * power;
}

std::string episodes_per_day_svg(const std::vector<day_summary>& days) {
  const auto n = static_cast<std::int64_t>(days.size());
  std::int64_t highest = 0;
  std::int64_t total = 0;
  for (const day_summary& d : days) {
    highest = std::max(highest, d.warn_episodes + d.defer_episodes);
    total += d.warn_episodes + d.defer_episodes;
  }
  const double y_max = nice_ceiling(static_cast<double>(highest));
  const double top = chart::daily_plot_top;
  const double bottom = chart::daily_plot_bottom;
  const double slot =
      n == 0 ? 0.0 : (chart::plot_right - chart::plot_left) / static_cast<double>(n);
  const auto height_of = [&](std::int64_t count) {
    return static_cast<double>(count) / y_max * (bottom - top);
  };

  std::string body;
  y_grid(body, top, bottom, y_max, true);
  std::int64_t bars = 0;
  const std::int64_t step = label_step(n);
  body += "<g class=\"bars\">";
  for (std::int64_t i = 0; i < n; ++i) {
    const day_summary& d = days[static_cast<std::size_t>(i)];
    const double x = chart::plot_left + static_cast<double>(i) * slot;
    const double bar_x = x + slot * (1.0 - chart::bar_share) / 2.0;
    const double bar_w = slot * chart::bar_share;
    const std::string day = utc_date(d.day_start);
    double y = bottom;
    if (d.defer_episodes > 0) {
      const double h = height_of(d.defer_episodes);
      y -= h;
      rect(body, bar_x, y, bar_w, h, "defer",
           day + ": " + plural(d.defer_episodes, "episode", "episodes") + " peaking at defer");
      ++bars;
    }
    if (d.warn_episodes > 0) {
      const double h = height_of(d.warn_episodes);
      y -= h;
      rect(body, bar_x, y, bar_w, h, "warn",
           day + ": " + plural(d.warn_episodes, "episode", "episodes") + " peaking at warn");
      ++bars;
    }
    if (d.warn_episodes + d.defer_episodes > 0) {
      text(body, x + slot / 2.0, y - 4, "middle", "count",
           std::to_string(d.warn_episodes + d.defer_episodes));
    }
    if (i % step == 0) {
      body += "<text class=\"axis\" x=\"" + num(x + slot / 2.0) + "\" y=\"" + num(bottom + 16) +
              "\" text-anchor=\"middle\">" + utc_day_label(d.day_start) + "<title>" + day + ": " +
              plural(d.warn_episodes + d.defer_episodes, "episode", "episodes") + ", " +
              plural(d.flagged_requests, "flagged request", "flagged requests") + "</title></text>";
    }
  }
  body += "</g>";

  const std::string attributes = " data-chart=\"episodes-per-day\" data-days=\"" +
                                 std::to_string(n) + "\" data-bars=\"" + std::to_string(bars) +
                                 "\" data-episodes=\"" + std::to_string(total) + "\" data-max=\"" +
                                 short_number(y_max) + "\"";
  return svg_open("daily", chart::daily_height, attributes, "Alert episodes per day") + body +
         "</svg>";
}

std::string hourly_svg(const recipient_section& section, std::int64_t since, std::int64_t until) {
  const std::vector<hour_point>& hours = section.hours;
  const auto n = static_cast<std::int64_t>(hours.size());
  double highest = 0.0;
  for (const hour_point& h : hours) {
    highest = std::max({highest, static_cast<double>(h.observed), h.expected});
  }
  const double y_max = nice_ceiling(highest);
  const double top = chart::hourly_plot_top;
  const double bottom = chart::hourly_plot_bottom;
  const double slot =
      n == 0 ? 0.0 : (chart::plot_right - chart::plot_left) / static_cast<double>(n);
  const std::int64_t first = n == 0 ? since : hours.front().hour_start;
  const auto y_of = [&](double v) {
    return bottom - std::clamp(v / y_max, 0.0, 1.0) * (bottom - top);
  };
  const auto x_of_time = [&](std::int64_t t) {
    const double x = chart::plot_left +
                     static_cast<double>(t - first) / static_cast<double>(hour_seconds) * slot;
    return std::clamp(x, chart::plot_left, chart::plot_right);
  };

  std::string body;
  y_grid(body, top, bottom, y_max);

  // Day boundaries, labelled at noon.
  const std::int64_t step = label_step((n + 23) / 24);
  body += "<g class=\"days\">";
  std::int64_t day_index = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t start = hours[static_cast<std::size_t>(i)].hour_start;
    if (start % day_seconds != 0 && i != 0) continue;
    const double x = chart::plot_left + static_cast<double>(i) * slot;
    if (start % day_seconds == 0) {
      body += "<line x1=\"" + num(x) + "\" x2=\"" + num(x) + "\" y1=\"" + num(top) + "\" y2=\"" +
              num(bottom) + "\"/>";
    }
    const std::int64_t noon = start - start % day_seconds + day_seconds / 2;
    if (day_index++ % step == 0 && noon >= start && noon < first + n * hour_seconds) {
      text(body, x_of_time(noon), bottom + 16, "middle", "axis", utc_day_label(start));
    }
  }
  body += "</g>";

  // Episodes behind everything else.
  std::int64_t spans = 0;
  body += "<g class=\"episodes\">";
  for (const episode& e : section.episodes) {
    if (n == 0 || e.ended < since || e.started >= until) continue;
    const double x0 = x_of_time(std::max(e.started, since));
    const double x1 = x_of_time(std::min(e.ended, until));
    const double w = std::max(x1 - x0, 2.0);  // a five-minute bomb is still visible
    rect(body, std::min(x0, chart::plot_right - w), top, w, bottom - top,
         e.peak_level == "defer" ? "episode defer" : "episode warn",
         "episode " + utc_minute(e.started) + " to " + utc_minute(e.ended) + " UTC" +
             (e.open ? " (open)" : "") + ", peak " + escape(e.peak_level) + " " +
             fixed(e.peak_score, 2) + " (" + escape(e.peak_window) +
             "): " + escape(e.summary, limits::max_text));
    ++spans;
  }
  body += "</g>";

  std::int64_t bars = 0;
  body += "<g class=\"volume\">";
  for (std::int64_t i = 0; i < n; ++i) {
    const hour_point& h = hours[static_cast<std::size_t>(i)];
    if (h.observed <= 0) continue;
    const double y = y_of(static_cast<double>(h.observed));
    rect(body,
         chart::plot_left + static_cast<double>(i) * slot + slot * (1.0 - chart::bar_share) / 2.0,
         y, slot * chart::bar_share, bottom - y, "bar",
         utc_minute(h.hour_start) + " UTC: " + plural(h.observed, "message", "messages") +
             " (accepted " + std::to_string(h.accepted) + "), expected " +
             short_number(h.expected));
    ++bars;
  }
  body += "</g>";

  std::string points;
  for (std::int64_t i = 0; i < n; ++i) {
    if (!points.empty()) points += ' ';
    points += num(chart::plot_left + (static_cast<double>(i) + 0.5) * slot) + "," +
              num(y_of(hours[static_cast<std::size_t>(i)].expected));
  }
  body += "<polyline class=\"baseline\" points=\"" + points + "\"/>";

  std::int64_t marks = 0;
  body += "<g class=\"marks\">";
  for (std::int64_t i = 0; i < n; ++i) {
    const hour_point& h = hours[static_cast<std::size_t>(i)];
    if (h.warn + h.defer + h.flag <= 0) continue;
    const char* cls = h.defer > 0 ? "mark defer" : h.flag > 0 ? "mark flag" : "mark warn";
    std::string what;
    for (const auto& [count, name] :
         {std::pair{h.defer, "defer"}, std::pair{h.flag, "flag"}, std::pair{h.warn, "warn"}}) {
      if (count <= 0) continue;
      if (!what.empty()) what += ", ";
      what += std::to_string(count) + " " + name;
    }
    const double w = std::max(slot, 2.0);
    rect(body, std::min(chart::plot_left + static_cast<double>(i) * slot, chart::plot_right - w),
         chart::mark_top, w, chart::mark_height, cls, utc_minute(h.hour_start) + " UTC: " + what);
    ++marks;
  }
  body += "</g>";

  const std::string attributes =
      " data-chart=\"hourly\" data-recipient=\"" + escape(section.recipient) + "\" data-hours=\"" +
      std::to_string(n) + "\" data-bars=\"" + std::to_string(bars) + "\" data-baseline-points=\"" +
      std::to_string(n) + "\" data-episodes=\"" + std::to_string(spans) + "\" data-marks=\"" +
      std::to_string(marks) + "\" data-max=\"" + short_number(y_max) + "\"";
  return svg_open("hourly", chart::hourly_height, attributes,
                  "Hourly volume against the baseline for " + escape(section.recipient)) +
         body + "</svg>";
}

}  // namespace rcptguard::report
