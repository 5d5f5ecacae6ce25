// The learned baseline: from a recipient's hourly history, how many RCPTs (and distinct senders)
// to expect in the coming hour and day. Pure functions of their inputs, so the same history
// gives the same baseline after a restart, in log replay and in tests.
//
// Model, per target hour t:
//  - own(t) = 0.5 x median of the same hour-of-week over the past `weeks` weeks
//           + 0.5 x median of the same hour-of-day over the past `recent_days` days
//    (only the daily median with fewer than two weekly samples; the median of the last 24 hours
//    with fewer than three daily ones). Medians ignore a flooded week or day entirely.
//  - spread(t) = MAD of those samples; day(t) = median of the last daily totals.
//  - Before `cold_start_hours` of own history, blended linearly with the server-wide prior.
//  - Rise cap: the baseline is recomputed for the same hour on every past day of the history
//    since the first full `min_history_hours`, and each day's value may exceed the previous
//    day's by at most max_rise_per_day. A slow ramp therefore raises it by at most (1 + r)^days
//    over what the first full week showed, whatever the medians say. (A ramp longer than the
//    history horizon moves that starting point; the per-class ceiling still holds.)
//  - The result is the largest of the next `lookahead_hours`, then clipped to the ceiling.
// A missing hour in the history counts as zero: the store keeps only hours with traffic. An hour
// inside a trusted episode (hourly_count::in_episode) is not a sample at all: it is skipped by
// the medians, its day by the daily totals, and it teaches no burst.
//  - Usual burst per window (1m, 10m, 1h): the largest volume of a learnable hour in the last
//    `weeks` weeks (a peak of 0 from old history reads as the hour spread evenly). The largest,
//    not a quantile: every learnable burst either stayed below the alarm or came in the
//    recipient's first week, and a quantile would need a second sighting that, once flagged,
//    is never learned.
#pragma once

#include <cstdint>
#include <span>

#include "decision/events.hpp"
#include "decision/settings.hpp"

namespace rcptguard::decision {

struct baseline {
  double hourly = 0.0;              ///< expected RCPTs in one hour
  double spread = 0.0;              ///< their median absolute deviation
  double senders_hourly = 0.0;      ///< expected distinct senders in one hour
  double daily = 0.0;               ///< expected RCPTs in 24 hours
  std::uint32_t history_hours = 0;  ///< own history behind the estimate (0 = prior only)
  /// The usual burst: the largest 1-minute, 10-minute and 1-hour volume of the learnable
  /// hours (outside trusted episodes) of the last `weeks` weeks, at most the ceiling.
  double burst_minute = 0.0;
  double burst_ten_minutes = 0.0;
  double burst_hour = 0.0;
  /// The most distinct senders of a learnable hour: storms and newsletters come from many.
  double burst_senders_hour = 0.0;
};

/// What a recipient without history is assumed to get: a quantile of everybody's mean.
struct baseline_prior {
  double hourly = 0.25;
  double spread = 0.25;
  double senders_hourly = 0.25;
  double daily = 6.0;
};

/// The prior from all recipients with at least min_history_hours of history; `fallback` when
/// fewer than prior_min_recipients qualify.
baseline_prior compute_prior(std::span<const recipient_history> histories, std::int64_t now_unix,
                             const baseline_settings& config, const baseline_prior& fallback);

/// The baseline for the hour containing `now_unix`. `hours` ascending by hour_start; entries at
/// or after the current hour are ignored (that hour is still being counted).
baseline compute_baseline(std::span<const hourly_count> hours, std::int64_t now_unix,
                          const baseline_prior& prior, const baseline_settings& config,
                          double ceiling_per_hour);

}  // namespace rcptguard::decision
