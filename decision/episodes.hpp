// Hysteresis: once a recipient is flagged it keeps its level until the score has stayed below
// that level's exit score for the cool-down, so a flood is not released between two bursts and
// one request never flips the verdict back and forth. One episode per flagged recipient.
#pragma once

#include <string>

#include "common/time.hpp"
#include "decision/events.hpp"
#include "decision/settings.hpp"
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
};

/// A new episode at `level` (warn or defer).
episode_state open_episode(std::string_view recipient, verdict_level level, time_point now);

/// The level to answer with `score` now; verdict_level::dunno means the episode is over.
/// A score above the entry points raises the held level at once; falling takes a cool-down per
/// level (defer -> warn -> over).
verdict_level hold(episode_state& episode, double score, const thresholds& limits, time_point now);

/// The record the store keeps for the episode as it stands.
episode_record to_record(const episode_state& episode, bool ended);

}  // namespace rcptguard::decision
