// Episode hysteresis and records (see episodes.hpp).
#include "decision/episodes.hpp"

#include <algorithm>

#include "decision/signals.hpp"

namespace rcptguard::decision {

episode_state open_episode(std::string_view recipient, verdict_level level, time_point now) {
  episode_state episode;
  episode.recipient.assign(recipient);
  episode.started = now;
  episode.updated = now;
  episode.held = level;
  episode.warn_seen = now;
  episode.defer_seen = now;
  episode.peak_level = level;
  return episode;
}

verdict_level hold(episode_state& episode, const assessment& judged, const thresholds& limits,
                   time_point now) {
  const verdict_level raw = level_for(judged.score, limits);
  const double holding = holding_score(episode, judged, limits);
  if (holding >= limits.warn_exit_score) episode.warn_seen = std::max(episode.warn_seen, now);
  if (holding >= limits.defer_exit_score) episode.defer_seen = std::max(episode.defer_seen, now);
  if (raw > episode.held) {
    episode.held = raw;
    episode.defer_seen = std::max(episode.defer_seen, now);
  }
  if (episode.held == verdict_level::defer && now - episode.defer_seen >= limits.cool_down) {
    episode.held = verdict_level::warn;
  }
  if (episode.held == verdict_level::warn && now - episode.warn_seen >= limits.cool_down) {
    return verdict_level::dunno;
  }
  return std::max(raw, episode.held);
}

window holding_window(const assessment& judged) {
  return std::max(judged.strongest, window::ten_minutes);
}

episode_record to_record(const episode_state& episode, bool ended) {
  episode_record record;
  record.recipient = episode.recipient;
  record.started = episode.started;
  record.updated = episode.updated;
  record.ended = ended;
  record.peak_level = episode.peak_level;
  record.peak_score = episode.peak_score;
  record.peak_window = window_name(episode.peak_window);
  record.peak_observed = episode.peak_observed;
  record.peak_baseline = episode.peak_baseline;
  record.summary = episode.summary;
  record.source = episode.source;
  record.cluster_id = episode.cluster_id;
  return record;
}

}  // namespace rcptguard::decision
