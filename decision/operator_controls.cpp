// The engine's operator controls (see engine.hpp): run-time allow entries, counter resets and
// episode releases. Pure like the rest of the engine: the caller passes the time, and records
// who asked and why.
#include <algorithm>
#include <cstdio>

#include "decision/engine.hpp"
#include "decision/keys.hpp"

namespace rcptguard::decision {

namespace {

std::string_view kind_name(allow_kind kind) {
  return kind == allow_kind::sender ? "sender" : "recipient";
}

std::string level_name(verdict_level level) {
  return level == verdict_level::defer ? "defer" : "warn";
}

std::string score_text(double score) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f", score);
  return text;
}

}  // namespace

operator_result engine::operator_allow(operator_allow_entry entry, time_point now) {
  operator_result result;
  normalise_address(entry.address, config_.recipient_delimiters, result.key);
  if (result.key.find('@') == std::string::npos) {
    result.message = "not an address: expected local-part@domain";
    return result;
  }
  if (!entry.for_good() && entry.until <= now) {
    result.message = "the end time " + format_utc(entry.until) + " is not in the future";
    return result;
  }
  entry.address = result.key;
  const allow_kind kind = entry.kind;
  const std::string until = entry.for_good() ? "for good" : "until " + format_utc(entry.until);
  const operator_allowlist::add_result added = operator_allows_.add(std::move(entry));
  if (added == operator_allowlist::add_result::full) {
    result.message = "the operator allow-list is full (" +
                     std::to_string(operator_allowlist::max_entries) +
                     " entries): remove some with unallow first";
    return result;
  }
  if (kind == allow_kind::recipient) {
    if (const std::uint32_t slot = recipients_.find(hash_(result.key));
        slot != recipient_table::npos) {
      classify(recipients_.at(slot), result.key);
    }
  }
  result.ok = true;
  result.message =
      "allowed " + std::string(kind_name(kind)) + " " + result.key + " " + until +
      (added == operator_allowlist::add_result::replaced ? " (replaced its entry)" : "");
  return result;
}

operator_result engine::operator_unallow(std::string_view address, allow_kind kind,
                                         time_point /*now*/) {
  operator_result result;
  normalise_address(address, config_.recipient_delimiters, result.key);
  const std::string what = std::string(kind_name(kind)) + " " + result.key;
  const bool configured = kind == allow_kind::recipient ? allow_recipients_.matches(result.key)
                                                        : allow_senders_.matches(result.key);
  const std::string still = configured ? std::string("; still allowed by detection.allow_") +
                                             std::string(kind_name(kind)) + "s"
                                       : "";
  if (!operator_allows_.remove(result.key, kind)) {
    result.message = "no operator allow entry for " + what + still;
    return result;
  }
  if (kind == allow_kind::recipient) {
    if (const std::uint32_t slot = recipients_.find(hash_(result.key));
        slot != recipient_table::npos) {
      classify(recipients_.at(slot), result.key);
    }
  }
  result.ok = true;
  result.message = "removed the operator allow entry for " + what + still;
  return result;
}

operator_result engine::operator_reset(std::string_view recipient, time_point now) {
  operator_result result;
  normalise_address(recipient, config_.recipient_delimiters, result.key);
  if (result.key.empty()) {
    result.message = "not an address";
    return result;
  }
  const std::uint64_t key_hash = hash_(result.key);
  const std::uint32_t slot = recipients_.find(key_hash);
  result.ok = true;
  if (slot == recipient_table::npos) {
    result.message = result.key + " is not tracked: it has no live counters";
    return result;
  }
  reset_counters(slot, now);
  result.message = "counters of " + result.key + " zeroed";
  if (const auto episode = episodes_.find(key_hash); episode != episodes_.end()) {
    result.message += "; its open episode (" + level_name(episode->second.held) +
                      ") cools down by its rules (release ends it now)";
  }
  return result;
}

operator_result engine::operator_release(std::string_view recipient, time_point now) {
  operator_result result;
  normalise_address(recipient, config_.recipient_delimiters, result.key);
  const std::uint64_t key_hash = hash_(result.key);
  const auto episode = episodes_.find(key_hash);
  if (result.key.empty() || episode == episodes_.end()) {
    result.message = "no open episode for " + result.key +
                     ": nothing released (reset zeroes "
                     "its counters without one)";
    return result;
  }
  const std::string story =
      "episode of " + result.key + " since " + format_utc(episode->second.started) + " (peak " +
      level_name(episode->second.peak_level) + " " + score_text(episode->second.peak_score) + ")";
  close_episode(key_hash, now, close_cause::released);
  if (const std::uint32_t slot = recipients_.find(key_hash); slot != recipient_table::npos) {
    reset_counters(slot, now);
  }
  result.ok = true;
  result.message = story + " released; counters zeroed";
  return result;
}

void engine::reset_counters(std::uint32_t slot, time_point now) {
  recipient_state& state = recipients_.at(slot);
  cluster_.reset(state.key_hash, unix_minute(now));
  state.windows = recipient_windows{};
  state.windows.advance(unix_minute(now));
  state.residue = 0;
  state.residue_until = 0;
  state.set(recipient_state::evidence, false);
  evidence_.erase(state.key_hash);
  // The pair tracker remembers (recipient serial, sender) fingerprints for the 10-minute and
  // hour windows; under a new serial every sender and client counts as new again.
  recipients_.renew_serial(slot);
}

std::vector<episode_view> engine::open_episodes(time_point now) const {
  std::vector<episode_view> out;
  out.reserve(episodes_.size());
  for (const auto& [key_hash, episode] : episodes_) {
    episode_view view;
    view.recipient = episode.recipient;
    view.level = episode.held;
    view.started = episode.started;
    view.peak_score = episode.peak_score;
    if (const std::uint32_t slot = recipients_.find(key_hash); slot != recipient_table::npos) {
      const recipient_state& state = recipients_.at(slot);
      view.score = assess(observe(state, key_hash, now), limits_of(state)).score;
    }
    out.push_back(std::move(view));
  }
  std::sort(out.begin(), out.end(), [](const episode_view& a, const episode_view& b) {
    return a.started != b.started ? a.started < b.started : a.recipient < b.recipient;
  });
  return out;
}

void engine::expire_operator_allows(time_point now) {
  std::vector<operator_allow_entry> expired;  // empty, no allocation, until an entry expires
  operator_allows_.expire(now, expired);
  for (const operator_allow_entry& entry : expired) {
    if (entry.kind != allow_kind::recipient) continue;
    if (const std::uint32_t slot = recipients_.find(hash_(entry.address));
        slot != recipient_table::npos) {
      classify(recipients_.at(slot), entry.address);
    }
  }
}

void engine::restore_operator_allows(const std::vector<operator_allow_entry>& entries,
                                     time_point now) {
  for (const operator_allow_entry& entry : entries) {
    if (!entry.for_good() && entry.until <= now) continue;
    static_cast<void>(operator_allow(entry, now));
  }
}

}  // namespace rcptguard::decision
