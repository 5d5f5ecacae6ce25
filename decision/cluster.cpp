// The others' counts (see cluster.hpp).
#include "decision/cluster.hpp"

#include <algorithm>
#include <iterator>

namespace rcptguard::decision {

namespace {

std::size_t index(window w) {
  return static_cast<std::size_t>(w);
}

}  // namespace

void cluster_totals::update(std::uint64_t key_hash, const cluster_counts& counts, time_point now,
                            std::vector<cluster_hour_record>& completed) {
  auto found = entries_.find(key_hash);
  if (found == entries_.end()) {
    if (entries_.size() >= max_recipients_) {
      ++stats_.refused_full;
      return;
    }
    found = entries_.emplace(key_hash, entry{}).first;
  }
  entry& e = found->second;
  const std::uint32_t recorded = e.recorded_hour;
  const auto reset = resets_.find(key_hash);
  const std::uint32_t reset_minute = reset == resets_.end() ? 0 : reset->second;
  e = entry{};
  e.at = now;
  const std::uint32_t minute = counts.minute;
  // The hours before the current one are complete: each goes to the history once (again after
  // a restart: the store keeps the largest value).
  const std::uint32_t hour = minute / 60;
  const auto kept = static_cast<std::uint32_t>(counts.hours.size());
  for (std::uint32_t back = kept - 1; back >= 1; --back) {
    if (back > hour || hour - back <= recorded) continue;
    const std::uint32_t others = counts.hours[kept - 1 - back];
    if (others == 0) continue;
    completed.push_back({counts.recipient, std::int64_t{hour - back} * 3600, others});
  }
  e.recorded_hour = std::max(recorded, hour == 0 ? 0 : hour - 1);
  e.others.advance(minute);
  // Each minute bucket counts into its hour too; what the hours hold beyond those minutes goes
  // into the hour buckets alone, so a window over both reads each RCPT once.
  std::array<std::uint32_t, 24> in_minutes{};
  for (std::uint32_t k = 0; k < counts.minutes.size(); ++k) {
    const std::uint32_t m = minute - static_cast<std::uint32_t>(counts.minutes.size() - 1) + k;
    if (m > minute) continue;                              // before the epoch: nothing
    if (reset_minute != 0 && m <= reset_minute) continue;  // counted before the reset
    e.others.restore_minute(m, 0, counts.minutes[k]);
    const std::uint32_t hours_back = minute / 60 - m / 60;
    if (hours_back < in_minutes.size())
      in_minutes[in_minutes.size() - 1 - hours_back] += counts.minutes[k];
  }
  for (std::uint32_t k = 0; k < counts.hours.size(); ++k) {
    const std::uint32_t hours_back = static_cast<std::uint32_t>(counts.hours.size() - 1) - k;
    if (hours_back > minute / 60) continue;
    const std::uint32_t rest =
        counts.hours[k] > in_minutes[k] ? counts.hours[k] - in_minutes[k] : 0;
    e.others.restore_hour(minute / 60 - hours_back, 0, rest);
  }
  e.senders_ten = counts.senders_ten;
  e.senders_hour = counts.senders_hour;
  e.clients_ten = counts.clients_ten;
  ++stats_.updates;
}

void cluster_totals::reset(std::uint64_t key_hash, std::uint32_t minute) {
  // Until the next update none of their counts join.
  const auto found = entries_.find(key_hash);
  if (found != entries_.end()) {
    const std::uint32_t recorded = found->second.recorded_hour;
    found->second = entry{};
    found->second.recorded_hour = recorded;
  }
  if (!resets_.contains(key_hash) && resets_.size() >= max_recipients_) {
    // Operators' commands are few; at the bound the oldest reset makes room.
    resets_.erase(std::ranges::min_element(resets_, {}, [](const auto& r) { return r.second; }));
  }
  resets_[key_hash] = minute;
}

void cluster_totals::clear() {
  if (!entries_.empty()) entries_.clear();
  ++stats_.losses;
}

void cluster_totals::add_to(std::uint64_t key_hash, observation& seen, time_point now,
                            std::chrono::milliseconds max_age) const {
  const auto found = entries_.find(key_hash);
  if (found == entries_.end() || now - found->second.at > max_age) return;
  const entry& e = found->second;
  const std::uint32_t minute = unix_minute(now);
  const unsigned second = second_in_minute(now);
  for (const window w : all_windows) {
    seen.volume[index(w)] += e.others.attempted(w, minute, second);
  }
  seen.senders_ten = std::max(seen.senders_ten, static_cast<double>(e.senders_ten));
  seen.senders_hour = std::max(seen.senders_hour, static_cast<double>(e.senders_hour));
  seen.clients_ten = std::max(seen.clients_ten, static_cast<double>(e.clients_ten));
}

void cluster_totals::expire(time_point now, std::chrono::milliseconds max_age, std::size_t budget) {
  for (auto it = entries_.begin(); it != entries_.end() && budget > 0; --budget) {
    it = now - it->second.at > max_age ? entries_.erase(it) : std::next(it);
  }
  // A reset matters while their counts from before it can still be read: the day window's.
  const std::uint32_t minute = unix_minute(now);
  for (auto it = resets_.begin(); it != resets_.end() && budget > 0; --budget) {
    it = minute - std::min(minute, it->second) > reset_kept_minutes ? resets_.erase(it)
                                                                    : std::next(it);
  }
}

cluster_stats cluster_totals::stats() const {
  cluster_stats s = stats_;
  s.recipients = entries_.size();
  return s;
}

}  // namespace rcptguard::decision
