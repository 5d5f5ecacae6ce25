// This node's counts for the cluster store (see node_counts.hpp).
#include "cluster/node_counts.hpp"

#include <algorithm>
#include <iterator>
#include <string_view>
#include <tuple>

namespace rcptguard::cluster {

void node_counts::bump(std::map<key, count>& counts, const std::string& recipient,
                       std::uint32_t bucket) {
  count& c = counts[key{recipient, bucket}];
  ++c.value;
  c.changed = true;
}

void node_counts::add(const count_event& e) {
  ++stats_.events;
  const std::size_t new_keys =
      static_cast<std::size_t>(!minutes_.contains(key{e.recipient, e.minute})) +
      static_cast<std::size_t>(!hours_.contains(key{e.recipient, e.minute / 60}));
  if (minutes_.size() + hours_.size() + new_keys > max_keys_) {
    ++stats_.refused_full;
    return;
  }
  bump(minutes_, e.recipient, e.minute);
  bump(hours_, e.recipient, e.minute / 60);
  senders_[key{e.recipient, e.minute}].insert(e.sender);
  epoch_senders_[key{e.recipient, e.minute / 10}].insert(e.sender);
  clients_[key{e.recipient, e.minute}].insert(e.client);
  std::uint32_t& seen = last_seen_[e.recipient];
  seen = std::max(seen, e.minute);
  if (!shared_.contains(e.recipient)) {
    // Its minutes are neighbours in the map (ordered by recipient): at most the kept ten.
    std::uint32_t sum = 0;
    for (auto it = minutes_.lower_bound(key{e.recipient, 0});
         it != minutes_.end() && it->first.first == e.recipient; ++it) {
      sum += it->second.value;
    }
    if (sum >= min_count_) shared_.insert(e.recipient);
  }
}

void node_counts::take_counts(std::map<key, count>& counts, const std::set<std::string>& shared,
                              std::vector<count_row>& out) {
  for (auto& [k, c] : counts) {
    if (!c.changed || !shared.contains(k.first)) continue;
    out.push_back({k.first, k.second, c.value});
    c.changed = false;
  }
}

void node_counts::take_sketches(sketch_map& pending, const std::set<std::string>& shared,
                                std::vector<sketch_row>& out) {
  for (auto it = pending.begin(); it != pending.end();) {
    if (!shared.contains(it->first.first)) {
      ++it;
      continue;
    }
    out.push_back(
        {it->first.first,
         it->first.second,
         {std::make_move_iterator(it->second.begin()), std::make_move_iterator(it->second.end())}});
    it = pending.erase(it);
  }
}

publish_batch node_counts::take_changes() {
  publish_batch b;
  take_counts(minutes_, shared_, b.minutes);
  take_counts(hours_, shared_, b.hours);
  take_sketches(senders_, shared_, b.senders);
  take_sketches(epoch_senders_, shared_, b.epoch_senders);
  take_sketches(clients_, shared_, b.clients);
  return b;
}

void node_counts::give_back_counts(std::map<key, count>& counts,
                                   const std::vector<count_row>& rows) {
  // Only the flag: the value held may have grown since, and the next publish sends that.
  for (const count_row& r : rows) {
    const auto found = counts.find(key{r.recipient, r.bucket});
    if (found != counts.end()) found->second.changed = true;
  }
}

void node_counts::give_back_sketches(sketch_map& pending, std::vector<sketch_row>&& rows) {
  for (sketch_row& r : rows) {
    auto& items = pending[key{std::move(r.recipient), r.bucket}];
    items.insert(std::make_move_iterator(r.items.begin()), std::make_move_iterator(r.items.end()));
  }
}

void node_counts::give_back(publish_batch&& batch) {
  give_back_counts(minutes_, batch.minutes);
  give_back_counts(hours_, batch.hours);
  give_back_sketches(senders_, std::move(batch.senders));
  give_back_sketches(epoch_senders_, std::move(batch.epoch_senders));
  give_back_sketches(clients_, std::move(batch.clients));
}

void node_counts::mark_all_changed() {
  for (auto& [k, c] : minutes_) c.changed = true;
  for (auto& [k, c] : hours_) c.changed = true;
}

void node_counts::expire(std::uint32_t now_minute) {
  const auto older = [](std::uint32_t bucket, std::uint32_t now, std::uint32_t kept) {
    return bucket + kept <= now;
  };
  std::erase_if(minutes_,
                [&](const auto& kv) { return older(kv.first.second, now_minute, minutes_kept); });
  std::erase_if(
      hours_, [&](const auto& kv) { return older(kv.first.second, now_minute / 60, hours_kept); });
  std::erase_if(senders_,
                [&](const auto& kv) { return older(kv.first.second, now_minute, minutes_kept); });
  std::erase_if(clients_,
                [&](const auto& kv) { return older(kv.first.second, now_minute, minutes_kept); });
  std::erase_if(epoch_senders_, [&](const auto& kv) {
    return older(kv.first.second, now_minute / 10, epochs_kept);
  });
  std::erase_if(last_seen_,
                [&](const auto& kv) { return older(kv.second, now_minute, minutes_kept); });
  // A recipient stays shared while an hour of it is held: its later counts publish at once.
  std::set<std::string> held;
  for (const auto& [k, c] : hours_) held.insert(k.first);
  std::erase_if(shared_, [&](const std::string& r) { return !held.contains(r); });
}

std::vector<std::string> node_counts::active(std::uint32_t now_minute, std::uint32_t within,
                                             std::size_t limit) const {
  // Each recipient's RCPTs here in the kept minutes (minutes_ is ordered by recipient).
  std::map<std::string_view, std::uint32_t> volume;
  for (const auto& [k, c] : minutes_) volume[k.first] += c.value;
  struct candidate {
    std::uint32_t volume;
    std::uint32_t last;
    const std::string* recipient;
  };
  std::vector<candidate> recent;
  for (const auto& [recipient, minute] : last_seen_) {
    if (minute + within <= now_minute) continue;
    if (min_count_ > 1 && !shared_.contains(recipient)) continue;
    const auto v = volume.find(recipient);
    recent.push_back({v == volume.end() ? 0 : v->second, minute, &recipient});
  }
  // The busiest first: with more than `limit`, a flood is what a verdict needs the others for.
  std::sort(recent.begin(), recent.end(), [](const candidate& a, const candidate& b) {
    return std::tie(a.volume, a.last) > std::tie(b.volume, b.last);
  });
  std::vector<std::string> out;
  for (std::size_t k = 0; k < recent.size() && k < limit; ++k) out.push_back(*recent[k].recipient);
  return out;
}

node_counts_stats node_counts::stats() const {
  node_counts_stats s = stats_;
  s.keys = minutes_.size() + hours_.size();
  return s;
}

}  // namespace rcptguard::cluster
