// Hysteresis: once a recipient is flagged it keeps its level until the score has stayed below
// that level's exit score for the cool-down, so a flood is not released between two bursts and
// one request never flips the verdict back and forth. One episode per flagged recipient.
//
// Which score: an episode is held only by the windows up to the one that opened it, and at least
// the 10-minute one: a burst opened by the 1- or 10-minute window closes about cool_down + 10
// minutes after the flood's last message, one the hour window opened (a flood paced below the
// 10-minute floor) within cool_down + 1 h, although the flood keeps the longer windows high for
// up to a day. Only an episode the 24-hour window opened (a slow flood) is held by all of them.
// When a burst episode closes, what it added is taken off the longer windows (recipient_state::
// residue) so they do not open a new episode on the old flood.
#pragma once

#include <string>

#include "common/time.hpp"
#include "decision/events.hpp"
#include "decision/settings.hpp"
#include "decision/signals.hpp"
#include "decision/windows.hpp"

namespace rcptguard::decision {

struct episode_state {
  std::string recipient;
  time_point started;
  time_point updated;  ///< last record sent
  verdict_level held = verdict_level::warn;
  time_point warn_seen;   ///< last time the score was at or above warn_exit_score
  time_point defer_seen;  ///< last time it was at or above defer_exit_score while deferring

  verdict_level peak_level = verdict_level::warn;
  double peak_score = 0.0;
  window peak_window = window::ten_minutes;
  double peak_observed = 0.0;
  double peak_baseline = 0.0;
  std::string summary;
  event_source source = event_source::policy;

  window held_by = window::ten_minutes;  ///< the longest window that holds it open
  /// 24-hour and 10-minute volume when it opened: at the close, what the burst added to the
  /// 24-hour window is day-now - day-at-open + the 10 minutes that led up to it.
  double day_at_open = 0.0;
  double ten_minutes_at_open = 0.0;
  std::string cluster_id;  ///< see episode_record::cluster_id
};

/// The longest window that holds an episode opened with `judged`: its strongest volume
/// window, at least the 10-minute one (see above).
window holding_window(const assessment& judged);

/// The score that keeps `episode` open (see above).
inline double holding_score(const episode_state& episode, const assessment& judged,
                            const thresholds& limits) {
  return score_up_to(judged, episode.held_by, limits);
}

/// A new episode at `level` (warn or defer).
episode_state open_episode(std::string_view recipient, verdict_level level, time_point now);

/// The level to answer with `judged` now; verdict_level::dunno means the episode is over.
/// A score above the entry points raises the held level at once; falling takes a cool-down per
/// level (defer -> warn -> over).
/// The answer follows the full score; only the release waits for the holding score.
verdict_level hold(episode_state& episode, const assessment& judged, const thresholds& limits,
                   time_point now);

/// The record the store keeps for the episode as it stands.
episode_record to_record(const episode_state& episode, bool ended);

}  // namespace rcptguard::decision
