// Tracked-recipient storage and eviction (see recipients.hpp).
#include "decision/recipients.hpp"

#include "decision/hash.hpp"

namespace rcptguard::decision {

recipient_table::recipient_table(std::size_t max_entries, std::uint64_t seed)
    : max_entries_(max_entries == 0 ? 1 : max_entries), rng_(seed ^ 0x5eed5eed5eed5eedULL) {}

std::uint32_t recipient_table::find(std::uint64_t key_hash) const {
  return index_.find(key_hash, [&](std::uint32_t slot) { return at(slot).key_hash == key_hash; });
}

std::uint32_t recipient_table::pick_victim() {
  std::uint32_t best = npos;
  for (int i = 0; i < eviction_samples; ++i) {
    const auto slot = static_cast<std::uint32_t>(splitmix64(rng_) % high_water_);
    const recipient_state& candidate = at(slot);
    if (candidate.serial == 0) continue;
    if (best == npos) {
      best = slot;
      continue;
    }
    const recipient_state& current = at(best);
    const bool calmer =
        !candidate.has(recipient_state::flagged) && current.has(recipient_state::flagged);
    const bool same_class =
        candidate.has(recipient_state::flagged) == current.has(recipient_state::flagged);
    if (calmer ||
        (same_class && candidate.windows.newest_minute() < current.windows.newest_minute())) {
      best = slot;
    }
  }
  if (best == npos) {
    // Only reachable with holes in a full table, which free-slot reuse prevents; scan anyway.
    for (std::uint32_t slot = 0; slot < high_water_ && best == npos; ++slot) {
      if (at(slot).serial != 0) best = slot;
    }
  }
  return best;
}

std::uint32_t recipient_table::insert(std::uint64_t key_hash) {
  std::uint32_t slot = 0;
  if (!free_.empty()) {
    slot = free_.back();
    free_.pop_back();
  } else {
    slot = high_water_++;
    if (slot / chunk_size >= chunks_.size()) {
      chunks_.push_back(std::make_unique<recipient_state[]>(chunk_size));
    }
  }
  recipient_state& state = at(slot);
  state = recipient_state{};
  state.key_hash = key_hash;
  state.serial = next_serial_++;
  if (next_serial_ == 0) next_serial_ = 1;
  index_.insert(key_hash, slot);
  ++size_;
  return slot;
}

void recipient_table::renew_serial(std::uint32_t slot) {
  recipient_state& state = at(slot);
  if (state.serial == 0) return;
  state.serial = next_serial_++;
  if (next_serial_ == 0) next_serial_ = 1;
}

void recipient_table::erase(std::uint32_t slot) {
  recipient_state& state = at(slot);
  if (state.serial == 0) return;
  index_.erase(state.key_hash, slot);
  state.serial = 0;
  free_.push_back(slot);
  --size_;
}

}  // namespace rcptguard::decision
