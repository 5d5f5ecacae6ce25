#include "store/delta.hpp"

#include <algorithm>
#include <array>
#include <optional>
#include <unordered_map>
#include <unordered_set>

namespace rcptguard::store {

namespace {

constexpr std::int64_t seconds_per_hour = 3600;

std::int64_t floor_to(std::int64_t t, std::int64_t step) {
  const std::int64_t r = t % step;
  return r < 0 ? t - r - step : t - r;
}

std::size_t mix(std::size_t seed, std::uint64_t value) {
  // boost::hash_combine's constant; the keys are ours (ids and times), not attacker-chosen.
  return seed ^
         (std::hash<std::uint64_t>{}(value) + 0x9e3779b97f4a7c15ULL + (seed << 6U) + (seed >> 2U));
}

std::uint64_t pair_id(std::uint32_t recipient, std::uint32_t sender) {
  return (std::uint64_t{recipient} << 32U) | sender;
}

// What makes two verdicts of one recipient tell the same story: the level, the mode, the source
// and which reasons fired. Their numbers change with every message of a flood; those are kept
// at the episode's peaks.
std::string signature(const decision::verdict_record& v) {
  std::string out;
  out.push_back(static_cast<char>('0' + static_cast<int>(v.level)));
  out.push_back(v.monitor_only ? 'm' : 'e');
  out.push_back(v.source == decision::event_source::log ? 'l' : 'p');
  for (const decision::reason& r : v.reasons) {
    out.push_back('\0');
    out += r.name;
  }
  return out;
}

}  // namespace

std::size_t flagged_key_hash::operator()(const flagged_key& k) const noexcept {
  std::size_t h = std::hash<std::int64_t>{}(k.at);
  h = mix(h, k.recipient);
  h = mix(h, k.sender);
  h = mix(h, k.client);
  return mix(h, k.code);
}

std::size_t hour_sender_key_hash::operator()(const hour_sender_key& k) const noexcept {
  return mix(mix(std::hash<std::int64_t>{}(k.hour), k.recipient), k.sender);
}

std::uint8_t flagged_code(decision::verdict_level level, bool monitor_only,
                          decision::event_source source, bool header_flagged) {
  return static_cast<std::uint8_t>(static_cast<unsigned>(level) | (monitor_only ? 4U : 0U) |
                                   (source == decision::event_source::log ? 8U : 0U) |
                                   (header_flagged ? 16U : 0U));
}

bool code_header_flagged(std::uint8_t code) {
  return (code & 16U) != 0;
}

decision::verdict_level code_level(std::uint8_t code) {
  return static_cast<decision::verdict_level>(std::min(code & 3U, 2U));
}

bool code_monitor_only(std::uint8_t code) {
  return (code & 4U) != 0;
}

decision::event_source code_source(std::uint8_t code) {
  return (code & 8U) != 0 ? decision::event_source::log : decision::event_source::policy;
}

bool explanation_filter::wanted(const decision::verdict_record& verdict, bool new_peak) {
  std::string now = signature(verdict);
  const auto found = last_.find(verdict.recipient);
  if (found == last_.end()) {
    last_.emplace(verdict.recipient, std::move(now));
    return true;
  }
  if (!new_peak && found->second == now) return false;
  found->second = std::move(now);
  return true;
}

std::uint32_t delta::name(std::string_view text) {
  if (const auto found = name_ids_.find(text); found != name_ids_.end()) return found->second;
  const auto id = static_cast<std::uint32_t>(names_.size());
  names_.emplace_back(text);
  name_ids_.emplace(names_.back(), id);
  return id;
}

std::optional<std::uint32_t> delta::known(std::string_view text) const {
  const auto found = name_ids_.find(text);
  if (found == name_ids_.end()) return std::nullopt;
  return found->second;
}

// At the key limit a new key is folded before its names are interned, so the limit bounds the
// names too: a flood of new senders adds nothing once the delta is full.
void delta::add_sender(std::uint32_t recipient, std::string_view sender, std::int64_t hour) {
  if (const auto id = known(sender); id && senders_.contains({recipient, *id, hour})) return;
  if (at_limit()) {
    ++folded_;
    return;
  }
  senders_.insert({recipient, name(sender), hour});
}

void delta::add_pair(std::string_view recipient, std::string_view sender, const pair_tally& tally) {
  const auto r = known(recipient);
  const auto s = known(sender);
  auto found = r && s ? pairs_.find(pair_id(*r, *s)) : pairs_.end();
  if (found == pairs_.end()) {
    if (at_limit()) {
      ++folded_;
      return;
    }
    found = pairs_.emplace(pair_id(name(recipient), name(sender)), pair_tally{}).first;
  }
  pair_tally& p = found->second;
  p.first_seen = std::min(p.first_seen, tally.first_seen);
  p.last_seen = std::max(p.last_seen, tally.last_seen);
  p.messages += tally.messages;
}

void delta::add_flagged(std::int64_t at, std::uint32_t recipient, std::string_view sender,
                        std::string_view client, std::uint8_t code, std::uint32_t requests) {
  const auto s = known(sender);
  const auto c = known(client);
  if (s && c) {
    const auto found = flagged_.find(flagged_key{at, recipient, *s, *c, code});
    if (found != flagged_.end()) {
      found->second += requests;
      return;
    }
  }
  flagged_key key{at, recipient, 0, 0, code};
  if (at_limit()) {
    // Who sent it is forgotten, that it was flagged is not.
    ++folded_;
    key.sender = key.client = name("");
  } else {
    key.sender = name(sender);
    key.client = name(client);
  }
  flagged_[key] += requests;
}

void delta::count(std::uint32_t recipient, const decision::delivery_record& d) {
  const std::int64_t at = to_unix_seconds(d.at);
  minute_tally& m = minutes_[{floor_to(at, 60), recipient}];
  ++m.attempted;
  m.peak_minute = std::max(m.peak_minute, d.minute_volume);
  m.peak_ten_minutes = std::max(m.peak_ten_minutes, d.ten_minute_volume);
  m.in_episode = m.in_episode || d.in_episode;
  add_sender(recipient, d.sender, floor_to(at, seconds_per_hour));
  if (!d.accepted) return;
  ++m.accepted;
  m.bytes += d.size;
  std::array<decision::correspondence, 2> pairs;
  const std::size_t n = decision::correspondence_of(d, pairs);
  for (std::size_t k = 0; k < n; ++k)
    add_pair(pairs[k].recipient, pairs[k].sender, pair_tally{at, at, 1});
}

void delta::add(const decision::outbox& batch, explanation_filter& filter) {
  for (const decision::delivery_record& d : batch.deliveries) {
    count(name(d.recipient), d);
  }
  // Counts, never folded: one key per recipient-hour, the largest value reported.
  for (const decision::cluster_hour_record& h : batch.cluster_hours) {
    std::uint32_t& kept = cluster_hours_[{h.hour_start, name(h.recipient)}];
    kept = std::max(kept, h.attempted);
  }
  records_ += batch.cluster_hours.size();
  // The engine sends an episode record with every new peak, at the time of the verdict that
  // made it; and an ended one when the episode closes, after which a verdict opens a new one.
  std::unordered_set<std::string> peaks;
  std::unordered_map<std::string, time_point> ended;
  for (const decision::episode_record& e : batch.episodes) {
    if (e.ended) {
      ended[e.recipient] = e.updated;
    } else {
      peaks.insert(e.recipient + '\0' + std::to_string(e.updated.time_since_epoch().count()));
    }
  }
  for (const decision::verdict_record& v : batch.verdicts) {
    // A verdict after its recipient's episode closed in this same outbox starts a new story.
    if (const auto closed = ended.find(v.recipient);
        closed != ended.end() && v.at >= closed->second) {
      filter.episode_ended(v.recipient);
      ended.erase(closed);
    }
    // Once: with whole-second times (log replay) many verdicts share the peak's time.
    const bool new_peak =
        peaks.erase(v.recipient + '\0' + std::to_string(v.at.time_since_epoch().count())) > 0;
    add_flagged(to_unix_seconds(v.at), name(v.recipient), v.sender, v.client,
                flagged_code(v.level, v.monitor_only, v.source, v.header_flagged), 1);
    if (filter.wanted(v, new_peak)) explanations_.push_back(v);
  }
  for (const auto& [recipient, at] : ended) filter.episode_ended(recipient);
  episodes_.insert(episodes_.end(), batch.episodes.begin(), batch.episodes.end());
  records_ += batch.deliveries.size() + batch.verdicts.size() + batch.episodes.size();
}

void delta::merge(delta&& other) {
  if (empty() && positions_.empty()) {
    const std::size_t limit = key_limit_;
    *this = std::move(other);
    key_limit_ = limit;
    other.clear();
    return;
  }
  const std::vector<std::string>& texts = other.names_;
  for (const auto& [key, tally] : other.minutes_) {
    minute_tally& m = minutes_[{key.first, name(texts[key.second])}];
    m.attempted += tally.attempted;
    m.accepted += tally.accepted;
    m.bytes += tally.bytes;
    m.peak_minute = std::max(m.peak_minute, tally.peak_minute);
    m.peak_ten_minutes = std::max(m.peak_ten_minutes, tally.peak_ten_minutes);
    m.in_episode = m.in_episode || tally.in_episode;
  }
  for (const hour_sender_key& key : other.senders_) {
    add_sender(name(texts[key.recipient]), texts[key.sender], key.hour);
  }
  for (const auto& [id, tally] : other.pairs_) {
    add_pair(texts[static_cast<std::uint32_t>(id >> 32U)], texts[static_cast<std::uint32_t>(id)],
             tally);
  }
  for (const auto& [key, requests] : other.flagged_) {
    add_flagged(key.at, name(texts[key.recipient]), texts[key.sender], texts[key.client], key.code,
                requests);
  }
  explanations_.insert(explanations_.end(), std::make_move_iterator(other.explanations_.begin()),
                       std::make_move_iterator(other.explanations_.end()));
  episodes_.insert(episodes_.end(), std::make_move_iterator(other.episodes_.begin()),
                   std::make_move_iterator(other.episodes_.end()));
  for (auto& [path, position] : other.positions_) positions_[path] = position;
  for (const auto& [key, attempted] : other.cluster_hours_) {
    std::uint32_t& kept = cluster_hours_[{key.first, name(texts[key.second])}];
    kept = std::max(kept, attempted);
  }
  records_ += other.records_;
  folded_ += other.folded_;
  other.clear();
}

void delta::set_log_position(const std::string& path, std::uint64_t device, std::uint64_t inode,
                             std::uint64_t offset, std::int64_t saved_at) {
  positions_[path] = log_position{device, inode, offset, saved_at};
}

bool delta::empty() const {
  return minutes_.empty() && flagged_.empty() && explanations_.empty() && episodes_.empty() &&
         positions_.empty() && pairs_.empty() && senders_.empty() && cluster_hours_.empty();
}

void delta::clear() {
  names_.clear();
  name_ids_.clear();
  minutes_.clear();
  senders_.clear();
  pairs_.clear();
  flagged_.clear();
  explanations_.clear();
  episodes_.clear();
  positions_.clear();
  cluster_hours_.clear();
  records_ = 0;
  folded_ = 0;
}

std::size_t delta::keys() const {
  return names_.size() + minutes_.size() + senders_.size() + pairs_.size() + flagged_.size() +
         cluster_hours_.size();
}

}  // namespace rcptguard::store
