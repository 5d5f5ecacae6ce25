// Correspondence on its way to the cluster store (see correspondent_queue.hpp).
#include "cluster/correspondent_queue.hpp"

#include <algorithm>
#include <utility>

namespace rcptguard::cluster {

correspondent_queue::correspondent_queue(std::size_t max_pending, std::size_t max_remembered,
                                         std::uint64_t seed)
    : max_pending_(max_pending), max_remembered_(max_remembered), hash_(seed) {}

std::uint64_t correspondent_queue::digest(std::string_view recipient,
                                          std::string_view sender) const {
  // Keyed: addresses are chosen by whoever sends mail, who must not be able to make a real
  // correspondent's pair look published already.
  return decision::mix(hash_(recipient), hash_(sender));
}

void correspondent_queue::add(std::string_view recipient, std::string_view sender,
                              std::uint32_t minute) {
  const std::uint64_t d = digest(recipient, sender);
  if (published_.contains(d)) return;
  const auto found = pending_.find(d);
  if (found != pending_.end()) {
    found->second.minute = std::min(found->second.minute, minute);
    return;
  }
  if (pending_.size() >= max_pending_) {
    ++stats_.refused_full;
    return;
  }
  pending_.emplace(d, pair_row{std::string{recipient}, std::string{sender}, minute});
}

std::vector<pair_row> correspondent_queue::take() {
  std::vector<pair_row> rows;
  rows.reserve(pending_.size());
  if (published_.size() + pending_.size() > max_remembered_) published_.clear();
  for (auto& [d, row] : pending_) {
    published_.insert(d);
    rows.push_back(std::move(row));
  }
  pending_.clear();
  stats_.queued += rows.size();
  return rows;
}

void correspondent_queue::give_back(std::vector<pair_row>&& rows) {
  for (pair_row& row : rows) {
    const std::uint64_t d = digest(row.recipient, row.sender);
    published_.erase(d);
    // Given back whatever the bound: these were already admitted once.
    pending_.try_emplace(d, std::move(row));
  }
}

void correspondent_queue::forget_published() {
  published_.clear();
}

correspondent_queue_stats correspondent_queue::stats() const {
  correspondent_queue_stats s = stats_;
  s.remembered = published_.size();
  return s;
}

}  // namespace rcptguard::cluster
