// The report's charts as inline SVG, drawn here so the file needs no script and fetches nothing.
// Each chart is an <svg class="chart"> with data-* attributes that count what it drew, so a
// test (or a curious analyst) can check a chart without measuring pixels. Pure: data in,
// markup out.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cli/report/model.hpp"

namespace rcptguard::report {

/// Geometry shared by the charts (SVG user units; the charts scale to the page width).
namespace chart {
inline constexpr double width = 1000.0;
inline constexpr double plot_left = 60.0;
inline constexpr double plot_right = 980.0;
/// Hourly chart: the strip of verdict marks above the plot, the plot, then the day labels.
inline constexpr double hourly_height = 250.0;
inline constexpr double mark_top = 6.0;
inline constexpr double mark_height = 10.0;
inline constexpr double hourly_plot_top = 24.0;
inline constexpr double hourly_plot_bottom = 214.0;
/// Daily chart.
inline constexpr double daily_height = 200.0;
inline constexpr double daily_plot_top = 20.0;
inline constexpr double daily_plot_bottom = 164.0;
/// A bar fills this share of its slot.
inline constexpr double bar_share = 0.8;
}  // namespace chart

/// The smallest of 1, 2, 5 x 10^k (k >= 0) that is at least `value`; 1 for anything below 1.
double nice_ceiling(double value);

/// The overview: episodes started per UTC day as bars stacked by peak level (defer below,
/// warn on top), each day's flagged requests in its tooltip. data-chart="episodes-per-day",
/// data-days, data-bars (rects drawn), data-episodes (their total), data-max (the y scale).
std::string episodes_per_day_svg(const std::vector<day_summary>& days);

/// One recipient's period, an hour per slot: a bar per hour with mail (observed volume), the
/// baseline as a polyline with a point per hour at the slot's centre, its episodes shaded
/// (clipped to the period), and a mark above each hour with verdicts, coloured by the most
/// severe (defer, then flag, then warn). data-chart="hourly", data-recipient, data-hours,
/// data-bars, data-baseline-points, data-episodes, data-marks, data-max. `since` and `until`
/// bound the episode shading; the slots are section.hours.
std::string hourly_svg(const recipient_section& section, std::int64_t since, std::int64_t until);

}  // namespace rcptguard::report
